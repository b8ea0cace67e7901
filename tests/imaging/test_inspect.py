from __future__ import annotations

import io
import math
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image

from referral.imaging import DamagedImage as PackageDamagedImage
from referral.imaging import UnsupportedImageType as PackageUnsupportedImageType
from referral.imaging.inspect import (
    MAX_PIXELS,
    DamagedImage,
    Inspection,
    UnsupportedImageType,
    inspect_image,
)
from referral.imaging.limits import MAX_DECODE_BYTES
from referral.imaging.sniff import ImageFormat
from tests.support import samples


def inspect_bytes(data: bytes) -> Inspection:
    return inspect_image(io.BytesIO(data), len(data))


@pytest.mark.parametrize(
    ("factory", "image_format", "content_type"),
    [
        (samples.jpeg_bytes, ImageFormat.JPEG, "image/jpeg"),
        (samples.png_bytes, ImageFormat.PNG, "image/png"),
        (samples.tiff_bytes, ImageFormat.TIFF, "image/tiff"),
    ],
    ids=["jpeg", "png", "tiff"],
)
def test_photos_are_identified_with_their_dimensions(
    factory: Callable[..., bytes], image_format: ImageFormat, content_type: str
) -> None:
    inspection = inspect_bytes(factory(64, 48))
    assert inspection == Inspection(
        format=image_format, content_type=content_type, width=64, height=48, dicom=None
    )


def test_dicom_is_identified_with_its_header_details() -> None:
    inspection = inspect_bytes(samples.dicom_bytes(rows=32, columns=40, teeth=("19", "20")))
    assert inspection.format is ImageFormat.DICOM
    assert inspection.content_type == "application/dicom"
    assert (inspection.width, inspection.height) == (40, 32)
    assert inspection.dicom is not None
    assert inspection.dicom.teeth == ["19", "20"]
    assert inspection.dicom.is_intraoral_radiograph


def test_encapsulated_jpeg_dicom_is_accepted() -> None:
    inspection = inspect_bytes(samples.encapsulated_dicom_bytes(rows=48, columns=64))
    assert inspection.format is ImageFormat.DICOM
    assert (inspection.width, inspection.height) == (64, 48)


def test_jpeg_dimensions_follow_the_exif_orientation_as_displayed() -> None:
    sideways = inspect_bytes(samples.jpeg_bytes(64, 48, exif_orientation=6))
    upright = inspect_bytes(samples.jpeg_bytes(64, 48, exif_orientation=1))
    assert (sideways.width, sideways.height) == (48, 64)
    assert (upright.width, upright.height) == (64, 48)


def test_jpeg_with_gps_exif_is_inspected_like_any_other() -> None:
    data = samples.jpeg_bytes(gps=True)
    with Image.open(io.BytesIO(data)) as image:
        assert image.getexif().get_ifd(0x8825)  # the sample really carries GPS
    assert inspect_bytes(data).format is ImageFormat.JPEG


def test_the_stream_is_rewound_after_inspection() -> None:
    stream = io.BytesIO(samples.png_bytes())
    stream.seek(10)
    inspect_image(stream, len(stream.getvalue()))
    assert stream.tell() == 0


def test_the_stream_is_rewound_even_after_a_refusal() -> None:
    stream = io.BytesIO(samples.html_bytes())
    with pytest.raises(UnsupportedImageType):
        inspect_image(stream, len(stream.getvalue()))
    assert stream.tell() == 0


def test_an_empty_file_is_damaged() -> None:
    with pytest.raises(DamagedImage, match=r"^the file is empty"):
        inspect_bytes(b"")


def test_a_size_larger_than_the_stream_cannot_push_checks_past_the_data() -> None:
    data = samples.truncated(samples.dicom_bytes(), 0.8)
    with pytest.raises(DamagedImage):
        inspect_image(io.BytesIO(data), len(data) + 10_000)


@pytest.mark.parametrize(
    "factory",
    [
        samples.html_bytes,
        samples.svg_bytes,
        samples.zip_bytes,
        samples.exe_bytes,
        samples.elf_bytes,
        samples.pdf_bytes,
        samples.gif_bytes,
        samples.bmp_bytes,
    ],
    ids=["html", "svg", "zip-named-dcm", "pe", "elf", "pdf", "gif", "bmp"],
)
def test_non_images_and_unaccepted_formats_are_unsupported(factory: Callable[[], bytes]) -> None:
    with pytest.raises(UnsupportedImageType) as raised:
        inspect_bytes(factory())
    message = str(raised.value)
    for accepted in ("DICOM Part 10", "JPEG", "PNG", "TIFF"):
        assert accepted in message


def test_a_zip_named_dcm_holding_a_real_dicom_is_still_refused() -> None:
    data = samples.zip_bytes(member="study.dcm")
    assert b"DICM" in data
    with pytest.raises(UnsupportedImageType):
        inspect_bytes(data)


def test_error_classes_are_shared_with_the_package() -> None:
    assert DamagedImage is PackageDamagedImage
    assert UnsupportedImageType is PackageUnsupportedImageType
    assert not issubclass(DamagedImage, UnsupportedImageType)
    assert not issubclass(UnsupportedImageType, DamagedImage)


def test_a_pixel_flood_png_is_refused_before_decoding() -> None:
    data = samples.pixel_flood_png()
    assert len(data) < 200
    started = time.perf_counter()
    with pytest.raises(DamagedImage, match="pixels") as raised:
        inspect_bytes(data)
    assert time.perf_counter() - started < 1
    assert f"{MAX_PIXELS:,}" in str(raised.value)


def test_the_pixel_limit_does_not_touch_pillows_global_setting() -> None:
    before = Image.MAX_IMAGE_PIXELS
    with pytest.raises(DamagedImage):
        inspect_bytes(samples.pixel_flood_png())
    assert before == Image.MAX_IMAGE_PIXELS


