"""Decide whether an uploaded file is an image we accept, and describe it.

The caller has already written the upload to a seekable temporary file; this
module never reads it whole. Raster formats are handed to Pillow only after
their header dimensions pass ``MAX_PIXELS``, and then decoded in ways whose
memory cost is bounded (PNG is only verified, JPEG decoded at 1/8 scale).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import BinaryIO

from PIL import Image, ImageFile, JpegImagePlugin, PngImagePlugin, TiffImagePlugin

from referral.imaging import DamagedImage, UnsupportedImageType
from referral.imaging.dicom import DicomInfo, read_dicom
from referral.imaging.sniff import CONTENT_TYPES, HEAD_BYTES, ImageFormat, sniff

__all__ = [
    "MAX_PIXELS",
    "DamagedImage",
    "Inspection",
    "UnsupportedImageType",
    "inspect_image",
]

MAX_PIXELS = 100_000_000

_ACCEPTED = "DICOM Part 10 (.dcm), JPEG, PNG or TIFF"
_DAMAGED = "the image is truncated or damaged; export it again from the camera or imaging software"

# Opening through the format's own class (instead of Image.open) skips
# Pillow's global decompression-bomb check, which warns rather than fails
# below 2x its limit; our own MAX_PIXELS check runs first instead, without
# touching Pillow's process-wide Image.MAX_IMAGE_PIXELS.
RASTER_CLASSES: dict[ImageFormat, type[ImageFile.ImageFile]] = {
    ImageFormat.JPEG: JpegImagePlugin.JpegImageFile,
    ImageFormat.PNG: PngImagePlugin.PngImageFile,
    ImageFormat.TIFF: TiffImagePlugin.TiffImageFile,
}
_EXIF_ORIENTATION = 0x0112
_ROTATED_ORIENTATIONS = frozenset({5, 6, 7, 8})
_JPEG_DRAFT_SCALE = 8
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
            if image_format is ImageFormat.JPEG:
                # Decoding at reduced scale still consumes every byte of the
                # entropy-coded data, so truncation is caught at ~1/64 the memory.
                image.draft(
                    None,
                    (max(1, width // _JPEG_DRAFT_SCALE), max(1, height // _JPEG_DRAFT_SCALE)),
                )
                image.load()
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
