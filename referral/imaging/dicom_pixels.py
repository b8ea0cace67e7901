"""Draw the first frame of an accepted DICOM file for display, whatever its transfer syntax.

Three ways in, each bounded in memory:

- Native (uncompressed, including deflated files once inflated): every k-th row is read by seeking and every
  k-th sample kept, so only the reduced frame is ever held, however large the image.
- JPEG with 8-bit samples (baseline, and extended files holding 8-bit data): Pillow's libjpeg scales while
  decoding (1/2 to 1/8). libjpeg-turbo through simplejpeg first decodes the frame strictly at 1/8 scale, so
  a frame cut short but closed with an end-of-image marker is refused instead of drawn with a grey band.
- Everything else (12-bit JPEG, JPEG lossless, JPEG-LS, JPEG 2000, RLE): those decoders only produce whole
  frames, so frames whose decoded size is above ``MAX_FULL_DECODE_BYTES`` are refused with a message, and one
  such decode runs at a time per process (see ``quiet``). The codestream's own declared size must agree with
  the header before anything is decoded. pydicom's plugins decode them (``_PLUGINS`` gives the order): GDCM
  for JPEG lossless, pylibjpeg-openjpeg (then GDCM) for JPEG 2000, pyjpegls (then GDCM) for JPEG-LS,
  pylibjpeg-rle (then pydicom) for RLE; 12-bit JPEG goes to GDCM directly (pydicom's GDCM plugin declines
  it, GDCM itself decodes it exactly).

The reduced frame then goes through the display pipeline of PS3.3 C.11 (modality LUT or rescale, VOI LUT
or window, MONOCHROME1 inverted), palette colour through its lookup tables, and YBR colour to RGB.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from typing import Any, BinaryIO

import numpy as np
import pydicom
from PIL import Image, JpegImagePlugin
from pydicom.dataset import Dataset
from pydicom.encaps import encapsulate, get_frame
from pydicom.pixels import get_decoder
from pydicom.pixels.processing import apply_color_lut, apply_modality_lut, apply_voi_lut, convert_color_space
from pydicom.uid import UID

from referral.imaging import DamagedImage, jpeg
from referral.imaging.dicom import DicomInfo, PixelDataLocation, pixel_source
from referral.imaging.limits import MAX_DECODE_BYTES, MAX_PIXELS
from referral.imaging.quiet import quietly

__all__ = ["MAX_FULL_DECODE_BYTES", "draw_dicom", "sampling_step"]

# What decoding one whole frame may cost, as the peak memory it adds. Each decoder holds more than the
# decoded frame (the compressed frame, its own buffers, the copy handed to Python), measured below as a
# multiple of the decoded size; a frame is refused when that multiple of its size passes this cost. For
# 16-bit grey that allows about 15 megapixels in JPEG lossless, 21 in JPEG 2000 and 28 in JPEG-LS, far above
# what dental sensors, panoramic and cephalometric units produce.
MAX_FULL_DECODE_BYTES = 136 * 1024 * 1024
# Peak memory over decoded size, measured on 33-megapixel 16-bit frames (tests/imaging/test_preview_memory.py
# checks the largest accepted frame of each), rounded up.
_DECODE_COST = {
    "1.2.840.10008.1.2.4.51": 4.0,
    "1.2.840.10008.1.2.4.57": 4.5,
    "1.2.840.10008.1.2.4.70": 4.5,
    "1.2.840.10008.1.2.4.80": 2.5,
    "1.2.840.10008.1.2.4.81": 2.5,
    "1.2.840.10008.1.2.4.90": 3.3,
    "1.2.840.10008.1.2.4.91": 3.3,
    "1.2.840.10008.1.2.4.201": 3.3,
    "1.2.840.10008.1.2.4.202": 3.3,
    "1.2.840.10008.1.2.4.203": 3.3,
    "1.2.840.10008.1.2.5": 3.8,
}

# A frame is reduced to about twice the output size, so that the final resize averages neighbours instead
# of showing the aliasing of plain decimation; the cap keeps large square frames small.
_OVERSAMPLE = 2
_MAX_SAMPLED_PIXELS = 4_000_000

_IMPLICIT_LE = "1.2.840.10008.1.2"
_EXPLICIT_BE = "1.2.840.10008.1.2.2"
_NATIVE = frozenset({_IMPLICIT_LE, "1.2.840.10008.1.2.1", _EXPLICIT_BE, "1.2.840.10008.1.2.1.99"})
_JPEG_BASELINE = "1.2.840.10008.1.2.4.50"
_JPEG_EXTENDED = "1.2.840.10008.1.2.4.51"
_WHOLE_FRAME = frozenset({
    _JPEG_EXTENDED,
    "1.2.840.10008.1.2.4.57",  # JPEG lossless, process 14
    "1.2.840.10008.1.2.4.70",  # JPEG lossless, first-order prediction
    "1.2.840.10008.1.2.4.80",  # JPEG-LS lossless
    "1.2.840.10008.1.2.4.81",  # JPEG-LS near-lossless
    "1.2.840.10008.1.2.4.90",  # JPEG 2000 lossless
    "1.2.840.10008.1.2.4.91",  # JPEG 2000
    "1.2.840.10008.1.2.4.201",  # HTJ2K lossless
    "1.2.840.10008.1.2.4.202",  # HTJ2K lossless RPCL
    "1.2.840.10008.1.2.4.203",  # HTJ2K
    "1.2.840.10008.1.2.5",  # RLE lossless
})
_JPEG_FAMILY = frozenset({_JPEG_EXTENDED, "1.2.840.10008.1.2.4.57", "1.2.840.10008.1.2.4.70",
                          "1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.4.81"})
_EOI = b"\xff\xd9"

_GREY = frozenset({"MONOCHROME1", "MONOCHROME2"})
_YBR = frozenset({"YBR_FULL", "YBR_FULL_422"})
_COLOUR = frozenset({"RGB", "YBR_FULL", "YBR_FULL_422", "YBR_ICT", "YBR_RCT"})

# What the display pipeline reads besides the image pixel module, read with pydicom (values converted) and
# without deferring: palette tables reach 128 KiB.
_DISPLAY_TAGS = [
    0x00080005,  # Specific Character Set
    0x00281050, 0x00281051, 0x00281052, 0x00281053, 0x00281054, 0x00281056,  # window, rescale, VOI function
    0x00283000, 0x00283010,  # Modality LUT Sequence, VOI LUT Sequence
    0x00281101, 0x00281102, 0x00281103,  # palette descriptors
    0x00281201, 0x00281202, 0x00281203,  # palette data
    0x00281221, 0x00281222, 0x00281223,  # segmented palette data
    0x00280002, 0x00280004, 0x00280100, 0x00280101, 0x00280103,  # samples, photometric, bits, representation
]

_UNDRAWABLE = "this DICOM image cannot be drawn ({}); export it again as uncompressed or JPEG DICOM"
_UNDECODABLE = ("the DICOM pixel data could not be decoded; the file is damaged or truncated. Export the image "
                "again from the imaging software and upload it again")


def sampling_step(rows: int, columns: int, max_side: int) -> int:
    """Take every n-th row and column: the largest n leaving at least twice ``max_side`` on the longer side."""
    step = max(1, math.ceil(max(rows, columns) / (_OVERSAMPLE * max_side)))
    while math.ceil(rows / step) * math.ceil(columns / step) > _MAX_SAMPLED_PIXELS:
        step += 1
    return step


def draw_dicom(fp: BinaryIO, size: int, info: DicomInfo, max_side: int) -> Image.Image:
    """An L or RGB picture of the first frame, at most about twice ``max_side`` on its longer side.

    Raises DamagedImage (answer 422) when the frame cannot be decoded or drawn; the message says why and is
    safe to show."""
    if info.pixel_data is None or not info.rows or not info.columns:
        raise DamagedImage(_UNDRAWABLE.format("no pixel data"))
    with pixel_source(fp, size) as (source, _):
        try:
            display = _display_attributes(source)
            frame, photometric = _frame(source, info, info.pixel_data, max_side)
            return _to_picture(frame, photometric, info, display)
        except DamagedImage:
            raise
        except Exception as exc:
            raise DamagedImage(_UNDECODABLE) from exc


def _display_attributes(source: BinaryIO) -> Dataset:
    source.seek(0)
    ds = quietly(pydicom.dcmread, source, stop_before_pixels=True, specific_tags=list(_DISPLAY_TAGS))
    source.seek(0)
    return ds


# --- getting a reduced frame ------------------------------------------------------------------------------


def _frame(source: BinaryIO, info: DicomInfo, location: PixelDataLocation,
           max_side: int) -> tuple[np.ndarray, str]:
    """The first frame's stored values, reduced by ``sampling_step``, and the photometric interpretation
    that now describes them."""
    syntax = info.transfer_syntax_uid or _IMPLICIT_LE
    photometric = (info.photometric or "").upper() or ("MONOCHROME2" if (info.samples_per_pixel or 1) == 1
                                                       else "RGB")
    step = sampling_step(info.rows or 0, info.columns or 0, max_side)
    if syntax in _NATIVE:
        if location.length is None:
            raise DamagedImage(_UNDRAWABLE.format("compressed pixels under an uncompressed transfer syntax"))
        return _native_frame(source, info, location, photometric, step)
    if location.length is not None:
        raise DamagedImage(_UNDRAWABLE.format("uncompressed pixels under a compressed transfer syntax"))
    source.seek(location.value_offset)
    encoded = get_frame(source, 0, number_of_frames=max(info.number_of_frames or 1, 1),
                        endianness="<" if location.little_endian else ">")
    bits_stored = info.bits_stored or info.bits_allocated or 8
    if syntax == _JPEG_BASELINE or (syntax == _JPEG_EXTENDED and bits_stored <= 8):
        return _jpeg8_frame(encoded, info, photometric, max_side)
    if syntax in _WHOLE_FRAME:
        return _whole_frame(encoded, syntax, info, photometric, step)
    raise DamagedImage(_UNDRAWABLE.format(f"transfer syntax {UID(syntax).name}"))


def _native_frame(source: BinaryIO, info: DicomInfo, location: PixelDataLocation, photometric: str,
                  step: int) -> tuple[np.ndarray, str]:
    rows, columns = info.rows or 0, info.columns or 0
    samples = info.samples_per_pixel or 1
    bits = info.bits_allocated or 16
    if bits not in (1, 8, 16, 32) or samples not in (1, 3):
        raise DamagedImage(_UNDRAWABLE.format(f"{samples} samples of {bits} bits"))
    if bits == 1 and samples != 1:
        raise DamagedImage(_UNDRAWABLE.format("bit-packed colour"))
    # Big endian OW holds 16-bit words: 8-bit (and bit-packed) samples come out with each pair swapped.
    swap_pairs = not location.little_endian and location.vr != "OB" and bits in (1, 8)
    reader = _RowReader(source, location.value_offset, swap_pairs)
    kept_rows = range(0, rows, step)

    if photometric == "YBR_FULL_422" and samples == 3:
        if bits != 8 or columns % 2:
            raise DamagedImage(_UNDRAWABLE.format("YBR_FULL_422 that is not 8-bit with an even width"))
        lines = []
        for row in kept_rows:
            quads = np.frombuffer(reader.read(row * columns * 2, columns * 2), np.uint8).reshape(-1, 4)
            full = np.empty((columns, 3), np.uint8)
            full[0::2, 0], full[1::2, 0] = quads[:, 0], quads[:, 1]
            full[:, 1] = np.repeat(quads[:, 2], 2)
            full[:, 2] = np.repeat(quads[:, 3], 2)
            lines.append(full[::step])
        return np.stack(lines), "YBR_FULL"

    if bits == 1:
        lines = []
        for row in kept_rows:
            first_bit = row * columns
            start, shift = divmod(first_bit, 8)
            packed = np.frombuffer(reader.read(start, math.ceil((shift + columns) / 8)), np.uint8)
            lines.append(np.unpackbits(packed, bitorder="little")[shift : shift + columns][::step].copy())
        return np.stack(lines), photometric

    dtype = np.dtype(f"{'<' if location.little_endian else '>'}u{bits // 8}")
    item = dtype.itemsize
    if samples == 3 and info.planar_configuration == 1:
        plane = rows * columns * item
        planes = [
            np.stack([np.frombuffer(reader.read(index * plane + row * columns * item, columns * item),
                                    dtype)[::step].copy() for row in kept_rows])
            for index in range(3)
        ]
        values = np.stack(planes, axis=-1)
    else:
        row_bytes = columns * samples * item
        if step == 1:
            # Every row is kept: read bands of rows at once (far fewer reads, memory still one band at a time).
            band = max(1, _BAND_BYTES // max(row_bytes, 1))
            bands = [np.frombuffer(reader.read(first * row_bytes, (stop - first) * row_bytes), dtype)
                     .reshape(stop - first, columns, samples)
                     for first, stop in ((first, min(first + band, rows)) for first in range(0, rows, band))]
            values = np.concatenate(bands) if len(bands) > 1 else bands[0].copy()
        else:
            # Copies, so that only the kept samples of each row stay in memory, not the rows they came from.
            lines = [np.frombuffer(reader.read(row * row_bytes, row_bytes), dtype).reshape(columns, samples)[::step]
                     .copy() for row in kept_rows]
            values = np.stack(lines)
        if samples == 1:
            values = values[..., 0]
    return _stored_values(values, info, bits), photometric


# Bytes of pixel data read at once when every row of a native frame is kept.
_BAND_BYTES = 1 << 20


class _RowReader:
    """Reads byte ranges of the pixel data by seeking, undoing the pair swap of 8-bit data in big endian OW."""

    def __init__(self, source: BinaryIO, start: int, swap_pairs: bool) -> None:
        self.source = source
        self.start = start
        self.swap_pairs = swap_pairs

    def read(self, offset: int, length: int) -> bytes:
        if not self.swap_pairs:
            return self._exactly(self.start + offset, length)
        first = offset - offset % 2
        last = offset + length + (offset + length) % 2
        words = np.frombuffer(self._exactly(self.start + first, last - first), np.uint16).byteswap()
        return words.tobytes()[offset - first : offset - first + length]

    def _exactly(self, position: int, length: int) -> bytes:
        self.source.seek(position)
        data = self.source.read(length)
        if len(data) != length:
            raise DamagedImage("the DICOM pixel data is truncated; re-export the image and upload it again")
        return data


def _stored_values(values: np.ndarray, info: DicomInfo, bits_allocated: int) -> np.ndarray:
    """Only the stored bits, sign-extended when Pixel Representation says two's complement."""
    bits_stored = info.bits_stored or bits_allocated
    if not 0 < bits_stored <= bits_allocated:
        bits_stored = bits_allocated
    wide: np.ndarray[Any, np.dtype[np.signedinteger[Any]]] = values.astype(
        np.int64 if bits_allocated > 16 else np.int32)
    wide = np.bitwise_and(wide, (1 << bits_stored) - 1)
    if info.pixel_representation == 1:
        sign = 1 << (bits_stored - 1)
        wide = np.bitwise_xor(wide, sign) - sign
    return wide


