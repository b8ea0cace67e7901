from __future__ import annotations

import io
import struct
import sys
import tracemalloc
from array import array
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import pytest
from PIL import Image
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.encaps import encapsulate

from referral.imaging.inspect import DamagedImage, Inspection, inspect_image
from referral.imaging.previews import PREVIEW_MAX_SIDE, THUMBNAIL_MAX_SIDE, render, render_previews
from referral.imaging.sniff import ImageFormat
from tests.support import samples


def inspected(data: bytes) -> tuple[io.BytesIO, Inspection]:
    fp = io.BytesIO(data)
    return fp, inspect_image(fp, len(data))


def preview_of(data: bytes, max_side: int = PREVIEW_MAX_SIDE) -> Image.Image:
    fp, inspection = inspected(data)
    image = Image.open(io.BytesIO(render(fp, inspection, max_side=max_side)))
    image.load()
    return image


def gray(image: Image.Image, x: int, y: int) -> int:
    value = image.convert("L").getpixel((x, y))
    assert isinstance(value, int)
    return value


def radiograph(
    values: list[int],
    rows: int,
    columns: int,
    *,
    bits: int = 16,
    bits_stored: int | None = None,
    signed: bool = False,
    photometric: str = "MONOCHROME2",
    window: tuple[float, float] | None = None,
    rescale: tuple[float, float] | None = None,
    transfer_syntax: str = "explicit_le",
    frames: int = 1,
    samples_per_pixel: int = 1,
    planar: int | None = None,
) -> bytes:
    """A DICOM file holding exactly ``values`` (row by row, frame by frame) with the given encoding."""
    if bits == 16:
        packed = array("h" if signed else "H", values)
        if (sys.byteorder == "big") != (transfer_syntax == "explicit_be"):
            packed.byteswap()
        pixel_data = packed.tobytes()
    else:
        pixel_data = bytes(value & 0xFF for value in values)

    def encode(ds: Dataset) -> None:
        ds.BitsAllocated = bits
        ds.BitsStored = bits_stored or bits
        ds.HighBit = (bits_stored or bits) - 1
        ds.PixelRepresentation = 1 if signed else 0
        ds.PhotometricInterpretation = photometric
        ds.SamplesPerPixel = samples_per_pixel
        if planar is not None:
            ds.PlanarConfiguration = planar
        if frames > 1:
            ds.NumberOfFrames = frames
        del ds.WindowCenter
        del ds.WindowWidth
        if window is not None:
            ds.WindowCenter, ds.WindowWidth = window
        if rescale is not None:
            ds.RescaleSlope, ds.RescaleIntercept = rescale
        ds.PixelData = pixel_data
        ds["PixelData"].VR = "OW" if bits == 16 else "OB"

    return samples.dicom_bytes(rows=rows, columns=columns, transfer_syntax=transfer_syntax, mutate=encode)


def three_bands(low: int, middle: int, high: int, size: int = 48) -> list[int]:
    """Vertical bands, left to right: ``low``, ``middle``, ``high``."""
    third = size // 3
    row = [low] * third + [middle] * third + [high] * (size - 2 * third)
    return row * size


