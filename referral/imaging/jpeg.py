"""JPEG checks shared by photos and JPEG-compressed DICOM frames."""

from __future__ import annotations

import math
from collections.abc import Sequence

import simplejpeg
from PIL import JpegImagePlugin

from referral.imaging import DamagedImage

__all__ = ["check_complete", "is_progressive", "progressive_coefficient_bytes"]

_TRUNCATED = "the JPEG data is truncated or damaged; export the image again and upload it again"


def check_complete(data: bytes) -> None:
    """Refuse an 8-bit JPEG whose entropy-coded data ends early, even when an end-of-image marker follows.

    libjpeg only warns about such data and fills the rest with grey; simplejpeg (libjpeg-turbo) in strict
    mode makes the warning an error. Decoding at 1/8 scale keeps the check cheap."""
    try:
        simplejpeg.decode_jpeg(data, colorspace="GRAY", min_height=1, min_width=1, min_factor=8.0, strict=True)
    except ValueError as exc:
        raise DamagedImage(_TRUNCATED) from exc


def is_progressive(image: JpegImagePlugin.JpegImageFile) -> bool:
    return "progressive" in image.info or "progression" in image.info


# Peak memory while decoding a progressive JPEG over its coefficient buffer, measured and rounded up.
_PROGRESSIVE_OVERHEAD = 1.3


def progressive_coefficient_bytes(image: JpegImagePlugin.JpegImageFile) -> int:
    """What decoding a progressive JPEG takes at any scale: libjpeg holds every DCT coefficient (2 bytes each)
    until the last scan, plus the measured overhead."""
    layers: Sequence[tuple[str, int, int, int]] = getattr(image, "layer", [])
    width, height = image.size
    if not layers:
        return int(width * height * 2 * _PROGRESSIVE_OVERHEAD)
    h_max = max(h for _, h, _, _ in layers)
    v_max = max(v for _, _, v, _ in layers)
    coefficients = sum(math.ceil(width * h / h_max) * math.ceil(height * v / v_max) * 2 for _, h, v, _ in layers)
    return int(coefficients * _PROGRESSIVE_OVERHEAD)