def _jpeg8_frame(encoded: bytes, info: DicomInfo, photometric: str, max_side: int) -> tuple[np.ndarray, str]:
    with JpegImagePlugin.JpegImageFile(io.BytesIO(encoded)) as image:
        width, height = image.size
        if width * height > MAX_PIXELS:
            raise DamagedImage(_UNDRAWABLE.format("its JPEG data is larger than the pixel limit"))
        if jpeg.is_progressive(image) and jpeg.progressive_coefficient_bytes(image) > MAX_DECODE_BYTES:
            raise DamagedImage(_UNDRAWABLE.format("a progressive JPEG too large to decode"))
        jpeg.check_complete(encoded)
        target = _target(image.size, max_side)
        if image.mode == "L":
            image.draft("L", target)
            image.load()
            return np.asarray(image).astype(np.int64), "MONOCHROME2" if photometric not in _GREY else photometric
        ids = "".join(chr(layer[0]) if isinstance(layer[0], int) else str(layer[0])
                      for layer in getattr(image, "layer", []))
        effective = photometric
        if ids.upper() == "RGB":
            effective = "RGB"
        elif "jfif" in image.info and "YBR" not in photometric:
            effective = "YBR_FULL_422"
        libjpeg_sees_rgb = ids.upper() == "RGB" or image.info.get("adobe_transform") == 0
        if libjpeg_sees_rgb:
            image.draft("RGB", target)
            image.load()
            return np.asarray(image.convert("RGB")), "RGB"
        # The samples as stored: whether they are YCbCr is the header's word (and the markers'), not libjpeg's.
        image.draft("YCbCr", target)
        image.load()
        raw = np.asarray(image)
        return raw, ("YBR_FULL" if effective in _YBR or effective.startswith("YBR") else "RGB")


