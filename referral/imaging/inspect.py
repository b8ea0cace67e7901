"""Decide whether an uploaded file is an image we accept, and describe it.

The caller has already written the upload to a seekable temporary file. Raster
formats are handed to Pillow only after their header dimensions pass
``MAX_PIXELS`` and, for formats decoded whole, ``MAX_DECODE_BYTES`` (see
``limits``); then they are decoded in ways whose memory cost is bounded (PNG
is only verified here, JPEG decoded strictly at 1/8 scale).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import BinaryIO

from pi_heif.as_plugin import HeifImageFile
from PIL import Image, ImageFile, JpegImagePlugin, PngImagePlugin, TiffImagePlugin, WebPImagePlugin

from referral.imaging import DamagedImage, UnsupportedImageType, jpeg
from referral.imaging.dicom import DicomInfo, read_dicom
from referral.imaging.limits import MAX_DECODE_BYTES, MAX_PIXELS
from referral.imaging.sniff import CONTENT_TYPES, HEAD_BYTES, ImageFormat, sniff

__all__ = [
    "MAX_DECODE_BYTES",
    "MAX_PIXELS",
    "DamagedImage",
    "Inspection",
    "UnsupportedImageType",
    "decode_cost",
    "inspect_image",
]

_ACCEPTED = "DICOM Part 10 (.dcm), JPEG, PNG, TIFF, WebP or HEIC"
_DAMAGED = "the image is truncated or damaged; export it again from the camera or imaging software"

# Opening through the format's own class (instead of Image.open) skips
# Pillow's global decompression-bomb check, which warns rather than fails
# below 2x its limit; our own MAX_PIXELS check runs first instead, without
# touching Pillow's process-wide Image.MAX_IMAGE_PIXELS.
RASTER_CLASSES: dict[ImageFormat, type[ImageFile.ImageFile]] = {
    ImageFormat.JPEG: JpegImagePlugin.JpegImageFile,
    ImageFormat.PNG: PngImagePlugin.PngImageFile,
    ImageFormat.TIFF: TiffImagePlugin.TiffImageFile,
    ImageFormat.WEBP: WebPImagePlugin.WebPImageFile,
    ImageFormat.HEIC: HeifImageFile,
}
# Formats whose decoders produce the whole image at once (JPEG is decoded scaled).
_WHOLE_DECODE = frozenset({ImageFormat.PNG, ImageFormat.TIFF, ImageFormat.WEBP, ImageFormat.HEIC})
# Bytes per pixel as Pillow holds an image: 8-bit single-band modes take one, 16-bit grey two, and every
# other mode a 32-bit cell.
_BYTES_PER_PIXEL = {"1": 1, "L": 1, "P": 1, "I;16": 2, "I;16L": 2, "I;16B": 2, "I;16N": 2}
# Peak memory of decoding over the decoded image, measured on images at the budget and rounded up: libwebp
# decodes into buffers of its own before Pillow's copy; libheif holds its YCbCr planes and RGB buffer (HEIC is
# read from that buffer directly, see heic.py).
_DECODER_OVERHEAD = {ImageFormat.PNG: 1.4, ImageFormat.TIFF: 1.4, ImageFormat.WEBP: 4.0, ImageFormat.HEIC: 1.25}
_EXIF_ORIENTATION = 0x0112
_ROTATED_ORIENTATIONS = frozenset({5, 6, 7, 8})
_PNG_IEND_CRC = b"\xaeB`\x82"


@dataclass
class Inspection:
    """What an accepted upload is.

    ``width`` and ``height`` are as displayed: for JPEG and TIFF the EXIF
    orientation is applied, so a portrait photo stored sideways reports its
    portrait size (PNG's rarely honoured eXIf chunk is ignored). For DICOM
    they are Columns and Rows.
    """

    format: ImageFormat
    content_type: str
    width: int | None
    height: int | None
    dicom: DicomInfo | None


def _too_many_pixels(width: int, height: int) -> DamagedImage:
    return DamagedImage(
        f"the image is {width}x{height} pixels, more than the limit of {MAX_PIXELS:,} pixels; "
        "export it at a lower resolution"
    )


def decode_cost(image: Image.Image, image_format: ImageFormat) -> int:
    """Bytes held while the whole image is decoded."""
    width, height = image.size
    return int(width * height * _BYTES_PER_PIXEL.get(image.mode, 4) * _DECODER_OVERHEAD.get(image_format, 1.0))


def _too_large_to_decode(width: int, height: int, image_format: ImageFormat) -> DamagedImage:
    return DamagedImage(
        f"the image is {width}x{height} pixels, more than a {image_format.value.upper()} of this kind can be "
        f"drawn within the memory limit of {MAX_DECODE_BYTES // 2**20} MiB; export it at a lower resolution "
        "or as JPEG"
    )


def _displayed_size(image: ImageFile.ImageFile) -> tuple[int, int]:
    width, height = image.size
    try:
        orientation = image.getexif().get(_EXIF_ORIENTATION)
    except Exception:
        # A broken EXIF block says nothing about whether the pixels are sound.
        orientation = None
    if orientation in _ROTATED_ORIENTATIONS:
        return height, width
    return width, height


def _inspect_raster(fp: BinaryIO, image_format: ImageFormat) -> tuple[int, int]:
    image_class = RASTER_CLASSES[image_format]
    try:
        with image_class(fp) as image:
            width, height = image.size
            if width <= 0 or height <= 0:
                raise DamagedImage(_DAMAGED)
            if width * height > MAX_PIXELS:
                raise _too_many_pixels(width, height)
            if image_format in _WHOLE_DECODE and decode_cost(image, image_format) > MAX_DECODE_BYTES:
                raise _too_large_to_decode(width, height, image_format)
            if image_format is ImageFormat.PNG:
                # verify() checks every chunk CRC through to IEND without
                # decompressing, so memory stays flat whatever the size. It
                # must run on an untouched image, hence before anything else.
                image.verify()
                # Pillow stops at the IEND header without reading its CRC; a
                # file cut inside those last four bytes is still truncated.
                if fp.read(4) != _PNG_IEND_CRC:
                    raise DamagedImage(_DAMAGED)
                return width, height
            displayed = _displayed_size(image)
            if isinstance(image, JpegImagePlugin.JpegImageFile):
                if jpeg.is_progressive(image) and jpeg.progressive_coefficient_bytes(image) > MAX_DECODE_BYTES:
                    raise DamagedImage(
                        f"the image is a progressive JPEG of {width}x{height} pixels, more than can be decoded "
                        f"within the memory limit of {MAX_DECODE_BYTES // 2**20} MiB; export it as a baseline "
                        "JPEG or at a lower resolution")
                # Decoding at reduced scale still consumes every byte of the entropy-coded data, and strictly,
                # so data cut short is caught even when an end-of-image marker was appended.
                fp.seek(0)
                jpeg.check_complete(fp.read())
            elif image_format is ImageFormat.HEIC:
                # Decoding is left to the preview, which intake draws before storing anything: a second
                # full decode here would cost its memory twice over. Only the header is read.
                pass
            else:
                image.load()
            return displayed
    except DamagedImage:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise DamagedImage(
            f"the image is larger than the limit of {MAX_PIXELS:,} pixels; export it at a lower resolution"
        ) from None
    except Exception as exc:
        raise DamagedImage(_DAMAGED) from exc


def _stream_size(fp: BinaryIO, size: int) -> int:
    # Trust the smaller of the caller's figure and the stream's real length, so
    # bounds checks can never point past the data actually there.
    end = fp.seek(0, os.SEEK_END)
    fp.seek(0)
    return max(0, min(size, end))


def inspect_image(fp: BinaryIO, size: int) -> Inspection:
    """Identify and check an uploaded image held in a seekable binary file.

    A HEIC photo is checked from its header only: its pixels are decoded when its preview is drawn, which
    is where a damaged one is refused.

    ``size`` is the number of bytes written to ``fp``. Raises
    UnsupportedImageType (answer 415) or DamagedImage (answer 422); the
    messages are safe to show to the uploader and never quote file contents.
    The stream is left positioned at its start.
    """
    try:
        size = _stream_size(fp, size)
        if size == 0:
            raise DamagedImage("the file is empty; choose the image file again and re-upload it")
        head = fp.read(HEAD_BYTES)
        image_format = sniff(head)
        if image_format is None:
            raise UnsupportedImageType(f"this file is not a supported image; upload {_ACCEPTED}")
        fp.seek(0)

        if image_format is ImageFormat.DICOM:
            info = read_dicom(fp, size)
            if info.rows is not None and info.columns is not None and info.rows * info.columns > MAX_PIXELS:
                raise _too_many_pixels(info.columns, info.rows)
            return Inspection(
                format=image_format,
                content_type=CONTENT_TYPES[image_format],
                width=info.columns,
                height=info.rows,
                dicom=info,
            )

        width, height = _inspect_raster(fp, image_format)
        return Inspection(
            format=image_format,
            content_type=CONTENT_TYPES[image_format],
            width=width,
            height=height,
            dicom=None,
        )
    finally:
        fp.seek(0)
