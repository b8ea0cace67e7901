"""Distinct, valid intra-oral DICOM radiographs of a chosen size, made quickly.

Every file has its own SOP Instance UID and its own pixels (a 12-bit gradient shifted by the file's number),
so no two files hash alike. The patient is Doe^Jane, born 1980-01-01, the patient the benchmarks' referrals
are made for: intake refuses a DICOM of another patient.
"""

from __future__ import annotations

import io
import struct
import uuid
from array import array
from collections.abc import Iterator
from pathlib import Path

import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import UID, DigitalIntraOralXRayImageStorageForPresentation, ExplicitVRLittleEndian

PATIENT_NAME = "Doe^Jane"
PATIENT_BIRTH_DATE = "19800101"
_IMPLEMENTATION_UID = "1.2.826.0.1.3680043.8.498.1"


def new_uid() -> str:
    return f"2.25.{uuid.uuid4().int}"


def _header(rows: int, columns: int, *, study_uid: str, series_uid: str, instance_number: int) -> bytes:
    """Everything up to the Pixel Data element, as pydicom writes it."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = DigitalIntraOralXRayImageStorageForPresentation
    meta.MediaStorageSOPInstanceUID = UID(new_uid())
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = UID(_IMPLEMENTATION_UID)
    ds = Dataset()
    ds.file_meta = meta
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = series_uid
    ds.InstanceNumber = instance_number
    ds.Modality = "IO"
    ds.PresentationIntentType = "FOR PRESENTATION"
    ds.PatientName = PATIENT_NAME
    ds.PatientID = "P-BENCH"
    ds.PatientBirthDate = PATIENT_BIRTH_DATE
    ds.AcquisitionDateTime = "20260105103000"
    ds.KVP = 70.0
    ds.ExposureTime = 120
    ds.XRayTubeCurrent = 7
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = rows
    ds.Columns = columns
    ds.BitsAllocated = 16
    ds.BitsStored = 12
    ds.HighBit = 11
    ds.PixelRepresentation = 0
    ds.WindowCenter = 2048
    ds.WindowWidth = 4096
    buffer = io.BytesIO()
    pydicom.dcmwrite(buffer, ds, enforce_file_format=True)
    return buffer.getvalue()


def _pixel_element_header(length: int) -> bytes:
    # (7FE0,0010) OW, explicit VR little endian: tag, VR, two reserved bytes, 32-bit length.
    return struct.pack("<HH2sHI", 0x7FE0, 0x0010, b"OW", 0, length)


def _gradient(rows: int, columns: int) -> bytes:
    """12-bit sample values as little-endian 16-bit words."""
    pixels = array("H", ((row * 3 + column * 5) % 4096 for row in range(rows) for column in range(columns)))
    if struct.pack("=H", 1) != struct.pack("<H", 1):
        pixels.byteswap()
    return pixels.tobytes()


class RadiographFactory:
    """Makes radiographs of ``rows`` x ``columns`` 16-bit pixels; call ``make(n)`` for the n-th distinct one."""

    def __init__(self, rows: int, columns: int) -> None:
        self.rows = rows
        self.columns = columns
        self._base = _gradient(rows, columns)

    @property
    def size(self) -> int:
        return len(self._base)

    def make(self, number: int, *, study_uid: str | None = None, series_uid: str | None = None) -> bytes:
        # Shifting by a whole number of pixels keeps every value a valid 12-bit sample.
        shift = (2 * (number * 7919 + 1)) % len(self._base)
        pixels = self._base[shift:] + self._base[:shift]
        header = _header(self.rows, self.columns, study_uid=study_uid or new_uid(),
                         series_uid=series_uid or new_uid(), instance_number=number + 1)
        return header + _pixel_element_header(len(pixels)) + pixels


def radiographs(count: int, megabytes: float, *, per_study: int = 8) -> Iterator[bytes]:
    """``count`` distinct radiographs of about ``megabytes`` MB each, ``per_study`` to a study."""
    columns = 1300
    rows = max(16, int(megabytes * 1_000_000 / (columns * 2)))
    factory = RadiographFactory(rows, columns)
    study = series = ""
    for number in range(count):
        if number % per_study == 0:
            study, series = new_uid(), new_uid()
        yield factory.make(number, study_uid=study, series_uid=series)


def write_large_radiograph(path: Path, megabytes: int) -> int:
    """A valid radiograph of at least ``megabytes`` MB, streamed to ``path`` (never whole in memory)."""
    columns = 2048
    row_bytes = columns * 2
    rows = -(-megabytes * 1_000_000 // row_bytes)
    chunk_rows = 256
    chunk = _gradient(chunk_rows, columns)
    with path.open("wb") as out:
        out.write(_header(rows, columns, study_uid=new_uid(), series_uid=new_uid(), instance_number=1))
        out.write(_pixel_element_header(rows * row_bytes))
        left = rows
        while left:
            take = min(left, chunk_rows)
            out.write(chunk[:take * row_bytes])
            left -= take
    return path.stat().st_size