def test_the_pixel_limit_is_inclusive_and_judged_from_the_header_alone() -> None:
    # These files hold no real pixels: the limit must be applied without them.
    with pytest.raises(DamagedImage, match="limit of 100,000,000 pixels"):
        inspect_bytes(samples.pixel_flood_png(10_001, 10_000))


def _flood_png_16(side: int) -> bytes:
    """A tiny PNG whose header claims ``side`` x ``side`` 16-bit grey pixels."""
    import struct
    import zlib

    from tests.support.samples import _png_chunk

    header = struct.pack(">LLBBBBB", side, side, 16, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", zlib.compress(b"\x00" * 64))
            + _png_chunk(b"IEND", b""))


def test_a_png_is_accepted_up_to_the_decode_budget_judged_from_its_header() -> None:
    # 16-bit grey: two bytes a pixel, times the PNG decoder's measured overhead of 1.4.
    side = math.isqrt(int(MAX_DECODE_BYTES / 2.8))
    while int((side + 1) ** 2 * 2 * 1.4) <= MAX_DECODE_BYTES:
        side += 1
    at_budget = inspect_bytes(_flood_png_16(side))
    assert (at_budget.width, at_budget.height) == (side, side)
    with pytest.raises(DamagedImage, match="memory limit"):
        inspect_bytes(_flood_png_16(side + 1))


@pytest.mark.parametrize(
    "factory",
    [
        samples.jpeg_bytes,
        samples.png_bytes,
        samples.tiff_bytes,
        samples.dicom_bytes,
        samples.encapsulated_dicom_bytes,
    ],
    ids=["jpeg", "png", "tiff", "dicom", "encapsulated-dicom"],
)
@pytest.mark.parametrize("keep", [0.1, 0.5, 0.9, 0.99])
def test_truncated_files_of_every_format_are_damaged(factory: Callable[[], bytes], keep: float) -> None:
    with pytest.raises(DamagedImage):
        inspect_bytes(samples.truncated(factory(), keep))


@pytest.mark.parametrize(
    "factory",
    [samples.jpeg_bytes, samples.png_bytes, samples.tiff_bytes, samples.dicom_bytes],
    ids=["jpeg", "png", "tiff", "dicom"],
)
def test_losing_only_the_last_byte_is_detected(factory: Callable[[], bytes]) -> None:
    data = factory()
    with pytest.raises(DamagedImage):
        inspect_bytes(data[:-1])


def test_a_jpeg_with_a_corrupt_huffman_table_is_damaged() -> None:
    data = bytearray(samples.jpeg_bytes())
    table = data.index(b"\xff\xc4")
    data[table + 4 : table + 20] = b"\xff" * 16
    with pytest.raises(DamagedImage, match="truncated or damaged"):
        inspect_bytes(bytes(data))


def test_a_jpeg_claiming_zero_width_is_damaged() -> None:
    data = bytearray(samples.jpeg_bytes())
    frame = data.index(b"\xff\xc0")
    data[frame + 7 : frame + 9] = b"\x00\x00"
    with pytest.raises(DamagedImage):
        inspect_bytes(bytes(data))


def test_a_png_with_a_bad_chunk_crc_is_damaged() -> None:
    data = bytearray(samples.png_bytes())
    idat = data.index(b"IDAT")
    data[idat + 6] ^= 0xFF
    with pytest.raises(DamagedImage, match="truncated or damaged"):
        inspect_bytes(bytes(data))


@pytest.mark.parametrize(
    "factory",
    [
        samples.pixel_flood_png,
        samples.deeply_nested_dicom,
        samples.dicom_without_pixels,
        lambda: samples.truncated(samples.dicom_bytes(rows=128, columns=128)),
    ],
    ids=["pixel-flood", "deep-dicom", "no-pixels", "truncated-dicom"],
)
def test_hostile_files_are_refused_quickly(factory: Callable[[], bytes]) -> None:
    data = factory()
    started = time.perf_counter()
    with pytest.raises(DamagedImage):
        inspect_bytes(data)
    assert time.perf_counter() - started < 0.5


def test_refusal_messages_never_quote_the_file() -> None:
    data = samples.truncated(samples.dicom_bytes(patient_name="Secretname^Pat", patient_id="MRN-778899"), 0.9)
    with pytest.raises(DamagedImage) as raised:
        inspect_bytes(data)
    message = str(raised.value)
    assert "Secretname" not in message
    assert "MRN-778899" not in message
    assert raised.value.__cause__ is None


@pytest.mark.slow
def test_a_60_mb_dicom_is_inspected_without_memory_growing_with_its_size(tmp_path: Path) -> None:
    path = tmp_path / "large.dcm"
    size = samples.write_large_dicom(path, 60)
    assert size >= 60 * 1000 * 1000
    with path.open("rb") as stream:
        tracemalloc.start()
        try:
            inspection = inspect_image(stream, size)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert inspection.format is ImageFormat.DICOM
    assert inspection.dicom is not None
    assert inspection.dicom.teeth == ["19"]
    assert inspection.width is not None
    assert inspection.height is not None
    assert inspection.width * inspection.height * 2 >= 60 * 1000 * 1000
    assert peak < 10 * 1024 * 1024


@pytest.mark.slow
def test_a_60_mb_dicom_cut_short_is_damaged(tmp_path: Path) -> None:
    path = tmp_path / "large.dcm"
    size = samples.write_large_dicom(path, 60)
    with path.open("r+b") as stream:
        stream.truncate(size - 1)
    with path.open("rb") as stream, pytest.raises(DamagedImage, match="truncated"):
        inspect_image(stream, size - 1)
