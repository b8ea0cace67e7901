"""Drawing the largest accepted image of each format stays near 150 MB above idle.

Each case runs in a fresh interpreter: it draws a small file of the same format first (imports, decoder
set-up), then the largest file accepted, and reports how far the peak resident memory (VmHWM) rose.
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from referral.imaging.dicom_pixels import _DECODE_COST, MAX_FULL_DECODE_BYTES
from referral.imaging.limits import MAX_DECODE_BYTES, MAX_PIXELS
from tests.support import samples

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
LIMIT_MIB = 155

_MEASURE = """
import os, sys
from pathlib import Path
from referral.imaging.inspect import inspect_image
from referral.imaging.previews import render_previews

def peak():
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024

for path in sys.argv[1:]:
    with open(path, "rb") as fp:
        inspection = inspect_image(fp, os.path.getsize(path))
        render_previews(fp, inspection)
    if path == sys.argv[1]:
        before = peak()
print(inspection.width, peak() - before)
"""


def _growth_mib(small: Path, large: Path, width: int | None = None) -> float:
    """How far drawing ``large`` raised peak memory over drawing ``small``; ``large`` must be accepted (as
    ``width`` pixels wide, when given)."""
    result = subprocess.run([sys.executable, "-c", _MEASURE, str(small), str(large)], cwd=ROOT,
                            capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    shown_width, growth = result.stdout.strip().splitlines()[-1].split()
    if width is not None:
        assert int(shown_width) == width
    return float(growth)


def _ramp(width: int, height: int, dtype: type = np.uint8) -> np.ndarray:
    """Flat, with a gradient band across the top: decoding costs the same whatever the content, and flat
    areas keep the encoders (x265 above all) quick."""
    top = 65535 if dtype is np.uint16 else 255
    values = np.full((height, width), top // 3, dtype=dtype)
    band = min(height, 64)
    values[:band] = ((np.arange(band)[:, None] * 7 + np.arange(width)[None, :] * 3) % (top + 1)).astype(dtype)
    return values


def _save(path: Path, image: Image.Image, **params: object) -> Path:
    image.save(path, **params)
    return path


def _side(budget: float) -> int:
    return math.isqrt(int(budget))


# name -> (bytes per pixel of the decoded image, overhead) to find the largest accepted square
RASTERS: dict[str, Callable[[Path, int], Path]] = {
    "png-16-bit": lambda d, side: _save(d / "a.png", Image.fromarray(_ramp(side, side, np.uint16)),
                                        compress_level=1),
    "png-rgb": lambda d, side: _save(d / "a.png", Image.fromarray(_ramp(side, side)).convert("RGB"),
                                     compress_level=1),
    "tiff-16-bit": lambda d, side: _save(d / "a.tif", Image.fromarray(_ramp(side, side, np.uint16))),
    "tiff-rgb-lzw": lambda d, side: _save(d / "a.tif", Image.fromarray(_ramp(side, side)).convert("RGB"),
                                          compression="tiff_lzw"),
    "webp": lambda d, side: _save(d / "a.webp", Image.fromarray(_ramp(side, side)).convert("RGB"), quality=80),
    "progressive-jpeg": lambda d, side: _save(d / "a.jpg", Image.fromarray(_ramp(side, side)).convert("RGB"),
                                              quality=85, progressive=True),
    "baseline-jpeg": lambda d, side: _save(d / "a.jpg", Image.fromarray(_ramp(side, side)).convert("RGB"),
                                           quality=85),
}
LARGEST_SIDE = {
    "png-16-bit": _side(MAX_DECODE_BYTES / 1.4 / 2),
    "png-rgb": _side(MAX_DECODE_BYTES / 1.4 / 4),
    "tiff-16-bit": _side(MAX_DECODE_BYTES / 1.4 / 2),
    "tiff-rgb-lzw": _side(MAX_DECODE_BYTES / 1.4 / 4),
    "webp": _side(MAX_DECODE_BYTES / 4.0 / 4),
    "progressive-jpeg": _side(MAX_DECODE_BYTES / 1.3 / 3) - 16,  # 4:2:0: 1.5 components of 2 bytes
    "baseline-jpeg": _side(MAX_PIXELS),
}


@pytest.mark.parametrize("case", sorted(RASTERS))
def test_the_largest_accepted_photo_or_export_is_drawn_within_the_memory_bound(case: str, tmp_path: Path):
    (tmp_path / "small").mkdir()
    (tmp_path / "large").mkdir()
    small = RASTERS[case](tmp_path / "small", 64)
    large = RASTERS[case](tmp_path / "large", LARGEST_SIDE[case])

    growth = _growth_mib(small, large, width=LARGEST_SIDE[case])

    assert growth < LIMIT_MIB, f"{case}: peak memory rose {growth:.0f} MiB"


def test_the_largest_accepted_heic_is_drawn_within_the_memory_bound(tmp_path: Path):
    import pillow_heif

    side = _side(MAX_DECODE_BYTES / 1.25 / 4)
    small, large = tmp_path / "small.heic", tmp_path / "large.heic"
    pillow_heif.from_pillow(Image.fromarray(_ramp(64, 64)).convert("RGB")).save(small)
    pillow_heif.from_pillow(Image.fromarray(_ramp(side, side)).convert("RGB")).save(
        large, quality=50, enc_params={"preset": "ultrafast"})

    assert _growth_mib(small, large, width=side) < LIMIT_MIB


def test_the_largest_native_dicom_upload_is_drawn_within_the_memory_bound(tmp_path: Path):
    small, large = tmp_path / "small.dcm", tmp_path / "large.dcm"
    small.write_bytes(samples.dicom_bytes())
    samples.write_large_dicom(large, 62)  # the upload limit is 64 MiB

    assert _growth_mib(small, large) < 40, "native frames are sampled, never loaded"


@pytest.mark.parametrize(("syntax", "command"), [
    ("1.2.840.10008.1.2.4.70", ["dcmcjpeg", "+e1"]),
    ("1.2.840.10008.1.2.4.51", ["dcmcjpeg", "+ee"]),
    ("1.2.840.10008.1.2.4.80", ["dcmcjpls"]),
    ("1.2.840.10008.1.2.5", ["dcmcrle"]),
    ("1.2.840.10008.1.2.4.90", ["gdcmconv", "--j2k"]),
])
def test_the_largest_compressed_dicom_frame_is_drawn_within_the_memory_bound(syntax: str, command: list[str],
                                                                            tmp_path: Path):
    tool = shutil.which(command[0])
    if tool is None:
        pytest.fail(f"{command[0]} is missing: run infra/system-deps.sh (make test does)")
    side = _side(MAX_FULL_DECODE_BYTES / _DECODE_COST[syntax] / 2)
    files = {}
    for name, size in (("small", 64), ("large", side)):
        values = _ramp(size, size, np.uint16) % 4096

        def pixels(ds, values=values):
            ds.PixelData = values.tobytes()

        native = tmp_path / f"{name}-native.dcm"
        native.write_bytes(samples.dicom_bytes(rows=size, columns=size, mutate=pixels))
        files[name] = tmp_path / f"{name}.dcm"
        subprocess.run([tool, *command[1:], str(native), str(files[name])], check=True, capture_output=True,
                       timeout=120)
        native.unlink()
    assert os.path.getsize(files["large"]) < 64 * 1024 * 1024

    assert _growth_mib(files["small"], files["large"], width=side) < LIMIT_MIB
