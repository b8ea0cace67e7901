"""JPEG previews and thumbnails of accepted uploads, made once at intake.

Browsers cannot show DICOM, HEIC or most TIFFs, and photos carry EXIF (GPS position, camera make
and serial) that must not travel further than the original. So every image gets two re-encoded
baseline JPEGs holding nothing but pixels; the uploaded bytes are never touched. An image that
cannot be drawn is refused (DamagedImage, answered 422): nothing is ever stored with a stand-in
picture.

Memory must not grow with the upload: DICOM frames are drawn by ``dicom_pixels`` (sampled, scaled
or size-limited), JPEGs are decoded at reduced scale, and formats decoded whole have passed the
decode budget of ``inspect_image`` and are reduced before any conversion.
"""

from __future__ import annotations

import io
import math
import threading
from collections.abc import Callable
from typing import BinaryIO, cast

import numpy as np
from pi_heif.as_plugin import HeifImageFile
from PIL import Image, ImageFile

from referral.imaging import DamagedImage, heic
from referral.imaging.dicom import DicomInfo
from referral.imaging.dicom_pixels import draw_dicom, sampling_step
from referral.imaging.inspect import RASTER_CLASSES, Inspection
from referral.imaging.sniff import ImageFormat

__all__ = [
    "PREVIEW_MAX_SIDE",
    "THUMBNAIL_MAX_SIDE",
    "render",
    "render_previews",
    "render_previews_if_free",
    "set_concurrency",
]

PREVIEW_MAX_SIDE = 1600
THUMBNAIL_MAX_SIDE = 256
JPEG_QUALITY = 85

_DAMAGED = "the image could not be decoded; export it again from the camera or imaging software"

# inspect_image reports JPEG and TIFF sizes as displayed (EXIF orientation applied) and ignores
# PNG's rarely honoured eXIf chunk; previews follow the same rule so they match the stated size.
# WebP and HEIC decoders apply the orientation themselves, or carry none.
_ORIENTED_FORMATS = frozenset({ImageFormat.JPEG, ImageFormat.TIFF})
# Modes Pillow's reduce() handles; the others are decimated a band of rows at a time.
_REDUCIBLE = frozenset({"L", "LA", "La", "RGB", "RGBA", "RGBa", "RGBX", "I", "F", "CMYK", "YCbCr"})
_BAND_ROWS = 64
_EXIF_ORIENTATION = 0x0112

# Each drawing may use up to the decode budget of inspect_image; at most this many run at once in a process, so a
# burst of large uploads waits its turn instead of multiplying the memory (PREVIEW_CONCURRENCY).
_slots = threading.BoundedSemaphore(2)


def set_concurrency(slots: int) -> None:
    """How many images this process draws at once (at start-up, before any request)."""
    global _slots
    if slots < 1:
        raise ValueError("at least one image must be drawn at a time")
    _slots = threading.BoundedSemaphore(slots)


def render(fp: BinaryIO, inspection: Inspection, *, max_side: int) -> bytes:
    """A baseline JPEG of the image whose longer side is at most ``max_side`` (never enlarged).

    Raises DamagedImage when the image cannot be decoded or drawn. ``fp`` is left at its start.
    """
    if max_side < 1:
        raise ValueError("max_side must be at least 1")
    return _encode(_fit(_decode(fp, inspection, max_side), max_side))


def render_previews(fp: BinaryIO, inspection: Inspection, *,
                    measure: Callable[[Image.Image], None] | None = None) -> tuple[bytes, bytes]:
    """The preview and the thumbnail, from a single decode of the file, in one of the process's drawing slots
    (waiting for one). ``measure``, when given, is shown the reduced preview picture (L or RGB) before it is
    encoded, so that checks of the pixels need no decode of their own."""
    with _slots:
        return _draw(fp, inspection, measure)


def render_previews_if_free(fp: BinaryIO, inspection: Inspection, *,
                            measure: Callable[[Image.Image], None] | None = None) -> tuple[bytes, bytes] | None:
    """``render_previews`` when a drawing slot is free now; None when every slot is busy, so that the caller
    can have them drawn later instead of holding its thread while it waits."""
    slots = _slots
    if not slots.acquire(blocking=False):
        return None
    try:
        return _draw(fp, inspection, measure)
    finally:
        slots.release()


def _draw(fp: BinaryIO, inspection: Inspection,
          measure: Callable[[Image.Image], None] | None) -> tuple[bytes, bytes]:
    preview = _fit(_decode(fp, inspection, PREVIEW_MAX_SIDE), PREVIEW_MAX_SIDE)
    if measure is not None:
        measure(preview)
    thumbnail = _fit(preview, THUMBNAIL_MAX_SIDE)
    return _encode(preview), _encode(thumbnail)


def _decode(fp: BinaryIO, inspection: Inspection, max_side: int) -> Image.Image:
    """An upright L or RGB image of the picture, no larger than about twice ``max_side`` on its
    longer side (a DICOM sample may be), for the caller to fit exactly."""
    try:
        fp.seek(0)
        if inspection.format is ImageFormat.DICOM:
            if inspection.dicom is None:
                raise ValueError("a DICOM inspection carries its header")
            return _decode_dicom(fp, inspection.dicom, max_side)
        return _decode_raster(fp, inspection.format, max_side)
    finally:
        fp.seek(0)


def _fit(image: Image.Image, max_side: int) -> Image.Image:
    width, height = image.size
    scale = max_side / max(width, height)
    if scale >= 1:
        return image
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return image.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)


