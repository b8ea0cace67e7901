"""JSON answers in which text from people and files can never read as markup.

Names, reasons and DICOM header text (an operator's name, say) reach the JSON as they were written. The answers
are application/json with nosniff, but a client that drops a value into a page unescaped, or a browser that shows
the body, must still not meet a live tag: ``<``, ``>`` and ``&`` are written as ``\\u003c``, ``\\u003e`` and
``\\u0026``. They can only occur inside JSON strings, so the change is invisible to any JSON reader.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

from flask.json.provider import DefaultJSONProvider
from werkzeug.sansio.response import Response as BaseResponse


class MarkupSafeJSONProvider(DefaultJSONProvider):
    def dumps(self, obj: Any, **kwargs: Any) -> str:
        # Three replaces rather than one translate table: a replace finds the rare character at C speed, where a
        # translate with a mapping steps through every character of the answer (milliseconds on a case of 100
        # images). No replacement holds a character another one replaces, so the order does not matter.
        text = super().dumps(obj, **kwargs)
        return text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")

    def writes_compact(self) -> bool:
        """Whether ``response`` writes compact JSON (it indents in debug mode or when told to)."""
        return not ((self.compact is None and self._app.debug) or self.compact is False)

    def compact_dumps(self, obj: Any) -> str:
        """``dumps`` as ``response`` writes compact JSON."""
        return self.dumps(obj, separators=(",", ":"))

    def response_with_text(self, obj: Any, text: Callable[[Callable[[Any], str]], str]) -> BaseResponse:
        """``response(obj)`` in compact JSON, where ``obj`` holds ``WRITTEN_APART`` once in place of a value whose
        JSON ``text`` writes itself, given ``compact_dumps``, as the whole answer would have written it: the same
        bytes, from text a caller may have kept from earlier answers."""
        if not self.writes_compact():
            raise ValueError("an indented answer cannot take text written compactly")
        answer = self.compact_dumps(obj)
        place = self.compact_dumps(WRITTEN_APART)
        if answer.count(place) != 1:
            raise ValueError("the answer must hold the stand-in value exactly once")
        answer = answer.replace(place, text(self.compact_dumps), 1)
        return self._app.response_class(f"{answer}\n", mimetype=self.mimetype)


# A value no answer holds: it starts with NUL, which no stored text can (PostgreSQL refuses it in text), and goes
# on with random characters.
WRITTEN_APART = "\x00" + secrets.token_hex(16)
