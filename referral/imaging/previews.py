"""JPEG previews and thumbnails of accepted uploads, made once at intake.

Browsers cannot show DICOM or most TIFFs, and photos carry EXIF (GPS position, camera make and
serial) that must not travel further than the original. So every image gets two re-encoded
baseline JPEGs holding nothing but pixels; the uploaded bytes are never touched.

Memory must not grow with the upload: an uncompressed DICOM frame is sampled straight from the
file (every k-th row, every k-th column) instead of being loaded, and JPEGs are decoded at reduced
scale. Inputs have passed ``inspect_image`` already, so their pixel counts are within
``MAX_PIXELS`` and the DICOM structure has been walked and found sound.
"""

from __future__ import annotations

import contextlib
import io
import math
import struct
from collections.abc import Callable, Iterator
from typing import Any, BinaryIO, cast

from PIL import (
    Image,
    ImageDraw,
    ImageFile,
    ImageFont,
    ImageMath,
    ImageOps,
    JpegImagePlugin,
)

from referral.imaging import DamagedImage
from referral.imaging.dicom import DicomInfo, PixelDataLocation
from referral.imaging.inspect import MAX_PIXELS, RASTER_CLASSES, Inspection
from referral.imaging.sniff import ImageFormat

__all__ = [
    "PREVIEW_MAX_SIDE",
    "THUMBNAIL_MAX_SIDE",
    "render",
    "render_previews",
]

PREVIEW_MAX_SIDE = 1600
THUMBNAIL_MAX_SIDE = 256
JPEG_QUALITY = 85

# A DICOM frame is sampled at up to twice the output size so that the final resize can average
# neighbouring samples instead of showing the aliasing of plain decimation; the pixel cap keeps
# large square frames from taking that to tens of megabytes.
_OVERSAMPLE = 2
_MAX_SAMPLED_PIXELS = 4_000_000
# Sampled rows are converted a band at a time, so only the 8-bit result is ever held whole.
_BAND_PIXELS = 256 * 1024

_PLACEHOLDER_SIZE = (640, 480)
_PLACEHOLDER_TEXT = "preview unavailable"

_DAMAGED = "the image could not be decoded; export it again from the camera or imaging software"

# inspect_image reports JPEG and TIFF sizes as displayed (EXIF orientation applied) and ignores
# PNG's rarely honoured eXIf chunk; previews follow the same rule so they match the stated size.
_ORIENTED_FORMATS = frozenset({ImageFormat.JPEG, ImageFormat.TIFF})

_IMPLICIT_LE = "1.2.840.10008.1.2"
_EXPLICIT_LE = "1.2.840.10008.1.2.1"
_EXPLICIT_BE = "1.2.840.10008.1.2.2"
_NATIVE_SYNTAXES = frozenset({_IMPLICIT_LE, _EXPLICIT_LE, _EXPLICIT_BE})
# Baseline (8-bit) and extended JPEG: Pillow's libjpeg reads the 8-bit ones; 12-bit extended
# files fail to decode and get the placeholder.
_PILLOW_JPEG_SYNTAXES = frozenset({"1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.51"})
_ITEM = 0xFFFEE000
_SEQUENCE_DELIMITER = 0xFFFEE0DD
# A single frame split into more fragments than this is not worth walking for a preview.
_MAX_PREVIEW_FRAGMENTS = 4096

_GRAYSCALE = frozenset({"MONOCHROME1", "MONOCHROME2"})
_COLOUR = {"RGB": "RGB", "YBR_FULL": "YCbCr"}


# Re-reads the sampled frame band by band: once for the extrema when there is no window, once to draw.
_Bands = Callable[[], Iterator[tuple[int, Image.Image]]]


class _Unrenderable(Exception):
    """A valid DICOM encoding this module does not draw; the placeholder stands in for it."""


def render(fp: BinaryIO, inspection: Inspection, *, max_side: int) -> bytes:
    """A baseline JPEG of the image whose longer side is at most ``max_side`` (never enlarged).

    Raises DamagedImage when a photo or sensor export cannot be decoded. A DICOM file whose
    pixel encoding cannot be drawn here gets a grey "preview unavailable" picture instead,
    because the file itself is sound and still worth storing. ``fp`` is left at its start.
    """
    if max_side < 1:
        raise ValueError("max_side must be at least 1")
    return _encode(_fit(_decode(fp, inspection, max_side), max_side))


