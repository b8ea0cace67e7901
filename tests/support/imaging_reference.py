"""An independent rendering of a DICOM file's first frame, for comparison with the previews.

pydicom decodes the whole file its own way (``pixel_array``: its choice of plugin, its colour conversion
to RGB) and applies its documented display functions; the result is scaled to 8 bits by the output range
those functions define. Nothing here is shared with the server's drawing code.
"""

from __future__ import annotations

import io
import warnings

import numpy as np
import pydicom
from PIL import Image
from pydicom.multival import MultiValue
from pydicom.pixels.processing import apply_color_lut, apply_modality_lut, apply_voi_lut


def _first(value: object) -> float:
    return float(value[0]) if isinstance(value, MultiValue | list) else float(value)  # type: ignore[arg-type]


def _range_after_modality(ds: pydicom.Dataset) -> tuple[float, float]:
    bits = int(ds.BitsStored)
    low, high = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if ds.PixelRepresentation else (0, (1 << bits) - 1)
    if "ModalityLUTSequence" in ds:
        depth = int(ds.ModalityLUTSequence[0].LUTDescriptor[2])
        return 0, (1 << depth) - 1
    slope, intercept = float(ds.get("RescaleSlope", 1) or 1), float(ds.get("RescaleIntercept", 0) or 0)
    ends = (low * slope + intercept, high * slope + intercept)
    return min(ends), max(ends)


def reference_picture(data: bytes) -> Image.Image:
    """The first frame as an 8-bit L or RGB picture at full size."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = pydicom.dcmread(io.BytesIO(data))
        try:
            frames = int(ds.get("NumberOfFrames", 1) or 1)
        except ValueError:
            # Read as one frame, as the server reads an unparsable count.
            ds.NumberOfFrames = frames = 1
        array = ds.pixel_array[0] if frames > 1 else ds.pixel_array
        samples = int(ds.SamplesPerPixel)
        shape = (int(ds.Rows), int(ds.Columns)) + ((samples,) if samples > 1 else ())
        array = array.reshape(-1)[: int(np.prod(shape))].reshape(shape)
        photometric = ds.PhotometricInterpretation
        if photometric.startswith("MONOCHROME"):
            values = apply_modality_lut(array, ds).astype(np.float64)
            if "VOILUTSequence" in ds:
                depth = int(ds.VOILUTSequence[0].LUTDescriptor[2])
                shown = apply_voi_lut(apply_modality_lut(array, ds), ds, prefer_lut=True).astype(np.float64)
                scaled = shown / ((1 << depth) - 1) * 255
            elif "WindowCenter" in ds and _first(ds.WindowWidth) >= 1:
                low, high = _range_after_modality(ds)
                shown = apply_voi_lut(values, ds).astype(np.float64)
                scaled = (shown - low) / (high - low) * 255
            else:
                low, high = values.min(), values.max()
                scaled = (values - low) / (high - low) * 255 if high > low else values * 0
            if photometric == "MONOCHROME1":
                scaled = 255 - scaled
            return Image.fromarray(np.clip(np.rint(scaled), 0, 255).astype(np.uint8), "L")
        if photometric == "PALETTE COLOR":
            rgb = apply_color_lut(array, ds)
            if rgb.dtype != np.uint8:
                rgb = (rgb.astype(np.float64) / 65535 * 255).round().astype(np.uint8)
            return Image.fromarray(rgb, "RGB")
        if array.dtype != np.uint8:
            array = np.rint(array.astype(np.float64) / ((1 << int(ds.BitsStored)) - 1) * 255).astype(np.uint8)
        return Image.fromarray(np.ascontiguousarray(array), "RGB")


def mean_difference(preview: Image.Image, data: bytes) -> float:
    """Mean absolute difference, in 8-bit levels, between a preview and the reference brought to its size."""
    reference = reference_picture(data)
    mode = "RGB" if "RGB" in (reference.mode, preview.mode) else "L"
    resized = reference.convert(mode).resize(preview.size, Image.Resampling.BOX)
    return float(np.abs(np.asarray(preview.convert(mode), np.float64) - np.asarray(resized, np.float64)).mean())
