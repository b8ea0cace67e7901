"""Photos and sensor exports: phone formats, truncation that hides behind an end marker, decode budgets."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from referral.imaging.inspect import DamagedImage, inspect_image
from referral.imaging.limits import MAX_DECODE_BYTES
from referral.imaging.previews import PREVIEW_MAX_SIDE, THUMBNAIL_MAX_SIDE, render, render_previews
from referral.imaging.sniff import ImageFormat, sniff
from tests.support import samples


def _inspect(data: bytes):
    return inspect_image(io.BytesIO(data), len(data))


def _preview(data: bytes, max_side: int = PREVIEW_MAX_SIDE) -> Image.Image:
    image = Image.open(io.BytesIO(render(io.BytesIO(data), _inspect(data), max_side=max_side)))
    image.load()
    return image


@pytest.mark.parametrize(("factory", "image_format", "content_type"), [
    (samples.heic_bytes, ImageFormat.HEIC, "image/heic"),
    (samples.webp_bytes, ImageFormat.WEBP, "image/webp"),
    (lambda: samples.webp_bytes(lossless=False), ImageFormat.WEBP, "image/webp"),
], ids=["heic", "webp-lossless", "webp-lossy"])
def test_phone_photo_formats_are_recognised_and_previewed_in_colour(factory, image_format, content_type) -> None:
    data = factory()

    inspection = _inspect(data)
    preview = _preview(data)

    assert sniff(data[:132]) is image_format
    assert (inspection.format, inspection.content_type) == (image_format, content_type)
    assert (inspection.width, inspection.height) == preview.size == (96, 64)
    left, right = preview.getpixel((10, 32)), preview.getpixel((86, 32))
    assert all(abs(a - b) <= 12 for a, b in zip(left, (30, 60, 90), strict=True)), left
    assert all(abs(a - b) <= 12 for a, b in zip(right, (230, 200, 170), strict=True)), right


def test_an_avif_or_other_heif_codec_is_not_taken_for_heic() -> None:
    avif_head = struct.pack(">I", 32) + b"ftypavif" + b"\x00" * 4 + b"mif1avifmiaf" + b"\x00" * 100
    assert sniff(avif_head) is None
    generic_with_heic = struct.pack(">I", 24) + b"ftypmif1" + b"\x00" * 4 + b"heicmiaf" + b"\x00" * 100
    assert sniff(generic_with_heic) is ImageFormat.HEIC


@pytest.mark.parametrize("factory", [samples.heic_bytes, samples.webp_bytes], ids=["heic", "webp"])
@pytest.mark.parametrize("keep", [0.3, 0.7, 0.95])
def test_truncated_phone_photos_are_damaged(factory, keep: float) -> None:
    data = samples.truncated(factory(), keep)
    # HEIC is decoded once, for its preview (intake draws it before storing anything).
    with pytest.raises(DamagedImage):
        render_previews(io.BytesIO(data), _inspect(data))


def test_a_jpeg_cut_in_half_that_still_ends_with_an_end_marker_is_damaged() -> None:
    data = samples.jpeg_bytes(640, 480)
    cut = data[: len(data) // 2] + b"\xff\xd9"

    with pytest.raises(DamagedImage, match="truncated"):
        _inspect(cut)


def _chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    position, chunks = 8, []
    while position < len(data):
        (length,) = struct.unpack(">I", data[position : position + 4])
        kind = data[position + 4 : position + 8]
        chunks.append((kind, data[position + 8 : position + 8 + length]))
        position += 12 + length
    return chunks


def _png(chunks: list[tuple[bytes, bytes]]) -> bytes:
    out = b"\x89PNG\r\n\x1a\n"
    for kind, body in chunks:
        out += struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    return out


def test_a_png_missing_its_last_image_data_but_closed_properly_is_refused_before_storing() -> None:
    image = Image.linear_gradient("L").resize((400, 300))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=0)
    chunks = _chunks(buffer.getvalue())
    data_chunks = [chunk for chunk in chunks if chunk[0] == b"IDAT"]
    joined = b"".join(body for _, body in data_chunks)
    # The compressed stream cut in two, the first half kept in a well-formed chunk, then IEND.
    damaged = _png([chunks[0], (b"IDAT", joined[: len(joined) // 2]), (b"IEND", b"")])
    inspection = _inspect(damaged)  # chunk structure and CRCs are sound

    with pytest.raises(DamagedImage):
        render_previews(io.BytesIO(damaged), inspection)


def test_a_tiff_whose_strips_run_past_the_end_is_damaged() -> None:
    data = samples.tiff_bytes(400, 300)
    with pytest.raises(DamagedImage):
        _inspect(samples.truncated(data, 0.6))


def test_16_bit_exports_are_reduced_before_conversion_and_keep_their_grey_levels() -> None:
    data = samples.gray16_bytes("PNG", 4000, 300, maximum=4095)

    preview = _preview(data)

    assert preview.size == (1600, 120)
    row = np.asarray(preview, np.float64)[60]
    assert row[0] <= 3
    assert row[-1] >= 252
    assert abs(row[800] - 128) <= 6


def test_a_progressive_jpeg_beyond_the_decode_budget_is_refused_from_its_header() -> None:
    image = Image.new("RGB", (16, 16))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", progressive=True, subsampling=0)
    data = bytearray(buffer.getvalue())
    # Make the frame header claim a size whose coefficients (3 components, 2 bytes each) pass the budget.
    side = int((MAX_DECODE_BYTES / 6) ** 0.5) + 64
    marker = data.index(b"\xff\xc2")
    struct.pack_into(">HH", data, marker + 5, side, side)

    with pytest.raises(DamagedImage, match="progressive JPEG"):
        _inspect(bytes(data))


def test_thumbnails_of_phone_photos_fit_256() -> None:
    data = samples.heic_bytes(600, 400)
    preview, thumbnail = (Image.open(io.BytesIO(b)) for b in render_previews(io.BytesIO(data), _inspect(data)))
    assert preview.size == (600, 400)
    assert thumbnail.size == (THUMBNAIL_MAX_SIDE, 171)