def _encode(image: Image.Image) -> bytes:
    # Only pixels cross over: a fresh image has an empty info dict, so no EXIF, ICC profile, XMP
    # or comment of the source can reach the saved file (Pillow's JPEG writer falls back to the
    # image's own comment, for one).
    bare = Image.new(image.mode, image.size)
    bare.paste(image)
    buffer = io.BytesIO()
    # Full-resolution colour (4:4:4): halving the chroma would blur the edges of small colour detail.
    bare.save(buffer, format="JPEG", quality=JPEG_QUALITY, progressive=False, optimize=True, subsampling=0)
    return buffer.getvalue()


def _target(size: tuple[int, int], max_side: int) -> tuple[int, int]:
    width, height = size
    scale = min(1.0, max_side / max(width, height))
    return max(1, math.ceil(width * scale)), max(1, math.ceil(height * scale))


# --- photos and sensor exports ------------------------------------------------------


def _decode_raster(fp: BinaryIO, image_format: ImageFormat, max_side: int) -> Image.Image:
    if image_format is ImageFormat.HEIC:
        return _fit(_displayable(_decode_heic(fp, max_side)), max_side)
    try:
        with RASTER_CLASSES[image_format](fp) as image:
            if image_format is ImageFormat.JPEG:
                # libjpeg scales while decoding (1/2 to 1/8), never below the requested size.
                image.draft(None, _target(image.size, max_side))
            image.load()
            reduced = _reduced(image, max_side)
            if image_format in _ORIENTED_FORMATS:
                reduced = _upright(image, reduced)
            displayable = _displayable(reduced)
            fitted = _fit(displayable, max_side)
            # The source closes with the with-block; whatever is returned must own its pixels.
            return fitted.copy() if fitted is image else fitted
    except DamagedImage:
        raise
    except Exception as exc:
        raise DamagedImage(_DAMAGED) from exc


def _decode_heic(fp: BinaryIO, max_side: int) -> Image.Image:
    with HeifImageFile(fp) as header:
        width, height = header.size
    fp.seek(0)
    return heic.decode_reduced(fp, sampling_step(height, width, max_side))


def _reduced(image: ImageFile.ImageFile, max_side: int) -> Image.Image:
    """The decoded image cut down to about twice ``max_side`` before anything converts it, so that no
    full-size copy is ever made: Pillow's box reduction where the mode allows, else every n-th pixel."""
    width, height = image.size
    step = sampling_step(height, width, max_side)
    if step == 1:
        return image
    if image.mode in _REDUCIBLE:
        return image.reduce(step)
    bands = []
    band_rows = step * max(1, _BAND_ROWS // step)
    for top in range(0, height, band_rows):
        band = image.crop((0, top, width, min(height, top + band_rows)))
        if band.mode in ("1", "P", "PA"):
            band = band.convert("RGBA" if "transparency" in image.info or band.mode == "PA" else
                                ("L" if band.mode == "1" else "RGB"))
        # A copy: a view would keep the whole band (and so, band by band, the whole image) alive.
        bands.append(np.asarray(band)[::step, ::step].copy())
    array = np.ascontiguousarray(np.concatenate(bands))
    if array.dtype == np.uint16:
        return Image.fromarray(array.astype(np.int32), "I")
    return Image.fromarray(array)


_TRANSPOSES = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


def _upright(source: ImageFile.ImageFile, image: Image.Image) -> Image.Image:
    """``image`` (the decoded ``source``, perhaps reduced) turned as the EXIF orientation says."""
    try:
        orientation = source.getexif().get(_EXIF_ORIENTATION)
    except Exception:
        # A broken EXIF block says nothing about the pixels (inspect_image takes the same view): the
        # picture is then shown as stored.
        return image
    method = _TRANSPOSES.get(orientation) if isinstance(orientation, int) else None
    return image.transpose(method) if method is not None else image


def _displayable(image: Image.Image) -> Image.Image:
    mode = image.mode
    if mode in ("L", "RGB"):
        return image
    if mode == "1":
        return image.convert("L")
    if mode.startswith("I") or mode == "F":
        # 16-bit sensor exports rarely use the full range (12 bits is common), and Pillow's
        # own conversion to 8 bits clips: both would give a white or black picture.
        values = image if mode in ("I", "F") else image.convert("I")
        low, high = cast(tuple[float, float], values.getextrema())
        scale, offset = _stretch(low, high)
        return _to_8bit(values, scale, offset)
    if mode == "P":
        return _displayable(image.convert("RGBA" if "transparency" in image.info else "RGB"))
    if mode in ("LA", "La", "PA", "RGBA", "RGBa"):
        # Transparent areas are shown on white, as a browser would show them on a page.
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        flattened = Image.alpha_composite(background, rgba)
        return flattened.convert("L" if mode in ("LA", "La") else "RGB")
    return image.convert("RGB")


def _stretch(low: float, high: float) -> tuple[float, float]:
    """Scale and offset taking ``low``..``high`` to 0..255."""
    if high <= low:
        return 0.0, 0.0
    scale = 255.0 / (high - low)
    return scale, -low * scale


def _to_8bit(values: Image.Image, scale: float, offset: float) -> Image.Image:
    # point() truncates towards zero, hence the half added to round; converting to L clips to
    # 0..255, which is exactly the clamping the DICOM VOI function asks for.
    return values.point(lambda x: x * scale + (offset + 0.5)).convert("L")


# --- DICOM ---------------------------------------------------------------------------


def _decode_dicom(fp: BinaryIO, info: DicomInfo, max_side: int) -> Image.Image:
    size = fp.seek(0, io.SEEK_END)
    fp.seek(0)
    return draw_dicom(fp, size, info, max_side)