def _target(size: tuple[int, int], max_side: int) -> tuple[int, int]:
    width, height = size
    scale = min(1.0, _OVERSAMPLE * max_side / max(width, height))
    return max(1, math.ceil(width * scale)), max(1, math.ceil(height * scale))


def _whole_frame(encoded: bytes, syntax: str, info: DicomInfo, photometric: str,
                 step: int) -> tuple[np.ndarray, str]:
    rows, columns = info.rows or 0, info.columns or 0
    samples = info.samples_per_pixel or 1
    bits = info.bits_allocated or 16
    decoded = rows * columns * samples * max(1, math.ceil(bits / 8))
    cost = _DECODE_COST.get(syntax, 4.5)
    if decoded * cost > MAX_FULL_DECODE_BYTES:
        megapixels = MAX_FULL_DECODE_BYTES / cost / (samples * max(1, math.ceil(bits / 8))) / 1e6
        raise DamagedImage(
            f"this DICOM image is {columns}x{rows} pixels; with its compression at most {megapixels:.1f} "
            "megapixels can be drawn. Export it uncompressed or as baseline JPEG, or at a lower resolution"
        )
    # Writers pad an odd-length frame after the marker, with a NUL or an 0xFF.
    if syntax in _JPEG_FAMILY and _EOI not in encoded[-4:]:
        raise DamagedImage(_UNDECODABLE)
    declared = _declared_size(encoded, syntax)
    if declared is not None and declared != (columns, rows):
        # Decoders allocate what the codestream declares: a small header cannot vouch for a huge stream.
        raise DamagedImage(_UNDRAWABLE.format("its compressed data states another size than its header"))
    if syntax == _JPEG_EXTENDED:
        array = quietly(_gdcm_jpeg12, encoded, info, photometric)
        final = photometric
    else:
        options: dict[str, Any] = {
            "rows": rows, "columns": columns, "samples_per_pixel": samples, "bits_allocated": bits,
            "bits_stored": info.bits_stored or bits, "pixel_representation": info.pixel_representation or 0,
            "photometric_interpretation": photometric, "number_of_frames": 1,
        }
        if samples > 1:
            options["planar_configuration"] = info.planar_configuration or 0
        array, meta = _decode_with_preferred_plugin(UID(syntax), encapsulate([encoded]), options)
        final = str(meta.get("photometric_interpretation", photometric)).upper()
    reduced = np.ascontiguousarray(array[::step, ::step])
    del array
    if final in _GREY or samples == 1:
        return _stored_values(reduced, info, bits), final
    return reduced, final


