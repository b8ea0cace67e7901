"""Single frames of a stored DICOM file, as DICOMweb's frame retrieval hands them to a viewer.

Uncompressed pixel data is cut into frames and given little endian (the form DICOMweb names for uncompressed
frames: Explicit VR Little Endian); compressed pixel data is given frame by frame as stored, in its own transfer
syntax. Nothing is decoded or re-encoded.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import BinaryIO

import pydicom
from pydicom.encaps import generate_frames

from referral.imaging.quiet import quietly

EXPLICIT_LE = "1.2.840.10008.1.2.1"
_BIG_ENDIAN = "1.2.840.10008.1.2.2"
# Transfer syntaxes whose pixel data is not compressed (deflate compresses the whole dataset, which pydicom
# inflates on reading).
UNCOMPRESSED = frozenset({"1.2.840.10008.1.2", EXPLICIT_LE, _BIG_ENDIAN, "1.2.840.10008.1.2.1.99"})


class NoSuchFrame(LookupError):
    """A frame number outside 1..NumberOfFrames."""


class UnservableFrames(ValueError):
    """Pixel data this server cannot cut into frames (bit-packed, float, or unreadable)."""


def served_syntax(stored: str | None) -> str:
    """The transfer syntax frames of a file in ``stored`` are served in."""
    return EXPLICIT_LE if stored is None or stored in UNCOMPRESSED else stored


def _frames(stream: BinaryIO, numbers: Sequence[int]) -> list[bytes]:
    ds = pydicom.dcmread(stream)
    if "PixelData" not in ds:
        raise UnservableFrames("no pixel data")
    count = int(ds.get("NumberOfFrames", 1) or 1)
    if any(not 1 <= n <= count for n in numbers):
        raise NoSuchFrame(count)
    syntax = str(ds.file_meta.get("TransferSyntaxUID", EXPLICIT_LE))
    data: bytes = ds.PixelData
    if syntax not in UNCOMPRESSED:
        frames = list(generate_frames(data, number_of_frames=count))
        return [frames[n - 1] for n in numbers]
    bits = int(ds.BitsAllocated)
    if bits % 8:
        raise UnservableFrames("bit-packed pixel data")
    size = int(ds.Rows) * int(ds.Columns) * int(ds.get("SamplesPerPixel", 1)) * bits // 8
    result = []
    for n in numbers:
        frame = data[(n - 1) * size:n * size]
        if syntax == _BIG_ENDIAN and bits > 8:
            width = bits // 8
            frame = b"".join(frame[i:i + width][::-1] for i in range(0, len(frame), width))
        result.append(frame)
    return result


def read_frames(stream: BinaryIO, numbers: Sequence[int]) -> list[bytes]:
    """The bytes of the frames numbered ``numbers`` (from 1) of the Part 10 file in ``stream``."""
    try:
        return quietly(_frames, stream, numbers)
    except (NoSuchFrame, UnservableFrames):
        raise
    except (ValueError, TypeError, KeyError, AttributeError, EOFError) as exc:
        raise UnservableFrames(type(exc).__name__) from None