def render_previews(fp: BinaryIO, inspection: Inspection) -> tuple[bytes, bytes]:
    """The preview and the thumbnail, from a single decode of the file."""
    preview = _fit(_decode(fp, inspection, PREVIEW_MAX_SIDE), PREVIEW_MAX_SIDE)
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
    bare.save(buffer, format="JPEG", quality=JPEG_QUALITY, progressive=False, optimize=True)
    return buffer.getvalue()


def _target(size: tuple[int, int], max_side: int) -> tuple[int, int]:
    width, height = size
    scale = min(1.0, max_side / max(width, height))
    return max(1, math.ceil(width * scale)), max(1, math.ceil(height * scale))


# --- photos and sensor exports ------------------------------------------------------


def _decode_raster(fp: BinaryIO, image_format: ImageFormat, max_side: int) -> Image.Image:
    try:
        with RASTER_CLASSES[image_format](fp) as image:
            if image_format is ImageFormat.JPEG:
                # libjpeg scales while decoding (1/2 to 1/8), never below the requested size.
                image.draft(None, _target(image.size, max_side))
            image.load()
            if image_format in _ORIENTED_FORMATS:
                _turn_upright(image)
            displayable = _displayable(image)
            fitted = _fit(displayable, max_side)
            # The source closes with the with-block; whatever is returned must own its pixels.
            return fitted.copy() if fitted is image else fitted
    except DamagedImage:
        raise
    except Exception as exc:
        raise DamagedImage(_DAMAGED) from exc


def _turn_upright(image: ImageFile.ImageFile) -> None:
    # A broken EXIF block says nothing about the pixels (inspect_image takes the same view): the
    # picture is then shown as stored.
    with contextlib.suppress(Exception):
        ImageOps.exif_transpose(image, in_place=True)


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
    syntax = info.transfer_syntax_uid or _IMPLICIT_LE
    location = info.pixel_data
    try:
        if location is None or not info.rows or not info.columns:
            raise _Unrenderable("no pixel data location")
        if location.length is not None and syntax in _NATIVE_SYNTAXES:
            return _native_frame(fp, info, location, max_side)
        if location.length is None and syntax in _PILLOW_JPEG_SYNTAXES:
            return _jpeg_frame(fp, info, location, max_side)
        raise _Unrenderable(f"transfer syntax {syntax}")
    except _Unrenderable:
        return _placeholder(max_side)
    except DamagedImage:
        raise
    except Exception as exc:
        raise DamagedImage(_DAMAGED) from exc


def _native_frame(fp: BinaryIO, info: DicomInfo, location: PixelDataLocation, max_side: int) -> Image.Image:
    rows, columns = info.rows or 0, info.columns or 0
    samples = info.samples_per_pixel or 1
    bits = info.bits_allocated or 16
    photometric = (info.photometric or ("MONOCHROME2" if samples == 1 else "RGB")).upper()
    if bits not in (8, 16):
        raise _Unrenderable(f"{bits} bits allocated")
    pixel_bytes = bits // 8
    step = _sampling_step(rows, columns, max_side)
    start = location.value_offset  # the first frame; any others follow it

    if samples == 1 and photometric in _GRAYSCALE:
        return _grayscale_frame(fp, info, start, pixel_bytes, step, location.little_endian)
    if samples == 3 and bits == 8 and photometric in _COLOUR:
        if info.planar_configuration == 1:
            plane = rows * columns
            channels = [
                _assemble(_sampled_rows(fp, start + index * plane, rows, columns, 1, step), "L",
                          rows, columns, step)
                for index in range(3)
            ]
            image = Image.merge(_COLOUR[photometric], channels)
        else:
            image = _assemble(_sampled_rows(fp, start, rows, columns, 3, step), _COLOUR[photometric],
                              rows, columns, step)
        return image.convert("RGB")
    raise _Unrenderable(f"{samples} samples of {photometric}")


def _sampling_step(rows: int, columns: int, max_side: int) -> int:
    step = max(1, math.ceil(max(rows, columns) / (_OVERSAMPLE * max_side)))
    while math.ceil(rows / step) * math.ceil(columns / step) > _MAX_SAMPLED_PIXELS:
        step += 1
    return step