# Which of pydicom's plugins decode what, in order of preference. Pillow's is left out: it decodes whole
# images of any declared size and, as pydicom's documentation says, does not always reproduce the samples.
_PLUGINS = {
    "1.2.840.10008.1.2.4.57": ("gdcm",),
    "1.2.840.10008.1.2.4.70": ("gdcm",),
    "1.2.840.10008.1.2.4.80": ("pyjpegls", "gdcm"),
    "1.2.840.10008.1.2.4.81": ("pyjpegls", "gdcm"),
    "1.2.840.10008.1.2.4.90": ("pylibjpeg", "gdcm"),
    "1.2.840.10008.1.2.4.91": ("pylibjpeg", "gdcm"),
    "1.2.840.10008.1.2.4.201": ("pylibjpeg",),
    "1.2.840.10008.1.2.4.202": ("pylibjpeg",),
    "1.2.840.10008.1.2.4.203": ("pylibjpeg",),
    "1.2.840.10008.1.2.5": ("pylibjpeg", "pydicom"),
}


def _decode_with_preferred_plugin(syntax: UID, encapsulated: bytes,
                                  options: dict[str, Any]) -> tuple[np.ndarray, dict[str, Any]]:
    decoder = get_decoder(syntax)
    available = set(decoder.available_plugins)
    failure: Exception | None = None
    for plugin in _PLUGINS.get(str(syntax), ()):
        if plugin not in available:
            continue
        try:
            array, meta = quietly(decoder.as_array, encapsulated, index=0, raw=True, decoding_plugin=plugin,
                                  **options)
            return array, dict(meta)
        except Exception as exc:  # the next plugin may read what this one cannot
            failure = exc
    raise DamagedImage(_UNDECODABLE) from failure


