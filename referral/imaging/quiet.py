"""Run pydicom's converters and decoders without their warnings.

pydicom reports what it corrected in a file (a JPEG whose colour space disagrees with the header, an
undecodable character, a value of the wrong form) through ``warnings`` as well as its logger. For uploads
those are expected, handled here, and not worth a line in the server's output per file. Python's
``warnings.catch_warnings`` swaps process-wide state, so every such call is made under one lock: calls are
short (a header value) or already serialised on purpose (a full-frame decode, whose memory should not be
spent by several threads at once).
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Callable
from typing import ParamSpec, TypeVar

__all__ = ["quietly"]

_P = ParamSpec("_P")
_T = TypeVar("_T")

_LOCK = threading.RLock()


def quietly(function: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs) -> _T:
    """``function(*args, **kwargs)`` with warnings silenced, one call at a time per process."""
    with _LOCK, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return function(*args, **kwargs)