def _sampled_rows(fp: BinaryIO, start: int, rows: int, columns: int, pixel_bytes: int,
                  step: int) -> Iterator[bytes]:
    """Every ``step``-th pixel of every ``step``-th row, read by seeking: one row in memory."""
    row_bytes = columns * pixel_bytes
    kept = len(range(0, columns, step))
    for row in range(0, rows, step):
        fp.seek(start + row * row_bytes)
        data = fp.read(row_bytes)
        if len(data) != row_bytes:
            raise DamagedImage("the DICOM pixel data is truncated; re-export the image and upload it again")
        if step == 1:
            yield data
            continue
        sampled = bytearray(kept * pixel_bytes)
        for byte in range(pixel_bytes):
            sampled[byte::pixel_bytes] = data[byte :: pixel_bytes * step]
        yield bytes(sampled)


def _assemble(chunks: Iterator[bytes], mode: str, rows: int, columns: int, step: int) -> Image.Image:
    size = (len(range(0, columns, step)), len(range(0, rows, step)))
    return Image.frombytes(mode, size, b"".join(chunks))


def _bands(chunks: Iterator[bytes], rows_per_band: int) -> Iterator[tuple[int, bytes]]:
    """Sampled rows grouped into bands, with the index of each band's first row."""
    band: list[bytes] = []
    top = 0
    for chunk in chunks:
        band.append(chunk)
        if len(band) == rows_per_band:
            yield top, b"".join(band)
            top += len(band)
            band = []
    if band:
        yield top, b"".join(band)


