"""Capture quality checks: signs, measured in the pixels, that an image is likely unusable.

The checks read the reduced preview image intake draws anyway (longer side at most 1600 px, 8-bit grey or
colour), so they cost no decode of their own. They only warn: an image with warnings is stored and can be sent
like any other; the office sees them before sending and the reader sees them too.

What is measured, on the brightness of the preview (colour photos are read as grey first):

- ``underexposed``: almost the whole picture is dark (its 95th percentile is below a limit);
- ``overexposed``: almost the whole picture is washed out (its 5th percentile is above a limit);
- ``low_contrast``: the middle 90 % of the pixels lie within a narrow band of grey levels;
- ``blurred``: the picture has edges, but they are soft. Two measures must agree: the strongest steps between
  neighbouring pixels (99.9th percentile) are small beside the contrast (5th to 95th percentile spread), and the
  variance of a 4-neighbour Laplacian is small beside the square of that spread. The step measure tracks the edge
  width whether edges are many or few; the Laplacian variance alone rises with the number of edges and with noise.
  A picture whose strongest steps are below a few grey levels (a smooth ramp, a flat field) has no edges to judge
  and is never called blurred: it cannot be told apart from a very blurred one (a flat one is low in contrast);
- ``too_small``: the original has fewer pixels on its shorter side than a limit.

``wrong_orientation`` is part of the vocabulary but is not detected: neither the pixels nor the DICOM header of
an intra-oral image say reliably which way up it was taken.

The limits (``RADIOGRAPH`` and ``PHOTO``) are deliberately loose so that ordinary captures give no warnings:
a warning means the image is very likely unusable, not that it could be better.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

__all__ = [
    "CODES",
    "PHOTO",
    "RADIOGRAPH",
    "Limits",
    "Measurements",
    "check",
    "measure",
    "warnings_for",
]

CODES = ("underexposed", "overexposed", "low_contrast", "blurred", "too_small", "wrong_orientation")


@dataclass(frozen=True)
class Limits:
    """Where a measurement becomes a warning. Grey levels are 0..255 of the preview."""

    dark_p95: float  # underexposed when 95 % of the pixels are darker than this
    bright_p5: float  # overexposed when 95 % of the pixels are brighter than this
    min_spread: float  # low_contrast when the 5th to 95th percentile spread is below this
    min_edge: float  # a picture whose strongest steps (99.9th percentile) are below this has no edges to judge
    min_step_ratio: float  # blurred when the strongest steps over the spread are below this ...
    min_laplacian_ratio: float  # ... and the Laplacian variance over the spread squared is below this
    min_side: int  # too_small when the original's shorter side has fewer pixels than this


# Radiographs have large dark areas (air, soft tissue) beside bright enamel, so darkness needs a lower limit.
RADIOGRAPH = Limits(dark_p95=40, bright_p5=215, min_spread=20, min_edge=10, min_step_ratio=0.12,
                    min_laplacian_ratio=0.001, min_side=48)
PHOTO = Limits(dark_p95=50, bright_p5=205, min_spread=24, min_edge=10, min_step_ratio=0.12,
               min_laplacian_ratio=0.001, min_side=48)


@dataclass(frozen=True)
class Measurements:
    p5: float
    p95: float
    edge: float  # 99.9th percentile of the absolute step between neighbouring pixels
    laplacian_variance: float
    width: int  # the original's size
    height: int
    picture_width: int  # the size of the picture measured (the reduced preview)
    picture_height: int

    @property
    def spread(self) -> float:
        return self.p95 - self.p5


def measure(image: Image.Image, *, width: int | None = None, height: int | None = None) -> Measurements:
    """The measurements of ``image`` (any mode; read as 8-bit grey). ``width`` and ``height`` are the original's
    size when ``image`` is a reduced copy."""
    levels = np.asarray(image if image.mode == "L" else image.convert("L"), dtype=np.uint8)
    p5, p95 = _percentiles(np.bincount(levels.ravel(), minlength=256), (5, 95))
    edge = laplacian_variance = 0.0
    if levels.shape[0] >= 3 and levels.shape[1] >= 3:
        wide = levels.astype(np.int16)
        steps = (np.bincount(np.abs(np.diff(wide, axis=0)).ravel(), minlength=256)
                 + np.bincount(np.abs(np.diff(wide, axis=1)).ravel(), minlength=256))
        edge = _percentiles(steps, (99.9,))[0]
        grey = levels.astype(np.float32)
        laplacian = (grey[:-2, 1:-1] + grey[2:, 1:-1] + grey[1:-1, :-2] + grey[1:-1, 2:]
                     - 4 * grey[1:-1, 1:-1])
        laplacian_variance = float(laplacian.var())
    return Measurements(p5=p5, p95=p95, edge=edge, laplacian_variance=laplacian_variance,
                        width=width if width is not None else image.width,
                        height=height if height is not None else image.height,
                        picture_width=image.width, picture_height=image.height)


def _percentiles(counts: np.ndarray, wanted: tuple[float, ...]) -> tuple[float, ...]:
    """``np.percentile`` (linear interpolation) of the values 0..len(counts)-1 held ``counts`` times each, read
    from their histogram: the same figures as sorting the pixels, without sorting millions of them."""
    total = int(counts.sum())
    if total == 0:
        return tuple(0.0 for _ in wanted)
    ends = np.cumsum(counts)  # the value at sorted position k is the first v with ends[v] > k
    found = []
    for q in wanted:
        position = q / 100 * (total - 1)
        low = int(np.floor(position))
        high = min(low + 1, total - 1)
        below, above = (int(np.searchsorted(ends, k, side="right")) for k in (low, high))
        found.append(float(below + (above - below) * (position - low)))
    return tuple(found)


def _blurred(measured: Measurements, limits: Limits) -> bool:
    if measured.edge < limits.min_edge or min(measured.picture_width, measured.picture_height) < limits.min_side:
        # No edges to judge, or too few pixels to tell a soft edge from a sharp one (too_small says so).
        return False
    spread = max(measured.spread, 1.0)
    return (measured.edge / spread < limits.min_step_ratio
            and measured.laplacian_variance / spread ** 2 < limits.min_laplacian_ratio)


_MESSAGES = {
    "underexposed": "The image is almost entirely dark; details are likely lost. Check the exposure and retake.",
    "overexposed": "The image is almost entirely washed out; details are likely lost. Check the exposure and "
                   "retake.",
    "low_contrast": "The image is nearly one flat shade, with too little contrast to see detail. Retake it.",
    "blurred": "The image looks blurred: its edges are soft. Hold the sensor or camera still and retake.",
    "too_small": "The image has too few pixels to show detail; send the full-size file or retake.",
}


def warnings_for(measured: Measurements, limits: Limits) -> list[dict[str, str]]:
    """The warnings the measurements call for, as ``{code, message}``, in the order of ``CODES``."""
    codes: list[str] = []
    if measured.p95 < limits.dark_p95:
        codes.append("underexposed")
    if measured.p5 > limits.bright_p5:
        codes.append("overexposed")
    if measured.spread < limits.min_spread:
        codes.append("low_contrast")
    if _blurred(measured, limits):
        codes.append("blurred")
    if min(measured.width, measured.height) < limits.min_side:
        codes.append("too_small")
    return [{"code": code, "message": _MESSAGES[code]} for code in codes]


def check(image: Image.Image, *, radiograph: bool, width: int | None = None,
          height: int | None = None) -> list[dict[str, str]]:
    """The quality warnings of one image, from its (reduced) picture."""
    return warnings_for(measure(image, width=width, height=height), RADIOGRAPH if radiograph else PHOTO)
