"""Every DICOM a sensor may write is drawn faithfully or refused with a reason, never with a stand-in picture.

Two corpora: every file with pixel data that pydicom and pydicom-data ship, and files this suite makes in each
transfer syntax with the DICOM world's own tools (DCMTK's dcmcjpeg, dcmcjpls, dcmcrle, dcmconv and GDCM's
gdcmconv, installed by infra/system-deps.sh) and with the decoders' own encoders. Each drawing is compared
with an independent rendering (tests/imaging/reference.py): pydicom's pixel_array with its colour conversion,
or for files pydicom cannot decode without GPL code, DCMTK's decompression.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.data import get_testdata_files
from pydicom.dataset import Dataset
from pydicom.encaps import encapsulate
from pydicom.uid import (
    JPEG2000,
    ExplicitVRBigEndian,
    JPEG2000Lossless,
    JPEGLSLossless,
    JPEGLSNearLossless,
    RLELossless,
)

from referral.imaging import DamagedImage, UnsupportedImageType
from referral.imaging.dicom_pixels import MAX_FULL_DECODE_BYTES, draw_dicom
from referral.imaging.inspect import inspect_image
from referral.imaging.previews import PREVIEW_MAX_SIDE, render
from tests.support import samples
from tests.support.imaging_reference import mean_difference, reference_picture

# Lossy syntaxes and the preview's own JPEG encoding move levels a little; a wrong colour space, byte order,
# window or inversion moves them by tens.
TOLERANCE = 4.0


def _drawn(data: bytes) -> Image.Image:
    """The picture the preview is made from (before its JPEG encoding), at preview scale."""
    inspection = inspect_image(io.BytesIO(data), len(data))
    assert inspection.dicom is not None
    return draw_dicom(io.BytesIO(data), len(data), inspection.dicom, PREVIEW_MAX_SIDE)


def _preview(data: bytes) -> Image.Image:
    inspection = inspect_image(io.BytesIO(data), len(data))
    image = Image.open(io.BytesIO(render(io.BytesIO(data), inspection, max_side=PREVIEW_MAX_SIDE)))
    image.load()
    return image


# --- pydicom's own files ---------------------------------------------------------------------------------


def _pydicom_files() -> list[Path]:
    with warnings.catch_warnings():
        # pydicom-data is installed, so nothing is downloaded; pydicom still warns that it did not try.
        warnings.simplefilter("ignore")
        names = get_testdata_files("*")
    files = []
    for name in sorted(set(names)):
        path = Path(name)
        if not path.is_file():
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                header = pydicom.dcmread(path, stop_before_pixels=False, force=True)
            except Exception:
                header = None  # not DICOM at all (README, ICC profile, JSON)
        if header is not None and "PixelData" in header:
            files.append(path)
    return files


PYDICOM_FILES = _pydicom_files()

# Files pydicom ships to test its own handling of broken or unusual data, refused here with a 4xx, and why.
REFUSED = {
    "MR_truncated.dcm": "pixel data shorter than its dimensions",
    "emri_small_jpeg_2k_lossless_too_short.dcm": "its fragment claims more bytes than the file holds",
    "ExplVR_BigEndNoMeta.dcm": "no Part 10 header (415)",
    "ExplVR_LitEndNoMeta.dcm": "no Part 10 header (415)",
    "OT-PAL-8-face.dcm": "no Part 10 header (415)",
    "no_meta.dcm": "no Part 10 header (415)",
    "nested_priv_SQ.dcm": "no image attributes",
    "meta_missing_tsyntax.dcm": "no image attributes",
    "JPEG2000-embedded-sequence-delimiter.dcm": "a sequence delimiter inside its fragment cuts the codestream",
}


def test_the_corpus_holds_what_it_should() -> None:
    names = {path.name for path in PYDICOM_FILES}
    assert len(PYDICOM_FILES) >= 100, "pydicom-data's files are installed (dev extra)"
    for expected in ("JPEG-LL.dcm", "JPGLosslessP14SV1_1s_1f_8b.dcm", "JPGExtended.dcm", "SC_rgb_rle.dcm",
                     "MR_small_jpeg_ls_lossless.dcm", "US1_J2KR.dcm", "image_dfl.dcm", "examples_palette.dcm"):
        assert expected in names


@pytest.mark.parametrize("path", PYDICOM_FILES, ids=[path.name for path in PYDICOM_FILES])
def test_every_pydicom_file_is_drawn_like_pydicom_draws_it_or_refused_with_a_reason(path: Path,
                                                                                    tmp_path: Path) -> None:
    data = path.read_bytes()
    try:
        inspection = inspect_image(io.BytesIO(data), len(data))
        drawn = draw_dicom(io.BytesIO(data), len(data), inspection.dicom, PREVIEW_MAX_SIDE) \
            if inspection.dicom is not None else None
    except (DamagedImage, UnsupportedImageType) as refusal:
        message = str(refusal)
        assert message
        assert "Traceback" not in message
        assert path.name in REFUSED, f"{path.name} refused: {message}"
        return
    assert drawn is not None
    assert path.name not in REFUSED, f"{path.name} was expected to be refused ({REFUSED.get(path.name)})"
    syntax = inspection.dicom.transfer_syntax_uid if inspection.dicom else None
    # pydicom decodes 12-bit JPEG only through GPL code, which is not installed: DCMTK decompresses it instead.
    reference = _independent_copy(path, tmp_path) if syntax == "1.2.840.10008.1.2.4.51" and (
        inspection.dicom is not None and (inspection.dicom.bits_stored or 8) > 8) else data
    difference = mean_difference(drawn, reference)
    assert difference <= TOLERANCE, f"{path.name} differs from pydicom's rendering by {difference:.1f} levels"
    assert max(drawn.size) <= 2 * PREVIEW_MAX_SIDE


# --- files made in every transfer syntax -----------------------------------------------------------------


def _grey12(rows: int = 96, columns: int = 128) -> bytes:
    """A 12-bit radiograph-like gradient with structure in both directions, windowed."""
    values = ((np.arange(rows)[:, None] * 23 + np.arange(columns)[None, :] * 29) % 4096).astype("<u2")

    def pixels(ds: Dataset) -> None:
        ds.PixelData = values.tobytes()

    return samples.dicom_bytes(rows=rows, columns=columns, mutate=pixels)


def _grey8(rows: int = 96, columns: int = 128) -> bytes:
    values = ((np.arange(rows)[:, None] * 3 + np.arange(columns)[None, :] * 2) % 256).astype(np.uint8)

    def pixels(ds: Dataset) -> None:
        ds.BitsAllocated = ds.BitsStored = 8
        ds.HighBit = 7
        ds.WindowCenter, ds.WindowWidth = 128, 256
        ds.PixelData = values.tobytes()
        ds["PixelData"].VR = "OB"

    return samples.dicom_bytes(rows=rows, columns=columns, mutate=pixels)


def _rgb(rows: int = 96, columns: int = 128) -> bytes:
    y, x = np.mgrid[0:rows, 0:columns]
    rgb = np.stack([(x * 2) % 256, (y * 2) % 256, ((x + y) * 3) % 256], axis=-1).astype(np.uint8)

    def pixels(ds: Dataset) -> None:
        ds.SamplesPerPixel = 3
        ds.PhotometricInterpretation = "RGB"
        ds.PlanarConfiguration = 0
        ds.BitsAllocated = ds.BitsStored = 8
        ds.HighBit = 7
        del ds.WindowCenter
        del ds.WindowWidth
        ds.PixelData = rgb.tobytes()
        ds["PixelData"].VR = "OB"

    return samples.dicom_bytes(rows=rows, columns=columns, mutate=pixels)


SOURCES: dict[str, Callable[[], bytes]] = {"grey12": _grey12, "grey8": _grey8, "rgb": _rgb}

# (source, tool command; {src} and {dst} are file paths, decompress: how DCMTK/GDCM undoes it for reference)
TOOL_MADE = {
    "dcmcjpeg-baseline-grey8": ("grey8", ["dcmcjpeg", "+eb", "{src}", "{dst}"]),
    "dcmcjpeg-baseline-rgb-ybr": ("rgb", ["dcmcjpeg", "+eb", "{src}", "{dst}"]),
    "dcmcjpeg-baseline-rgb-no-transform": ("rgb", ["dcmcjpeg", "+eb", "+cr", "{src}", "{dst}"]),
    "dcmcjpeg-extended-12bit": ("grey12", ["dcmcjpeg", "+ee", "{src}", "{dst}"]),
    "dcmcjpeg-lossless-57": ("grey12", ["dcmcjpeg", "+el", "{src}", "{dst}"]),
    "dcmcjpeg-lossless-70": ("grey12", ["dcmcjpeg", "+e1", "{src}", "{dst}"]),
    "dcmcjpeg-lossless-70-rgb": ("rgb", ["dcmcjpeg", "+e1", "{src}", "{dst}"]),
    "dcmcjpls-lossless": ("grey12", ["dcmcjpls", "+el", "{src}", "{dst}"]),
    "dcmcjpls-near-lossless": ("grey12", ["dcmcjpls", "+en", "{src}", "{dst}"]),
    "dcmcjpls-rgb": ("rgb", ["dcmcjpls", "{src}", "{dst}"]),
    "dcmcrle-grey12": ("grey12", ["dcmcrle", "{src}", "{dst}"]),
    "dcmcrle-rgb": ("rgb", ["dcmcrle", "{src}", "{dst}"]),
    "dcmconv-deflated": ("grey12", ["dcmconv", "+td", "{src}", "{dst}"]),
    "dcmconv-big-endian": ("grey12", ["dcmconv", "+tb", "{src}", "{dst}"]),
    "dcmconv-big-endian-grey8": ("grey8", ["dcmconv", "+tb", "{src}", "{dst}"]),
    "dcmconv-implicit": ("grey12", ["dcmconv", "+ti", "{src}", "{dst}"]),
    "gdcmconv-jpeg-lossless": ("grey12", ["gdcmconv", "--jpeg", "{src}", "{dst}"]),
    "gdcmconv-jpeg-lossy": ("grey12", ["gdcmconv", "--jpeg", "--lossy", "-q", "90", "{src}", "{dst}"]),
    "gdcmconv-jpegls": ("grey12", ["gdcmconv", "--jpegls", "{src}", "{dst}"]),
    "gdcmconv-j2k": ("grey12", ["gdcmconv", "--j2k", "{src}", "{dst}"]),
    "gdcmconv-j2k-rgb": ("rgb", ["gdcmconv", "--j2k", "{src}", "{dst}"]),
    "gdcmconv-rle": ("grey12", ["gdcmconv", "--rle", "{src}", "{dst}"]),
}


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is missing: run infra/system-deps.sh (make test does)")
    return found


def _run(command: list[str]) -> None:
    subprocess.run([_tool(command[0]), *command[1:]], check=True, capture_output=True, timeout=60)


# DCMTK decompresses what it can (its own decoders, independent of the GDCM and OpenJPEG the server uses for
# some syntaxes); GDCM's command-line tool takes JPEG 2000, which DCMTK does not read.
_DECOMPRESSORS = {
    "1.2.840.10008.1.2.4.50": "dcmdjpeg", "1.2.840.10008.1.2.4.51": "dcmdjpeg", "1.2.840.10008.1.2.4.57": "dcmdjpeg",
    "1.2.840.10008.1.2.4.70": "dcmdjpeg", "1.2.840.10008.1.2.4.80": "dcmdjpls", "1.2.840.10008.1.2.4.81": "dcmdjpls",
    "1.2.840.10008.1.2.5": "dcmdrle",
}


def _independent_copy(path: Path, tmp_path: Path) -> bytes:
    """The file decompressed by DCMTK (or GDCM's tool for JPEG 2000), for pydicom to read as native data."""
    syntax = str(pydicom.dcmread(path, stop_before_pixels=True).file_meta.TransferSyntaxUID)
    raw = tmp_path / f"{path.stem}-raw.dcm"
    tool = _DECOMPRESSORS.get(syntax)
    try:
        _run([tool, str(path), str(raw)] if tool else ["gdcmconv", "--raw", str(path), str(raw)])
    except subprocess.CalledProcessError:
        # DCMTK declines some lossy 12-bit files GDCM writes; GDCM's tool (a separate build) reads them.
        _run(["gdcmconv", "--raw", str(path), str(raw)])
    return raw.read_bytes()


@pytest.mark.parametrize("case", sorted(TOOL_MADE))
def test_files_compressed_by_dcmtk_and_gdcm_are_drawn_like_their_independent_decompression(
        case: str, tmp_path: Path) -> None:
    source_name, command = TOOL_MADE[case]
    source = tmp_path / "source.dcm"
    source.write_bytes(SOURCES[source_name]())
    made = tmp_path / f"{case}.dcm"
    _run([part.format(src=source, dst=made) for part in command])
    data = made.read_bytes()
    syntax = pydicom.dcmread(made, stop_before_pixels=True).file_meta.TransferSyntaxUID
    if not syntax.is_encapsulated and case != "dcmconv-deflated":
        assert data != source.read_bytes() or case == "dcmconv-implicit"

    drawn = _drawn(data)
    reference = _independent_copy(made, tmp_path)

    difference = mean_difference(drawn, reference)
    assert difference <= TOLERANCE, f"{case} ({syntax.name}) differs by {difference:.1f} levels"
    assert _preview(data).mode == ("RGB" if source_name == "rgb" else "L")


ENCODER_MADE = {
    "pyjpegls-lossless": ("grey12", JPEGLSLossless, {}),
    "pyjpegls-near-lossless": ("grey12", JPEGLSNearLossless, {"jls_error": 2}),
    "openjpeg-lossless": ("grey12", JPEG2000Lossless, {}),
    "openjpeg-lossy": ("grey12", JPEG2000, {"j2k_cr": [20]}),
    "openjpeg-rgb": ("rgb", JPEG2000Lossless, {}),
    "pydicom-rle-grey12": ("grey12", RLELossless, {}),
    "pydicom-rle-rgb": ("rgb", RLELossless, {}),
}


@pytest.mark.parametrize("case", sorted(ENCODER_MADE))
def test_files_compressed_by_the_decoders_own_encoders_are_drawn_like_the_original(case: str) -> None:
    source_name, syntax, options = ENCODER_MADE[case]
    original = SOURCES[source_name]()
    ds = pydicom.dcmread(io.BytesIO(original))
    ds.compress(syntax, **options)
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)

    difference = mean_difference(_drawn(buffer.getvalue()), original)

    assert difference <= TOLERANCE, f"{case} differs from the uncompressed original by {difference:.1f} levels"


