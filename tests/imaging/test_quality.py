"""Capture quality checks: images made to fail each check, and the repository's ordinary samples passing all."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFilter

from referral.imaging import quality
from referral.imaging.inspect import inspect_image
from referral.imaging.previews import render_previews
from tests.support import samples

CORPUS = Path(__file__).resolve().parents[1] / "corpus"


def _codes(warnings: list[dict[str, str]]) -> list[str]:
    return [w["code"] for w in warnings]


def _teeth(width: int = 800, height: int = 600) -> Image.Image:
    """Radiograph-like: bright crowns with darker pulp on a dark background, and a little sensor noise."""
    image = Image.new("L", (width, height), 40)
    draw = ImageDraw.Draw(image)
    for x in range(50, width - 110, 140):
        draw.ellipse((x, 100, x + 110, height - 80), fill=190)
        draw.ellipse((x + 30, 150, x + 80, height - 120), fill=120)
    noise = np.random.default_rng(7).normal(0, 3, (height, width))
    return Image.fromarray(np.clip(np.asarray(image, np.float32) + noise, 0, 255).astype(np.uint8))


def _blocks(size: int = 512) -> Image.Image:
    """A photo-like colour pattern of sharp blocks."""
    cells = np.random.default_rng(3).choice(np.array([30, 120, 225], np.uint8), (size // 32, size // 32, 3))
    return Image.fromarray(np.kron(cells, np.ones((32, 32, 1), np.uint8)), "RGB")


def _from(array: np.ndarray) -> Image.Image:
    return Image.fromarray(np.clip(array, 0, 255).astype(np.uint8))


@pytest.mark.parametrize("radiograph", [True, False])
def test_sharp_well_exposed_pictures_give_no_warnings(radiograph: bool) -> None:
    image = _teeth() if radiograph else _blocks()
    assert quality.check(image, radiograph=radiograph) == []


def test_a_dark_picture_is_underexposed() -> None:
    dark = _from(np.asarray(_teeth(), np.float32) * 0.15)
    assert "underexposed" in _codes(quality.check(dark, radiograph=True))
    assert "underexposed" in _codes(quality.check(dark.convert("RGB"), radiograph=False))


def test_a_washed_out_picture_is_overexposed() -> None:
    washed = _from(230 + np.asarray(_teeth(), np.float32) * 0.1)
    warnings = quality.check(washed, radiograph=True)
    assert "overexposed" in _codes(warnings)
    assert "underexposed" not in _codes(warnings)


def test_a_flat_grey_picture_is_low_in_contrast_and_not_called_blurred() -> None:
    flat = Image.new("L", (600, 400), 128)
    assert _codes(quality.check(flat, radiograph=True)) == ["low_contrast"]
    narrow = _from(120 + np.asarray(_teeth(), np.float32) * 0.08)
    assert "low_contrast" in _codes(quality.check(narrow, radiograph=True))


@pytest.mark.parametrize(("make", "radiograph"), [(_teeth, True), (_blocks, False)])
def test_a_blurred_picture_is_flagged_and_its_sharp_original_is_not(make: object, radiograph: bool) -> None:
    sharp = make()  # type: ignore[operator]
    blurred = sharp.filter(ImageFilter.GaussianBlur(4))
    assert "blurred" not in _codes(quality.check(sharp, radiograph=radiograph))
    assert _codes(quality.check(blurred, radiograph=radiograph)) == ["blurred"]
    slightly = sharp.filter(ImageFilter.GaussianBlur(1))
    assert quality.check(slightly, radiograph=radiograph) == []


def test_a_smooth_ramp_has_no_edges_to_judge() -> None:
    ramp = Image.linear_gradient("L").resize((800, 600))
    assert quality.check(ramp, radiograph=True) == []


def test_a_tiny_picture_is_too_small_judged_by_the_original_size() -> None:
    tiny = _teeth(40, 30)
    assert "too_small" in _codes(quality.check(tiny, radiograph=True))
    # A reduced preview of a large original is not small.
    assert "too_small" not in _codes(quality.check(tiny, radiograph=True, width=1200, height=900))


def test_messages_are_plain_words_and_codes_come_from_the_vocabulary() -> None:
    worst = Image.new("L", (20, 20), 5)
    warnings = quality.check(worst, radiograph=False)
    assert {"underexposed", "low_contrast", "too_small"} <= set(_codes(warnings))
    for warning in warnings:
        assert warning["code"] in quality.CODES
        assert "_" not in warning["message"]
        assert warning["message"].endswith(".")


def _previewed(data: bytes, *, radiograph: bool) -> list[dict[str, str]]:
    inspection = inspect_image(io.BytesIO(data), len(data))
    found: list[list[dict[str, str]]] = []
    render_previews(io.BytesIO(data), inspection, measure=lambda picture: found.append(quality.check(
        picture, radiograph=radiograph, width=inspection.width, height=inspection.height)))
    assert len(found) == 1, "the checks read the one reduced picture the previews are drawn from"
    return found[0]


@pytest.mark.parametrize(("name", "make", "radiograph"), [
    ("dicom", samples.dicom_bytes, True),
    ("dicom big endian", lambda: samples.dicom_bytes(transfer_syntax="explicit_be"), True),
    ("dicom large", lambda: samples.dicom_bytes(rows=600, columns=800), True),
    ("dicom encapsulated", samples.encapsulated_dicom_bytes, True),
    ("sensor export 16-bit", samples.gray16_bytes, True),
    ("jpeg", samples.jpeg_bytes, False),
    ("jpeg large", lambda: samples.jpeg_bytes(1200, 900), False),
    ("camera jpeg", samples.camera_jpeg_bytes, False),
    ("heic", samples.heic_bytes, False),
    ("webp", lambda: samples.webp_bytes(lossless=False), False),
    ("png", samples.png_bytes, False),
    ("tiff", samples.tiff_bytes, False),
])
def test_the_repository_samples_give_no_warnings(name: str, make: object, radiograph: bool) -> None:
    assert _previewed(make(), radiograph=radiograph) == [], name  # type: ignore[operator]


def _accepted_corpus_images() -> list[tuple[str, bool]]:
    manifest = json.loads((CORPUS / "manifest.json").read_text())
    kind_default = manifest["form_defaults"]["/api/v1/referrals/{referral_id}/images"]["kind"]
    accepted = []
    for entry in manifest["entries"]:
        request = entry["request"]
        if entry.get("file") and entry["expect"]["status"] == 201 and request["path"].endswith("/images"):
            kind = (request.get("form") or {}).get("kind") or kind_default
            accepted.append((entry["file"], not kind.startswith("photo")))
    return accepted


@pytest.mark.parametrize(("file", "radiograph"), _accepted_corpus_images())
def test_the_corpus_images_that_are_accepted_give_no_warnings_but_size(file: str, radiograph: bool) -> None:
    """The corpus carries hostile file names on images of a few pixels: those are too small, and nothing else."""
    data = (CORPUS / file).read_bytes()
    inspection = inspect_image(io.BytesIO(data), len(data))
    tiny = min(inspection.width or 0, inspection.height or 0) < quality.PHOTO.min_side
    assert _codes(_previewed(data, radiograph=radiograph)) == (["too_small"] if tiny else [])
