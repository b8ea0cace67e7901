from __future__ import annotations

import pytest

from referral.imaging.sniff import CONTENT_TYPES, HEAD_BYTES, ImageFormat, sniff
from tests.support import samples


def head(data: bytes) -> bytes:
    return data[:HEAD_BYTES]


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (samples.dicom_bytes(), ImageFormat.DICOM),
        (samples.jpeg_bytes(), ImageFormat.JPEG),
        (samples.png_bytes(), ImageFormat.PNG),
        (samples.tiff_bytes(), ImageFormat.TIFF),
    ],
    ids=["dicom", "jpeg", "png", "tiff"],
)
def test_each_accepted_format_is_recognised_from_its_first_bytes(data: bytes, expected: ImageFormat) -> None:
    assert sniff(head(data)) is expected


def test_big_endian_tiff_is_recognised() -> None:
    assert sniff(b"MM\x00*" + b"\x00" * 12) is ImageFormat.TIFF


@pytest.mark.parametrize(
    "data",
    [
        samples.html_bytes(),
        samples.svg_bytes(),
        samples.zip_bytes(),
        samples.exe_bytes(),
        samples.elf_bytes(),
        samples.pdf_bytes(),
        samples.gif_bytes(),
        samples.bmp_bytes(),
        b"",
        b"\xff\xd8",
        b"II*",
    ],
    ids=["html", "svg", "zip", "pe", "elf", "pdf", "gif", "bmp", "empty", "short-jpeg", "short-tiff"],
)
def test_anything_else_is_not_recognised(data: bytes) -> None:
    assert sniff(head(data)) is None


def test_dicom_without_the_part_10_marker_is_not_recognised() -> None:
    data = bytearray(samples.dicom_bytes())
    data[128:132] = b"DICX"
    assert sniff(head(bytes(data))) is None


def test_dicom_marker_wins_over_a_tiff_header_in_the_preamble() -> None:
    # Dual-personality DICOM/TIFF files put a TIFF header in the preamble.
    data = bytearray(samples.dicom_bytes())
    data[0:4] = b"II*\x00"
    assert sniff(head(bytes(data))) is ImageFormat.DICOM


def test_a_dicom_marker_at_the_wrong_offset_is_not_recognised() -> None:
    assert sniff(b"DICM" + b"\x00" * 128) is None


def test_every_format_has_a_content_type_and_str_values() -> None:
    assert CONTENT_TYPES == {
        ImageFormat.DICOM: "application/dicom",
        ImageFormat.JPEG: "image/jpeg",
        ImageFormat.PNG: "image/png",
        ImageFormat.TIFF: "image/tiff",
        ImageFormat.WEBP: "image/webp",
        ImageFormat.HEIC: "image/heic",
    }
    assert ImageFormat.DICOM == "dicom"
    assert ImageFormat("png") is ImageFormat.PNG
