"""Recognise upload formats from their first bytes.

Filenames and client-supplied Content-Type are deliberately never consulted:
both are attacker-controlled and say nothing about what a decoder will see.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["CONTENT_TYPES", "HEAD_BYTES", "ImageFormat", "sniff"]


class ImageFormat(StrEnum):
    """A str subclass, so members compare equal to and serialise as their values."""

    DICOM = "dicom"
    JPEG = "jpeg"
    PNG = "png"
    TIFF = "tiff"
    WEBP = "webp"
    HEIC = "heic"


CONTENT_TYPES: dict[ImageFormat, str] = {
    ImageFormat.DICOM: "application/dicom",
    ImageFormat.JPEG: "image/jpeg",
    ImageFormat.PNG: "image/png",
    ImageFormat.TIFF: "image/tiff",
    ImageFormat.WEBP: "image/webp",
    ImageFormat.HEIC: "image/heic",
}

# DICOM Part 10 puts its marker after a 128-byte preamble, so that is how far
# one has to look; every other accepted format is recognisable much sooner.
HEAD_BYTES = 132

_DICOM_PREAMBLE = 128
_DICOM_MAGIC = b"DICM"
_JPEG_MAGIC = b"\xff\xd8\xff"
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_TIFF_MAGICS = (b"II*\x00", b"MM\x00*")
# HEIF files open with an ISO BMFF 'ftyp' box: size, 'ftyp', major brand, minor version, compatible brands.
# Only HEVC-coded brands are taken (phones' HEIC); AVIF and other codecs inside HEIF are not decoded here.
_HEVC_BRANDS = frozenset({b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx"})
_HEIF_GENERIC_BRANDS = frozenset({b"mif1", b"msf1"})


def sniff(head: bytes) -> ImageFormat | None:
    """Identify the format from the first ``HEAD_BYTES`` bytes, or None if unrecognised."""
    # DICOM goes first: its free-form preamble may legitimately hold a TIFF
    # header (dual-personality files), and the DICOM reading is the one we want.
    if head[_DICOM_PREAMBLE : _DICOM_PREAMBLE + len(_DICOM_MAGIC)] == _DICOM_MAGIC:
        return ImageFormat.DICOM
    if head.startswith(_JPEG_MAGIC):
        return ImageFormat.JPEG
    if head.startswith(_PNG_MAGIC):
        return ImageFormat.PNG
    if head.startswith(_TIFF_MAGICS):
        return ImageFormat.TIFF
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return ImageFormat.WEBP
    if head[4:8] == b"ftyp" and _is_hevc_heif(head):
        return ImageFormat.HEIC
    return None


def _is_hevc_heif(head: bytes) -> bool:
    box_size = int.from_bytes(head[:4], "big")
    major = head[8:12]
    if major in _HEVC_BRANDS:
        return True
    if major not in _HEIF_GENERIC_BRANDS:
        return False
    end = min(len(head), max(box_size, 16))
    compatible = {head[offset : offset + 4] for offset in range(16, end - 3, 4)}
    return bool(compatible & _HEVC_BRANDS)