_SOF_MARKERS = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF, 0xF7})


def _declared_size(encoded: bytes, syntax: str) -> tuple[int, int] | None:
    """(width, height) the codestream itself declares (JPEG and JPEG-LS frame header, JPEG 2000 SIZ), or None
    where the syntax has none (RLE) or the header cannot be found (then the decoder judges)."""
    if syntax in _JPEG_FAMILY:
        position = 2
        while position + 9 <= len(encoded):
            if encoded[position] != 0xFF:
                return None
            marker = encoded[position + 1]
            if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
                position += 2
                continue
            length = int.from_bytes(encoded[position + 2 : position + 4], "big")
            if marker in _SOF_MARKERS:
                height = int.from_bytes(encoded[position + 5 : position + 7], "big")
                width = int.from_bytes(encoded[position + 7 : position + 9], "big")
                return width, height
            if marker == 0xDA:
                return None
            position += 2 + length
        return None
    if syntax.startswith("1.2.840.10008.1.2.4.9") or syntax.startswith("1.2.840.10008.1.2.4.20"):
        start = encoded.find(b"\xff\x4f\xff\x51")
        if start < 0 or start + 24 > len(encoded):
            return None
        fields = [int.from_bytes(encoded[start + offset : start + offset + 4], "big") for offset in (8, 12, 16, 20)]
        x_size, y_size, x_origin, y_origin = fields
        return x_size - x_origin, y_size - y_origin
    return None