def _grayscale_frame(fp: BinaryIO, info: DicomInfo, start: int, pixel_bytes: int, step: int,
                     little_endian: bool) -> Image.Image:
    rows, columns = info.rows or 0, info.columns or 0
    width = len(range(0, columns, step))
    height = len(range(0, rows, step))
    rows_per_band = max(1, _BAND_PIXELS // width)
    rawmode = "I;8" if pixel_bytes == 1 else ("I;16" if little_endian else "I;16B")

    def bands() -> Iterator[tuple[int, Image.Image]]:
        for top, data in _bands(_sampled_rows(fp, start, rows, columns, pixel_bytes, step), rows_per_band):
            raw = Image.frombytes("I", (width, len(data) // (width * pixel_bytes)), data, "raw", rawmode)
            yield top, _stored_values(raw, info, pixel_bytes * 8)

    scale, offset = _voi(info, bands)
    result = Image.new("L", (width, height))
    for top, band in bands():
        result.paste(_to_8bit(band, scale, offset), (0, top))
    return result


def _stored_values(raw: Image.Image, info: DicomInfo, bits_allocated: int) -> Image.Image:
    """The pixel values as the header defines them: only the stored bits, sign-extended when
    PixelRepresentation says they are two's complement."""
    bits_stored = info.bits_stored or bits_allocated
    if not 0 < bits_stored <= bits_allocated:
        bits_stored = bits_allocated
    signed = info.pixel_representation == 1
    if not signed and bits_stored == bits_allocated:
        return raw
    mask = (1 << bits_stored) - 1
    if not signed:
        return cast(Image.Image, ImageMath.lambda_eval(lambda a: a["v"] & mask, v=raw))
    sign = 1 << (bits_stored - 1)
    return cast(Image.Image, ImageMath.lambda_eval(lambda a: ((a["v"] & mask) ^ sign) - sign, v=raw))


def _voi(info: DicomInfo, bands: _Bands) -> tuple[float, float]:
    """Scale and offset taking stored values to display values, folding in the modality
    rescale, the VOI window (or a min-max stretch without one) and MONOCHROME1's inversion."""
    slope = info.rescale_slope or 1.0
    intercept = info.rescale_intercept or 0.0
    center, width = info.window_center, info.window_width
    if center is not None and width is not None and width >= 1:
        # PS3.3 C.11.2.1.2.1: y = ((x - (c - 0.5)) / (w - 1) + 0.5) * 255, clamped to 0..255. A
        # width of exactly 1 is a threshold at c - 0.5; a tiny divisor gives the same picture.
        span = max(width - 1.0, 1e-3)
        gain = 255.0 / span
        base = (0.5 - (center - 0.5) / span) * 255.0
    else:
        low, high = _extrema(bands)
        ends = (low * slope + intercept, high * slope + intercept)
        gain, base = _stretch(min(ends), max(ends))
    scale, offset = slope * gain, intercept * gain + base
    if (info.photometric or "").upper() == "MONOCHROME1":
        scale, offset = -scale, 255.0 - offset
    return scale, offset


def _extrema(bands: _Bands) -> tuple[float, float]:
    low, high = math.inf, -math.inf
    for _, band in bands():
        band_low, band_high = cast(tuple[float, float], band.getextrema())
        low, high = min(low, band_low), max(high, band_high)
    return (low, high) if low <= high else (0.0, 0.0)


def _jpeg_frame(fp: BinaryIO, info: DicomInfo, location: PixelDataLocation, max_side: int) -> Image.Image:
    segments = _frame_fragments(fp, location, single_frame=(info.number_of_frames or 1) <= 1)
    try:
        with JpegImagePlugin.JpegImageFile(cast(BinaryIO, _Segments(fp, segments))) as image:
            width, height = image.size
            # The header's Rows and Columns were checked, but the embedded JPEG states its own size.
            if width * height > MAX_PIXELS:
                raise _Unrenderable("embedded JPEG larger than the pixel limit")
            image.draft(None, _target(image.size, max_side))
            image.load()
            if image.mode == "L":
                values = image.convert("I")
                scale, offset = _voi(info, lambda: iter([(0, values)]))
                return _to_8bit(values, scale, offset)
            return image.convert("RGB")
    except _Unrenderable:
        raise
    except Exception as exc:
        raise _Unrenderable("embedded JPEG does not decode") from exc


def _frame_fragments(fp: BinaryIO, location: PixelDataLocation, *, single_frame: bool) -> list[tuple[int, int]]:
    """(offset, length) of the fragments holding the first frame, after the basic offset table.

    A single frame may span all fragments; with several frames only the first fragment is
    taken, which is where the first frame starts (finding its end would need the offset table).
    """
    position = location.value_offset
    fragments: list[tuple[int, int]] = []
    first = True
    while len(fragments) < _MAX_PREVIEW_FRAGMENTS:
        fp.seek(position)
        header = fp.read(8)
        if len(header) < 8:
            break
        group, element, length = struct.unpack("<HHL", header)
        tag = group << 16 | element
        if tag != _ITEM:
            if tag != _SEQUENCE_DELIMITER:
                raise _Unrenderable("unexpected element among the fragments")
            break
        position += 8
        if not first and length:
            fragments.append((position, length))
            if not single_frame:
                break
        first = False
        position += length
    if not fragments:
        raise _Unrenderable("no fragments")
    return fragments


class _Segments(io.RawIOBase):
    """A read-only, seekable view of byte ranges of a file, as though they were one stream."""

    def __init__(self, fp: BinaryIO, segments: list[tuple[int, int]]) -> None:
        super().__init__()
        self._fp = fp
        self._segments = segments
        self._size = sum(length for _, length in segments)
        self._position = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._size}[whence]
        self._position = max(0, base + offset)
        return self._position

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        filled = 0
        start = 0  # where the current segment begins in the joined stream
        for offset, length in self._segments:
            if filled == len(view):
                break
            position = self._position + filled
            if position < start + length:
                inside = position - start
                count = min(length - inside, len(view) - filled)
                self._fp.seek(offset + inside)
                data = self._fp.read(count)
                view[filled : filled + len(data)] = data
                filled += len(data)
                if len(data) < count:
                    break
            start += length
        self._position += filled
        return filled


def _placeholder(max_side: int) -> Image.Image:
    """Neutral grey with the words "preview unavailable", for DICOM encodings not drawn here."""
    width, height = _target(_PLACEHOLDER_SIZE, max_side)
    image = Image.new("L", (width, height), 128)
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=max(8, width // 14))
    left, top, right, bottom = draw.textbbox((0, 0), _PLACEHOLDER_TEXT, font=font)
    draw.text(((width - (right - left)) / 2 - left, (height - (bottom - top)) / 2 - top), _PLACEHOLDER_TEXT,
              fill=235, font=font)
    return image
