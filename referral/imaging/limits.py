"""How large an image the server accepts, and how much memory drawing it may take.

Formats that can be read reduced (native DICOM by sampling rows, baseline JPEG by libjpeg's scaled
decoding) are accepted up to ``MAX_PIXELS``. Formats whose decoders only produce the whole image at once
(PNG, TIFF, WebP, HEIC, progressive JPEG's coefficients) are accepted while the memory their decoding takes,
estimated from the header (pixels x bytes per pixel x the decoder's measured overhead), stays within
``MAX_DECODE_BYTES``, so that drawing the largest accepted image of any format stays under about 150 MB above
idle. Compressed DICOM frames decoded whole have their own budget (``dicom_pixels.MAX_FULL_DECODE_BYTES``).
"""

from __future__ import annotations

__all__ = ["MAX_DECODE_BYTES", "MAX_PIXELS"]

MAX_PIXELS = 100_000_000
MAX_DECODE_BYTES = 136 * 1024 * 1024