# --- colour and byte order -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["SC_jpeg_no_color_transform.dcm", "SC_jpeg_no_color_transform_2.dcm",
                                  "SC_rgb_dcmtk_+eb+cr.dcm", "SC_ybr_full_422_uncompressed.dcm",
                                  "SC_rgb_dcmtk_+eb+cy+np.dcm", "SC_rgb_jpeg_app14_dcmd.dcm",
                                  "examples_ybr_color.dcm", "SC_rgb_small_odd_big_endian.dcm",
                                  "ExplVR_BigEnd.dcm"])
def test_colour_files_keep_pydicom_s_colours(name: str) -> None:
    path = next(path for path in PYDICOM_FILES if path.name == name)
    data = path.read_bytes()

    drawn = _drawn(data)

    assert drawn.mode == "RGB"
    assert mean_difference(drawn, data) <= TOLERANCE
    # Magenta is what a YCbCr conversion of RGB samples looks like: green low, red and blue high.
    reference = np.asarray(reference_picture(data).resize(drawn.size), np.float64)
    assert np.abs(np.asarray(drawn, np.float64) - reference)[..., 1].mean() <= TOLERANCE


def test_eight_bit_samples_in_big_endian_ow_are_unswapped() -> None:
    values = (np.arange(64 * 48, dtype=np.uint32).reshape(48, 64) % 251).astype(np.uint8)

    def eight_bit_ow(ds: Dataset) -> None:
        ds.BitsAllocated = ds.BitsStored = 8
        ds.HighBit = 7
        del ds.WindowCenter
        del ds.WindowWidth
        # OW is a run of 16-bit words: in big endian each pair of 8-bit samples is stored swapped.
        ds.PixelData = values.view(np.uint16).byteswap().tobytes()
        ds["PixelData"].VR = "OW"

    data = samples.dicom_bytes(rows=48, columns=64, transfer_syntax="explicit_be", mutate=eight_bit_ow)
    assert pydicom.dcmread(io.BytesIO(data)).file_meta.TransferSyntaxUID == ExplicitVRBigEndian

    drawn = np.asarray(_drawn(data), np.float64)

    expected = (values - values.min()) * 255.0 / (values.max() - values.min())
    assert np.abs(drawn - expected).mean() <= 1.0
    assert mean_difference(_drawn(data), data) <= 1.0, "pydicom reads the samples the same way"


