"""HEIC photos, decoded by libheif (through the decode-only pi-heif) and reduced before Pillow sees them.

libheif decodes the whole picture: first its YCbCr planes, then interleaved RGB. Going through Pillow would
add a third, 4-byte-a-pixel copy; reading libheif's RGB buffer directly and keeping every n-th pixel holds
only what is drawn, so phone photos of 24 megapixels stay well within the memory budget.
"""

from __future__ import annotations

from typing import BinaryIO

import numpy as np
import pi_heif
from PIL import Image

from referral.imaging import DamagedImage

__all__ = ["decode_reduced"]

_DAMAGED = "the HEIC photo is truncated or damaged; export it again from the phone and upload it again"


def decode_reduced(fp: BinaryIO, step: int) -> Image.Image:
    """The primary picture, upright (libheif applies the file's rotation and mirroring), keeping every
    ``step``-th pixel in both directions, as RGB or RGBA."""
    try:
        heif = pi_heif.open_heif(fp, convert_hdr_to_8bit=True)
        picture = heif[heif.primary_index]
        width, height = picture.size
        channels = 4 if picture.mode == "RGBA" else 3
        if picture.mode not in ("RGB", "RGBA"):
            raise DamagedImage(f"this HEIC photo's {picture.mode} samples cannot be drawn; export it as JPEG")
        rows = np.frombuffer(picture.data, np.uint8).reshape(height, picture.stride)
        pixels = rows[::step, : width * channels].reshape(-1, width, channels)[:, ::step].copy()
        del rows, picture, heif
    except DamagedImage:
        raise
    except Exception as exc:
        raise DamagedImage(_DAMAGED) from exc
    return Image.fromarray(pixels, "RGBA" if channels == 4 else "RGB")