def band_values(image: Image.Image) -> tuple[int, int, int]:
    width, height = image.size
    return (gray(image, width // 6, height // 2), gray(image, width // 2, height // 2),
            gray(image, width * 5 // 6, height // 2))


# --- DICOM grey levels ------------------------------------------------------------------


def test_a_windowed_radiograph_is_black_below_the_window_white_above_it_and_grey_at_its_centre():
    data = radiograph(three_bands(100, 1000, 3000), 48, 48, window=(1000, 200))

    left, middle, right = band_values(preview_of(data))

    assert left <= 3
    assert 120 <= middle <= 136
    assert right >= 252


def test_the_window_is_applied_with_the_dicom_linear_formula():
    # c = 2000, w = 1001: x = c - 0.5 - 250 is a quarter of the way up, x = c - 0.5 + 250 three quarters.
    data = radiograph(three_bands(1750, 2000, 2250, size=60), 60, 60, window=(2000.5, 1001))

    left, middle, right = band_values(preview_of(data))

    assert abs(left - 64) <= 3
    assert abs(middle - 128) <= 3
    assert abs(right - 191) <= 3


def test_monochrome1_is_shown_inverted():
    normal = radiograph(three_bands(100, 1000, 3000), 48, 48, window=(1000, 200))
    inverted = radiograph(three_bands(100, 1000, 3000), 48, 48, window=(1000, 200), photometric="MONOCHROME1")

    left, _, right = band_values(preview_of(inverted))

    assert left >= 252, "the lowest values are white in MONOCHROME1"
    assert right <= 3
    assert band_values(preview_of(normal))[0] <= 3


def test_without_a_window_the_values_are_stretched_from_minimum_to_maximum():
    data = radiograph(three_bands(1000, 1050, 1100), 48, 48)

    left, middle, right = band_values(preview_of(data))

    assert left <= 3
    assert 120 <= middle <= 136
    assert right >= 252


def test_rescale_slope_and_intercept_apply_before_the_window():
    # Stored 0, 50, 100 are -1000, -500, 0 after rescale; the window is centred on -500.
    data = radiograph(three_bands(0, 50, 100), 48, 48, rescale=(10, -1000), window=(-500, 200))

    left, middle, right = band_values(preview_of(data))

    assert left <= 3
    assert 120 <= middle <= 136
    assert right >= 252


def test_signed_pixels_are_read_as_twos_complement():
    data = radiograph(three_bands(-1000, 0, 1000), 48, 48, signed=True)

    left, middle, right = band_values(preview_of(data))

    assert left <= 3, "-1000 is the minimum, not 64536"
    assert 120 <= middle <= 136
    assert right >= 252


def test_signed_values_narrower_than_their_container_are_sign_extended():
    # 12-bit two's complement: 0xC18 is -1000, 0x3E8 is +1000.
    data = radiograph(three_bands(0xC18, 0, 0x3E8), 48, 48, bits_stored=12)
    signed = radiograph(three_bands(0xC18, 0, 0x3E8), 48, 48, bits_stored=12, signed=True)

    assert band_values(preview_of(data))[0] >= 252, "unsigned, 0xC18 is the largest value"
    left, middle, right = band_values(preview_of(signed))
    assert left <= 3
    assert 120 <= middle <= 136
    assert right >= 252


def test_bits_above_bits_stored_are_ignored():
    clean = three_bands(100, 2000, 4000)
    # Overlay data or garbage in the unused top nibble must not change the picture.
    dirty = [value | (0xF000 if index % 2 else 0) for index, value in enumerate(clean)]

    expected = band_values(preview_of(radiograph(clean, 48, 48, bits_stored=12)))
    actual = band_values(preview_of(radiograph(dirty, 48, 48, bits_stored=12)))

    assert actual == expected


def test_eight_bit_radiographs_are_drawn():
    data = radiograph(three_bands(10, 128, 250), 48, 48, bits=8, window=(128, 100))

    left, middle, right = band_values(preview_of(data))

    assert left <= 3
    assert 120 <= middle <= 136
    assert right >= 252


@pytest.mark.parametrize("transfer_syntax", ["implicit_le", "explicit_be"])
def test_other_native_transfer_syntaxes_give_the_same_picture(transfer_syntax: str):
    values = three_bands(100, 1000, 3000)
    reference = preview_of(radiograph(values, 48, 48, window=(1000, 200)))

    other = preview_of(radiograph(values, 48, 48, window=(1000, 200), transfer_syntax=transfer_syntax))

    assert other.tobytes() == reference.tobytes()


def test_a_multi_frame_file_shows_its_first_frame():
    first = three_bands(100, 100, 3000)
    second = three_bands(3000, 3000, 100)
    data = radiograph(first + second, 48, 48, frames=2, window=(1000, 200))

    left, _, right = band_values(preview_of(data))

    assert left <= 3
    assert right >= 252


@pytest.mark.parametrize("planar", [0, 1], ids=["interleaved", "planar"])
def test_colour_dicom_keeps_its_colours(planar: int):
    pixels = 32 * 32
    red, blue = [200, 20, 20], [20, 20, 200]
    if planar == 0:
        values = red * (pixels // 2) + blue * (pixels // 2)
    else:
        values = []
        for channel in range(3):
            values += [red[channel]] * (pixels // 2) + [blue[channel]] * (pixels // 2)
    data = radiograph(values, 32, 32, bits=8, photometric="RGB", samples_per_pixel=3, planar=planar)

    image = preview_of(data)

    assert image.mode == "RGB"
    top = image.getpixel((16, 4))
    bottom = image.getpixel((16, 28))
    assert isinstance(top, tuple)
    assert isinstance(bottom, tuple)
    assert top[0] > 150, f"the top half is red, got {top}"
    assert top[2] < 70, f"the top half is red, got {top}"
    assert bottom[2] > 150, f"the bottom half is blue, got {bottom}"
    assert bottom[0] < 70, f"the bottom half is blue, got {bottom}"


def test_an_encapsulated_baseline_jpeg_is_decoded():
    # The embedded frame is a vertical gradient, dark at the top.
    image = preview_of(samples.encapsulated_dicom_bytes(rows=48, columns=64))

    assert image.size == (64, 48)
    assert gray(image, 32, 2) < 30
    assert gray(image, 32, 45) > 220


@pytest.mark.parametrize(
    "mutate",
    [
        pytest.param(lambda ds: setattr(ds, "PixelData", encapsulate([b"\xff\xd8\xff\xe0 not a jpeg"])),
                     id="undecodable-fragment"),
        pytest.param(lambda ds: setattr(ds.file_meta, "TransferSyntaxUID", "1.2.840.10008.1.2.4.80"),
                     id="jpeg-frame-labelled-jpeg-ls"),
        pytest.param(lambda ds: setattr(ds.file_meta, "TransferSyntaxUID", "1.2.840.10008.1.2.5"),
                     id="jpeg-frame-labelled-rle"),
        pytest.param(lambda ds: setattr(ds.file_meta, "TransferSyntaxUID", "1.2.840.10008.1.2.4.100"),
                     id="mpeg2"),
    ],
)
def test_a_compressed_frame_that_cannot_be_drawn_is_refused_never_given_a_placeholder(
        mutate: Callable[[Any], None]):
    ds = dcmread(io.BytesIO(samples.encapsulated_dicom_bytes()))
    mutate(ds)
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    fp, inspection = inspected(buffer.getvalue())

    with pytest.raises(DamagedImage) as refusal:
        render_previews(fp, inspection)

    assert "DICOM" in str(refusal.value)
    assert fp.tell() == 0


# --- size, memory -------------------------------------------------------------------


def test_a_large_radiograph_is_sampled_down_to_the_preview_size_keeping_its_aspect():
    fp, inspection = inspected(samples.dicom_bytes(rows=2000, columns=1500))

    preview, thumbnail = (Image.open(io.BytesIO(data)) for data in render_previews(fp, inspection))

    assert preview.size == (1200, 1600)
    assert thumbnail.size == (192, 256)


class CountingReader(io.RawIOBase):
    """A file that counts the bytes read through it."""

    def __init__(self, inner: BinaryIO) -> None:
        super().__init__()
        self.inner = inner
        self.bytes_read = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self.inner.seek(offset, whence)

    def tell(self) -> int:
        return self.inner.tell()

    def readinto(self, buffer: Any) -> int:
        data = self.inner.read(len(buffer))
        buffer[: len(data)] = data
        self.bytes_read += len(data)
        return len(data)


@pytest.mark.slow
def test_a_60_mb_radiograph_is_previewed_from_a_sample_of_its_rows_in_little_memory(tmp_path: Path):
    path = tmp_path / "large.dcm"
    size = samples.write_large_dicom(path, 60)
    with path.open("rb") as raw:
        inspection = inspect_image(raw, size)
        counting = CountingReader(raw)
        tracemalloc.start()
        try:
            preview, thumbnail = render_previews(counting, inspection)  # type: ignore[arg-type]
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()

    # The reduced frame (about 3200 x 410 samples here) is held as integers, then as display values.
    assert peak < 24 * 1024 * 1024, f"peak traced memory {peak / 2**20:.1f} MiB"
    assert counting.bytes_read < size / 3, "only every k-th row is read"
    assert max(Image.open(io.BytesIO(preview)).size) == PREVIEW_MAX_SIDE
    assert max(Image.open(io.BytesIO(thumbnail)).size) == THUMBNAIL_MAX_SIDE


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (samples.jpeg_bytes(4000, 3000), (1600, 1200)),
        (samples.png_bytes(2400, 1000), (1600, 667)),
        (samples.tiff_bytes(1000, 2400), (667, 1600)),
        (samples.dicom_bytes(rows=1800, columns=2000), (1600, 1440)),
        (samples.jpeg_bytes(), (64, 48)),
    ],
    ids=["jpeg", "png", "tiff", "dicom", "small-jpeg"],
)
def test_previews_fit_1600_and_thumbnails_256_and_nothing_is_enlarged(data: bytes, expected: tuple[int, int]):
    fp, inspection = inspected(data)

    preview, thumbnail = (Image.open(io.BytesIO(jpeg)) for jpeg in render_previews(fp, inspection))

    assert preview.size == expected
    assert max(thumbnail.size) <= THUMBNAIL_MAX_SIDE
    assert thumbnail.size[0] / thumbnail.size[1] == pytest.approx(expected[0] / expected[1], rel=0.02)
    if max(expected) <= THUMBNAIL_MAX_SIDE:
        assert thumbnail.size == expected


def test_previews_are_baseline_jpegs_and_the_stream_is_left_at_its_start():
    fp, inspection = inspected(samples.png_bytes())

    preview, thumbnail = render_previews(fp, inspection)

    assert fp.tell() == 0
    for data in (preview, thumbnail):
        image = Image.open(io.BytesIO(data))
        assert image.format == "JPEG"
        assert "progressive" not in image.info
        assert "progression" not in image.info


# --- photos and sensor exports ---------------------------------------------------------


def test_a_photo_with_exif_orientation_6_comes_out_upright():
    data = samples.camera_jpeg_bytes(96, 64, exif_orientation=6)
    fp, inspection = inspected(data)

    image = Image.open(io.BytesIO(render(fp, inspection, max_side=PREVIEW_MAX_SIDE)))

    # Stored landscape with its dark half on the left; turned a quarter clockwise, the dark half is on top.
    assert image.size == (64, 96) == (inspection.width, inspection.height)
    assert gray(image, 32, 10) < 60
    assert gray(image, 32, 85) > 200


def test_a_photo_preview_keeps_no_location_device_colour_profile_xmp_or_comment():
    data = samples.camera_jpeg_bytes()
    original = Image.open(io.BytesIO(data))
    assert original.getexif().get(0x010F) == samples.CAMERA_MAKE, "the sample does carry the metadata"
    fp, inspection = inspected(data)

    for jpeg in render_previews(fp, inspection):
        image = Image.open(io.BytesIO(jpeg))
        exif = image.getexif()
        assert 0x8825 not in exif, "no GPS"
        assert 0x010F not in exif, "no make"
        assert 0x0110 not in exif, "no model"
        assert len(exif) == 0
        for key in ("exif", "icc_profile", "xmp", "comment"):
            assert key not in image.info
        for text in (samples.CAMERA_MAKE.encode(), samples.CAMERA_MODEL.encode(), samples.PHOTO_COMMENT, b"Exif",
                     b"ICC_PROFILE", b"adobe:ns:meta"):
            assert text not in jpeg


@pytest.mark.parametrize("factory", [samples.png_bytes, samples.tiff_bytes], ids=["png", "tiff"])
def test_png_and_tiff_photos_are_previewed_in_colour(factory: Callable[[], bytes]):
    image = preview_of(factory())

    assert image.mode == "RGB"
    assert image.size == (64, 48)
    # The samples are a vertical gradient, dark at the top.
    assert gray(image, 32, 1) < 20
    assert gray(image, 32, 46) > 230


@pytest.mark.parametrize("image_format", ["PNG", "TIFF"])
@pytest.mark.parametrize("maximum", [65535, 4095], ids=["16-bit", "12-bit-in-16"])
def test_16_bit_sensor_exports_are_scaled_to_8_bit_grey_not_clipped(image_format: str, maximum: int):
    data = samples.gray16_bytes(image_format, 64, 48, maximum=maximum)

    image = preview_of(data)

    assert image.mode == "L"
    row = [gray(image, x, 24) for x in (1, 16, 32, 48, 62)]
    assert row == sorted(row), f"the ramp still rises left to right: {row}"
    assert row[0] <= 8
    assert 100 <= row[2] <= 156, f"mid-ramp is mid-grey, not clipped to white: {row}"
    assert row[-1] >= 247


def test_a_photo_that_cannot_be_decoded_is_damaged():
    data = samples.truncated(samples.png_bytes(), 0.7)
    inspection = Inspection(format=ImageFormat.PNG, content_type="image/png", width=64, height=48, dicom=None)

    with pytest.raises(DamagedImage):
        render(io.BytesIO(data), inspection, max_side=PREVIEW_MAX_SIDE)


def test_a_dicom_preview_of_the_default_sample_is_grey_and_full_size():
    image = preview_of(samples.dicom_bytes())

    assert image.mode == "L"
    assert image.size == (64, 64)
    low, high = image.getextrema()  # type: ignore[misc]
    assert low < 10
    assert high > 245


def test_a_window_narrower_than_one_is_ignored_in_favour_of_a_stretch():
    data = radiograph(three_bands(1000, 1050, 1100), 48, 48, window=(1050, 0))

    left, _, right = band_values(preview_of(data))

    assert left <= 3
    assert right >= 252


def test_a_pixel_data_offset_is_read_from_the_file():
    data = samples.dicom_bytes()
    _, inspection = inspected(data)
    assert inspection.dicom is not None
    location = inspection.dicom.pixel_data

    assert location is not None
    assert location.length == 64 * 64 * 2
    assert data[location.value_offset - 12 : location.value_offset - 8] == struct.pack("<HH", 0x7FE0, 0x0010)
    assert "pixel_data" not in inspection.dicom.to_record_dict()