def _gdcm_jpeg12(encoded: bytes, info: DicomInfo, photometric: str) -> np.ndarray:
    import gdcm

    rows, columns = info.rows or 0, info.columns or 0
    samples = info.samples_per_pixel or 1
    fragment = gdcm.Fragment()
    fragment.SetByteStringValue(encoded)
    fragments = gdcm.SequenceOfFragments.New()
    fragments.AddFragment(fragment)
    element = gdcm.DataElement(gdcm.Tag(0x7FE0, 0x0010))
    element.SetValue(fragments.__ref__())
    image = gdcm.Image()
    image.SetNumberOfDimensions(2)
    image.SetDimensions((columns, rows, 1))
    image.SetDataElement(element)
    image.SetPhotometricInterpretation(
        gdcm.PhotometricInterpretation(gdcm.PhotometricInterpretation.GetPIType(photometric)))
    image.SetTransferSyntax(gdcm.TransferSyntax(gdcm.TransferSyntax.JPEGExtendedProcess2_4))
    bits_stored = info.bits_stored or 12
    image.SetPixelFormat(gdcm.PixelFormat(samples, 16, bits_stored, bits_stored - 1,
                                          info.pixel_representation or 0))
    buffer = image.GetBuffer()
    if buffer is None:
        raise DamagedImage(_UNDECODABLE)
    raw = buffer.encode("utf-8", "surrogateescape")
    expected = rows * columns * samples * 2
    if len(raw) != expected:
        raise DamagedImage(_UNDECODABLE)
    shape = (rows, columns) if samples == 1 else (rows, columns, samples)
    return np.frombuffer(raw, "<u2").reshape(shape)