def test_native_ybr_full_422_is_accepted_at_its_real_length_and_converted() -> None:
    path = next(path for path in PYDICOM_FILES if path.name == "SC_ybr_full_422_uncompressed.dcm")
    data = path.read_bytes()
    inspection = inspect_image(io.BytesIO(data), len(data))
    assert inspection.dicom is not None
    assert inspection.dicom.pixel_data is not None
    assert inspection.dicom.pixel_data.length == 100 * 100 * 2


# --- truncation and size ---------------------------------------------------------------------------------


def _baseline_jpeg_dicom() -> bytes:
    return samples.encapsulated_dicom_bytes(rows=240, columns=320)


def test_a_jpeg_frame_cut_short_but_closed_with_an_end_marker_is_refused() -> None:
    ds = pydicom.dcmread(io.BytesIO(_baseline_jpeg_dicom()))
    frame = pydicom.encaps.get_frame(ds.PixelData, 0, number_of_frames=1)
    cut = frame[: len(frame) * 2 // 3] + b"\xff\xd9"
    ds.PixelData = encapsulate([cut])
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    data = buffer.getvalue()
    inspection = inspect_image(io.BytesIO(data), len(data))

    with pytest.raises(DamagedImage, match="truncated or damaged"):
        render(io.BytesIO(data), inspection, max_side=PREVIEW_MAX_SIDE)


def test_a_lossless_frame_without_its_end_marker_is_refused(tmp_path: Path) -> None:
    source = tmp_path / "source.dcm"
    source.write_bytes(_grey12())
    made = tmp_path / "made.dcm"
    _run(["dcmcjpeg", "+e1", str(source), str(made)])
    ds = pydicom.dcmread(made)
    frame = pydicom.encaps.get_frame(ds.PixelData, 0, number_of_frames=1)
    ds.PixelData = encapsulate([frame[: len(frame) // 2]])
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)

    with pytest.raises(DamagedImage):
        _drawn(buffer.getvalue())


def test_frames_decoded_whole_are_refused_above_the_budget_with_a_message(monkeypatch: pytest.MonkeyPatch,
                                                                        tmp_path: Path) -> None:
    source = tmp_path / "source.dcm"
    source.write_bytes(_grey12())
    made = tmp_path / "made.dcm"
    _run(["dcmcjpeg", "+e1", str(source), str(made)])
    monkeypatch.setattr("referral.imaging.dicom_pixels.MAX_FULL_DECODE_BYTES", 96 * 128 * 2 - 1)

    with pytest.raises(DamagedImage, match="megapixels can be drawn"):
        _drawn(made.read_bytes())
    assert MAX_FULL_DECODE_BYTES >= 32_000_000 * 2, "a 32-megapixel 16-bit frame is within the real budget"


def test_a_multi_frame_compressed_file_shows_its_first_frame() -> None:
    path = next(path for path in PYDICOM_FILES if path.name == "SC_rgb_rle_2frame.dcm")
    data = path.read_bytes()

    assert mean_difference(_drawn(data), data) <= TOLERANCE