# --- display ---------------------------------------------------------------------------------------------


def _to_picture(frame: np.ndarray, photometric: str, info: DicomInfo, display: Dataset) -> Image.Image:
    if photometric in _GREY:
        return Image.fromarray(_grey_to_8bit(frame, photometric, display), "L")
    if photometric == "PALETTE COLOR":
        rgb = quietly(apply_color_lut, frame.astype(np.uint16), display)
        return Image.fromarray(_to_8bit_colour(rgb, 16 if rgb.dtype != np.uint8 else 8), "RGB")
    if frame.ndim != 3 or frame.shape[-1] != 3:
        raise DamagedImage(_UNDRAWABLE.format(f"{photometric} without three samples"))
    if photometric in _YBR:
        if frame.dtype != np.uint8:
            frame = frame.astype(np.uint16 if frame.max() > 255 else np.uint8)
        frame = quietly(convert_color_space, frame, "YBR_FULL", "RGB")
    elif photometric not in _COLOUR:
        raise DamagedImage(_UNDRAWABLE.format(f"photometric interpretation {photometric}"))
    bits = info.bits_stored or info.bits_allocated or 8
    return Image.fromarray(_to_8bit_colour(frame, bits), "RGB")


def _to_8bit_colour(values: np.ndarray, bits: int) -> np.ndarray:
    if values.dtype == np.uint8 and bits <= 8:
        return np.ascontiguousarray(values)
    top = float((1 << max(bits, 1)) - 1)
    scaled = np.clip(values.astype(np.float64) * (255.0 / top) + 0.5, 0, 255)
    return np.ascontiguousarray(scaled.astype(np.uint8))


def _grey_to_8bit(stored: np.ndarray, photometric: str, display: Dataset) -> np.ndarray:
    values = quietly(apply_modality_lut, stored, display)
    if display.get("VOILUTSequence"):
        lut_values = quietly(apply_voi_lut, np.rint(values).astype(np.int64), display, 0, True)
        depth = int(display.VOILUTSequence[0].LUTDescriptor[2]) or 16
        shown = lut_values.astype(np.float32) * np.float32(255.0 / ((1 << depth) - 1))
    else:
        # Single precision is ample for 8-bit output and halves the reduced frame's footprint.
        values = values.astype(np.float32)
        window = _window(display)
        if window is not None:
            shown = _apply_window(values, *window, display.get("VOILUTFunction"))
        else:
            low, high = float(np.min(values)), float(np.max(values))
            shown = (values - low) * np.float32(255.0 / (high - low)) if high > low else np.zeros_like(values)
    if photometric == "MONOCHROME1":
        shown = 255.0 - shown
    shown += 0.5
    np.clip(shown, 0, 255, out=shown)
    return shown.astype(np.uint8)


def _first_number(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, Sequence) and not isinstance(value, str | bytes):
        value = value[0] if len(value) else None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _window(display: Dataset) -> tuple[float, float] | None:
    center = _first_number(quietly(display.get, "WindowCenter"))
    width = _first_number(quietly(display.get, "WindowWidth"))
    if center is None or width is None or width < 1:
        return None
    return center, width


def _apply_window(values: np.ndarray, center: float, width: float, function: Any) -> np.ndarray:
    if str(function or "").upper() == "SIGMOID":
        # PS3.3 C.11.2.1.3.1
        return 255.0 / (1.0 + np.exp(-4.0 * (values - center) / width))
    if str(function or "").upper() == "LINEAR_EXACT":
        return (values - center) / width * 255.0 + 127.5
    # PS3.3 C.11.2.1.2.1: a width of exactly 1 is a threshold at c - 0.5; a tiny divisor gives the same.
    span = max(width - 1.0, 1e-3)
    return ((values - (center - 0.5)) / span + 0.5) * 255.0
