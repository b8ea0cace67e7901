"""Read the metadata of an uploaded DICOM Part 10 file without trusting it.

Reading happens in two passes over a seekable file:

1. ``_Scanner`` walks the element *headers* iteratively (an explicit stack,
   seeks over values) and refuses anything structurally hostile: nesting
   deeper than ``MAX_SEQUENCE_DEPTH``, more than ``MAX_ELEMENTS`` headers,
   lengths running past the end of the file. It also finds the Pixel Data
   element. Memory and time are bounded regardless of file size.
2. Only then does pydicom parse the file, restricted to the handful of tags
   we use, stopping before the pixels and deferring large values.

Values are decoded from pydicom's raw elements by this module rather than by
pydicom's converters. The converters report oddities through ``warnings``,
and the only way to silence those locally (``warnings.catch_warnings``) is
not thread-safe; the values we need are simple enough to decode directly.
"""

from __future__ import annotations

import contextlib
import math
import re
import struct
import tempfile
import unicodedata
import zlib
from collections.abc import Iterator
from collections.abc import Sequence as CollectionsSequence
from dataclasses import dataclass, field, fields
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any, BinaryIO

import pydicom
from pydicom.charset import convert_encodings, decode_bytes
from pydicom.datadict import dictionary_VR
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.valuerep import EXPLICIT_VR_LENGTH_32, VR, PersonName

from referral.dental import universal_from_code
from referral.imaging import DamagedImage, UnsupportedImageType
from referral.imaging.quiet import quietly

__all__ = [
    "MAX_ELEMENTS",
    "MAX_FRAGMENTS",
    "MAX_INFLATED_BYTES",
    "MAX_NESTED_VALUE_BYTES",
    "MAX_SEQUENCE_DEPTH",
    "MAX_TEXT_LENGTH",
    "DicomInfo",
    "PixelDataLocation",
    "name_groups",
    "pixel_source",
    "read_dicom",
]

MAX_SEQUENCE_DEPTH = 8
MAX_ELEMENTS = 20_000
# Encapsulated pixel data is walked fragment by fragment; a file made of
# millions of empty fragments would otherwise take seconds to walk.
MAX_FRAGMENTS = 100_000
# pydicom reads sequences of undefined length eagerly, values included, so
# bulk data hidden inside sequences would be pulled into memory. This caps the
# total of all values inside sequences, not each one, so that splitting the
# bulk over many items does not get round it.
MAX_NESTED_VALUE_BYTES = 16 * 1024 * 1024
MAX_TEXT_LENGTH = 256
# A deflated file is inflated to a temporary file before it is read; a deflate bomb stops here. The largest
# image accepted (MAX_PIXELS of 16-bit grey, or of 8-bit colour) fits well inside.
MAX_INFLATED_BYTES = 512 * 1024 * 1024
_INFLATE_CHUNK = 256 * 1024

# Values larger than this are left on disk by pydicom and treated as absent:
# nothing we extract is legitimately anywhere near this size.
_DEFER_BYTES = 64 * 1024
_MAX_CHARSET_BYTES = 1024
_MAX_META_VALUE_BYTES = 1024

_PREAMBLE = 128
_MAGIC = b"DICM"
_UNDEFINED = 0xFFFFFFFF

_ITEM = 0xFFFEE000
_ITEM_DELIMITER = 0xFFFEE00D
_SEQUENCE_DELIMITER = 0xFFFEE0DD
_PIXEL_DATA = 0x7FE00010
_OTHER_PIXEL_DATA = (0x7FE00008, 0x7FE00009)  # float / double float pixel data

_IMPLICIT_LE = "1.2.840.10008.1.2"
_EXPLICIT_LE = "1.2.840.10008.1.2.1"
_EXPLICIT_BE = "1.2.840.10008.1.2.2"
_DEFLATED_LE = "1.2.840.10008.1.2.1.99"
_NATIVE_SYNTAXES = frozenset({_IMPLICIT_LE, _EXPLICIT_LE, _EXPLICIT_BE})

_KNOWN_VRS = frozenset(vr.value.encode("ascii") for vr in VR)
_LONG_LENGTH_VRS = frozenset(str(vr).encode("ascii") for vr in EXPLICIT_VR_LENGTH_32)

# Tags pydicom is asked to keep; everything else at the top level is skipped
# by seeking.
_SPECIFIC_CHARACTER_SET = 0x00080005
_SOP_CLASS_UID = 0x00080016
_SOP_INSTANCE_UID = 0x00080018
_ACQUISITION_DATE = 0x00080022
_ACQUISITION_DATETIME = 0x0008002A
_ACQUISITION_TIME = 0x00080032
_CONTENT_DATE = 0x00080023
_CONTENT_TIME = 0x00080033
_ACCESSION_NUMBER = 0x00080050
_MODALITY = 0x00080060
_PRESENTATION_INTENT = 0x00080068
_CODE_VALUE = 0x00080100
_CODING_SCHEME = 0x00080102
_CODE_MEANING = 0x00080104
_TIMEZONE_OFFSET = 0x00080201
_OPERATORS_NAME = 0x00081070
_ANATOMIC_REGION_SEQUENCE = 0x00082218
_PRIMARY_ANATOMIC_STRUCTURE_SEQUENCE = 0x00082228
_PATIENT_NAME = 0x00100010
_PATIENT_ID = 0x00100020
_PATIENT_BIRTH_DATE = 0x00100030
_KVP = 0x00180060
_EXPOSURE_TIME = 0x00181150
_TUBE_CURRENT = 0x00181151
_EXPOSURE = 0x00181152
_EXPOSURE_UAS = 0x00181153
_EXPOSURE_TIME_MS = 0x00189328
_TUBE_CURRENT_MA = 0x00189330
_EXPOSURE_MAS = 0x00189332
_STUDY_INSTANCE_UID = 0x0020000D
_SERIES_INSTANCE_UID = 0x0020000E
_SERIES_NUMBER = 0x00200011
_INSTANCE_NUMBER = 0x00200013
_LATERALITY = 0x00200060
_IMAGE_LATERALITY = 0x00200062
_SAMPLES_PER_PIXEL = 0x00280002
_PHOTOMETRIC = 0x00280004
_PLANAR_CONFIGURATION = 0x00280006
_NUMBER_OF_FRAMES = 0x00280008
_ROWS = 0x00280010
_COLUMNS = 0x00280011
_BITS_ALLOCATED = 0x00280100
_BITS_STORED = 0x00280101
_PIXEL_REPRESENTATION = 0x00280103
_WINDOW_CENTER = 0x00281050
_WINDOW_WIDTH = 0x00281051
_RESCALE_INTERCEPT = 0x00281052
_RESCALE_SLOPE = 0x00281053

_WANTED_TAGS = [
    _SPECIFIC_CHARACTER_SET,
    _SOP_CLASS_UID,
    _SOP_INSTANCE_UID,
    _ACCESSION_NUMBER,
    _STUDY_INSTANCE_UID,
    _SERIES_INSTANCE_UID,
    _SERIES_NUMBER,
    _INSTANCE_NUMBER,
    _ACQUISITION_DATE,
    _ACQUISITION_DATETIME,
    _ACQUISITION_TIME,
    _CONTENT_DATE,
    _CONTENT_TIME,
    _MODALITY,
    _PRESENTATION_INTENT,
    _TIMEZONE_OFFSET,
    _OPERATORS_NAME,
    _ANATOMIC_REGION_SEQUENCE,
    _PRIMARY_ANATOMIC_STRUCTURE_SEQUENCE,
    _PATIENT_NAME,
    _PATIENT_ID,
    _PATIENT_BIRTH_DATE,
    _KVP,
    _EXPOSURE_TIME,
    _TUBE_CURRENT,
    _EXPOSURE,
    _EXPOSURE_UAS,
    _EXPOSURE_TIME_MS,
    _TUBE_CURRENT_MA,
    _EXPOSURE_MAS,
    _LATERALITY,
    _IMAGE_LATERALITY,
    _SAMPLES_PER_PIXEL,
    _PHOTOMETRIC,
    _PLANAR_CONFIGURATION,
    _NUMBER_OF_FRAMES,
    _ROWS,
    _COLUMNS,
    _BITS_ALLOCATED,
    _BITS_STORED,
    _PIXEL_REPRESENTATION,
    _WINDOW_CENTER,
    _WINDOW_WIDTH,
    _RESCALE_INTERCEPT,
    _RESCALE_SLOPE,
]

RADIOGRAPH_MODALITIES = frozenset({"IO", "PX", "DX", "CR", "RG", "CT"})
INTRAORAL_SOP_CLASSES = frozenset(
    {
        str(pydicom.uid.DigitalIntraOralXRayImageStorageForPresentation),
        str(pydicom.uid.DigitalIntraOralXRayImageStorageForProcessing),
    }
)
XRAY_SOP_CLASSES = INTRAORAL_SOP_CLASSES | frozenset(
    str(uid)
    for uid in (
        pydicom.uid.ComputedRadiographyImageStorage,
        pydicom.uid.DigitalXRayImageStorageForPresentation,
        pydicom.uid.DigitalXRayImageStorageForProcessing,
        pydicom.uid.DigitalMammographyXRayImageStorageForPresentation,
        pydicom.uid.DigitalMammographyXRayImageStorageForProcessing,
        pydicom.uid.CTImageStorage,
        pydicom.uid.EnhancedCTImageStorage,
        pydicom.uid.LegacyConvertedEnhancedCTImageStorage,
        pydicom.uid.XRayAngiographicImageStorage,
        pydicom.uid.XRayRadiofluoroscopicImageStorage,
        pydicom.uid.XRay3DAngiographicImageStorage,
        pydicom.uid.XRay3DCraniofacialImageStorage,
        pydicom.uid.BreastProjectionXRayImageStorageForPresentation,
        pydicom.uid.BreastProjectionXRayImageStorageForProcessing,
    )
)

# Where the pixels sit in the uploaded file: meaningless once the file is in the store, so never recorded.
_TRANSIENT_FIELDS = frozenset({"pixel_data"})

# Header fields that name a person (the patient, the operator): never in responses, and erased from the row
# when the image is deleted.
IDENTIFYING_FIELDS = frozenset(
    {
        "patient_name",
        "patient_family_name",
        "patient_given_name",
        "patient_id",
        "patient_birth_date",
        "operators_name",
    }
)


@dataclass(frozen=True)
class PixelDataLocation:
    """Where the top-level Pixel Data value starts in the file it was read from.

    ``length`` is None for encapsulated (compressed) data, whose undefined-length value is a run of
    items: a basic offset table, then the fragments. Both are checked against the file by
    ``read_dicom``, so a reader may seek to them without re-validating the structure.
    """

    value_offset: int
    length: int | None
    little_endian: bool
    # OB or OW as written (None in implicit VR files): big endian OW holding 8-bit samples is byte-swapped.
    vr: str | None = None


@dataclass
class DicomInfo:
    """What the server keeps from a DICOM header.

    Text values are stored verbatim apart from NUL removal and a length cap:
    they may contain markup and must be escaped wherever they are rendered.
    """

    modality: str | None = None
    sop_class_uid: str | None = None
    transfer_syntax_uid: str | None = None
    # The file's DICOM identity, kept so that exports and viewers name the same study, series and instance.
    study_instance_uid: str | None = None
    series_instance_uid: str | None = None
    sop_instance_uid: str | None = None
    accession_number: str | None = None
    series_number: int | None = None
    instance_number: int | None = None
    presentation_intent: str | None = None
    acquisition_datetime: datetime | None = None
    # Whether the file said the offset of acquisition_datetime (in the value or as Timezone Offset From UTC);
    # when it did not, the value above is the wall time as written, labelled UTC.
    acquisition_offset_stated: bool = False
    # Whether the file gave a time of day, not only a date (a date alone is no capture time).
    acquisition_time_stated: bool = False
    kvp: float | None = None
    exposure_time_ms: float | None = None
    tube_current_ma: float | None = None
    exposure_mas: float | None = None
    operators_name: str | None = None
    laterality: str | None = None
    patient_name: str | None = None
    patient_family_name: str | None = None
    patient_given_name: str | None = None
    patient_id: str | None = None
    patient_birth_date: date | None = None
    teeth: list[str] = field(default_factory=list)
    anatomic_region: str | None = None
    rows: int | None = None
    columns: int | None = None
    samples_per_pixel: int | None = None
    bits_allocated: int | None = None
    bits_stored: int | None = None
    number_of_frames: int | None = None
    photometric: str | None = None
    window_center: float | None = None
    window_width: float | None = None
    pixel_representation: int | None = None
    planar_configuration: int | None = None
    rescale_slope: float | None = None
    rescale_intercept: float | None = None
    pixel_data: PixelDataLocation | None = field(default=None, compare=False, repr=False)

    @property
    def is_radiograph(self) -> bool:
        return self.modality in RADIOGRAPH_MODALITIES or self.sop_class_uid in XRAY_SOP_CLASSES

    @property
    def is_intraoral_radiograph(self) -> bool:
        return self.modality == "IO" or self.sop_class_uid in INTRAORAL_SOP_CLASSES

    def to_public_dict(self) -> dict[str, Any]:
        """JSON-safe view without patient or operator identity; unknown values omitted."""
        result = {
            key: value
            for key, value in self.to_record_dict().items()
            if key not in IDENTIFYING_FIELDS and value is not None
        }
        result["is_radiograph"] = self.is_radiograph
        result["is_intraoral_radiograph"] = self.is_intraoral_radiograph
        return result

    def to_record_dict(self) -> dict[str, Any]:
        """JSON-safe view of every field (None kept as null), for the database."""
        result: dict[str, Any] = {}
        for f in fields(self):
            if f.name in _TRANSIENT_FIELDS:
                continue
            value = getattr(self, f.name)
            if isinstance(value, date):  # datetime is a date subclass
                value = value.isoformat()
            elif isinstance(value, list):
                value = list(value)
            result[f.name] = value
        return result

    @classmethod
    def from_record_dict(cls, data: dict[str, Any]) -> DicomInfo:
        """Rebuild from ``to_record_dict`` output; unknown keys are ignored."""
        known = {f.name for f in fields(cls)} - _TRANSIENT_FIELDS
        values = {key: value for key, value in data.items() if key in known}
        if isinstance(values.get("acquisition_datetime"), str):
            values["acquisition_datetime"] = datetime.fromisoformat(values["acquisition_datetime"])
        if isinstance(values.get("patient_birth_date"), str):
            values["patient_birth_date"] = date.fromisoformat(values["patient_birth_date"])
        values["teeth"] = list(values.get("teeth") or [])
        return cls(**values)


# --- structural scan ----------------------------------------------------------


@dataclass
class _PixelElement:
    offset: int  # start of the element header
    value_offset: int
    length: int  # _UNDEFINED for encapsulated data
    vr: str | None = None


@dataclass
class _Layout:
    transfer_syntax: str | None
    little_endian: bool
    pixels: _PixelElement | None


@dataclass
class _Frame:
    # end is None for undefined-length items and sequences, which are closed
    # by a delimiter instead.
    end: int | None
    implicit: bool
    is_sequence: bool
    top_level: bool = False


def _refuse(reason: str) -> DamagedImage:
    return DamagedImage(f"{reason}; re-export the image from the imaging software and upload it again")


_TRUNCATED = "the DICOM file is truncated or damaged"


class _Scanner:
    def __init__(self, fp: BinaryIO, size: int) -> None:
        self.fp = fp
        self.size = size
        self.elements = 0
        self.nested_bytes = 0
        self.endian = "<"
        self.meta_end = _PREAMBLE + len(_MAGIC)
        self.transfer_syntax_value: tuple[int, int] | None = None

    def read(self, count: int) -> bytes:
        data = self.fp.read(count)
        if len(data) < count:
            raise _refuse(_TRUNCATED)
        return data

    def skip_to(self, offset: int) -> None:
        if offset > self.size:
            raise _refuse(_TRUNCATED)
        self.fp.seek(offset)

    def count_nested(self, length: int) -> None:
        self.nested_bytes += length
        if self.nested_bytes > MAX_NESTED_VALUE_BYTES:
            raise _refuse("the DICOM file holds implausibly large values inside sequences")

    def count(self) -> None:
        self.elements += 1
        if self.elements > MAX_ELEMENTS:
            raise _refuse(f"the DICOM file has more than {MAX_ELEMENTS} elements")

    def scan(self) -> _Layout:
        self.fp.seek(0)
        head = self.fp.read(_PREAMBLE + len(_MAGIC))
        if head[_PREAMBLE:] != _MAGIC:
            raise UnsupportedImageType(
                "this is not a DICOM Part 10 file (no 'DICM' marker); "
                "export the image as a DICOM file, JPEG, PNG or TIFF"
            )
        transfer_syntax = self.scan_file_meta()
        if transfer_syntax == _DEFLATED_LE:
            # Callers hand the scanner the inflated twin (see pixel_source), never the deflated file.
            raise _refuse("the deflated DICOM file could not be inflated")
        little_endian = transfer_syntax != _EXPLICIT_BE
        self.endian = "<" if little_endian else ">"
        pixels = self.scan_dataset(assumed_implicit=transfer_syntax in (None, _IMPLICIT_LE))
        return _Layout(transfer_syntax, little_endian, pixels)

    def scan_file_meta(self) -> str | None:
        """Skip the group 0002 elements, returning the transfer syntax UID."""
        transfer_syntax = None
        while True:
            start = self.fp.tell()
            header = self.fp.read(8)
            if len(header) < 8 or struct.unpack("<H", header[:2])[0] != 0x0002:
                self.fp.seek(start)
                self.meta_end = start
                return transfer_syntax
            self.count()
            group, element, vr, length = struct.unpack("<HH2sH", header)
            if vr in _LONG_LENGTH_VRS:
                (length,) = struct.unpack("<L", self.read(4))
            elif not (b"AA" <= vr <= b"ZZ"):
                # File meta is always explicit VR little endian, but some
                # writers get it wrong; pydicom tolerates that, so do we.
                (length,) = struct.unpack("<L", header[4:])
            if length == _UNDEFINED or length > _MAX_META_VALUE_BYTES:
                raise _refuse("the DICOM file meta information is damaged")
            value_offset = self.fp.tell()
            if (group, element) == (0x0002, 0x0010):
                self.transfer_syntax_value = (value_offset, length)
                raw = self.read(length)
                transfer_syntax = raw.decode("ascii", errors="replace").strip("\x00 ")
            self.skip_to(value_offset + length)

    def detect_implicit(self, assumed_implicit: bool, top_level: bool) -> bool:
        """Decide the VR encoding of a dataset the way pydicom's reader does.

        Sequences inherit implicit VR from their parent; otherwise the first
        element's VR bytes tell (two capital letters means explicit).
        """
        if assumed_implicit and not top_level:
            return True
        start = self.fp.tell()
        peek = self.fp.read(6)
        self.fp.seek(start)
        if len(peek) < 6:
            return assumed_implicit
        return not (0x40 < peek[4] < 0x5B and 0x40 < peek[5] < 0x5B)

    def read_tag(self) -> tuple[int, bytes]:
        raw = self.read(4)
        group, element = struct.unpack(self.endian + "HH", raw)
        return group << 16 | element, raw

    def scan_dataset(self, assumed_implicit: bool) -> _PixelElement | None:
        implicit = self.detect_implicit(assumed_implicit, top_level=True)
        stack = [_Frame(end=self.size, implicit=implicit, is_sequence=False, top_level=True)]
        depth = 0
        while stack:
            frame = stack[-1]
            position = self.fp.tell()
            if frame.end is not None and position >= frame.end:
                if position > frame.end:
                    raise _refuse(_TRUNCATED)
                stack.pop()
                depth -= frame.is_sequence
                continue
            limit = next(f.end for f in reversed(stack) if f.end is not None)

            if frame.is_sequence:
                tag, _ = self.read_tag()
                (length,) = struct.unpack(self.endian + "L", self.read(4))
                self.count()
                if tag == _SEQUENCE_DELIMITER:
                    if frame.end is not None:
                        raise _refuse(_TRUNCATED)
                    stack.pop()
                    depth -= 1
                    continue
                if tag != _ITEM:
                    raise _refuse(_TRUNCATED)
                item_end = None if length == _UNDEFINED else self.fp.tell() + length
                if item_end is not None and item_end > limit:
                    raise _refuse(_TRUNCATED)
                implicit = self.detect_implicit(frame.implicit, top_level=False)
                stack.append(_Frame(end=item_end, implicit=implicit, is_sequence=False))
                continue

            tag, _ = self.read_tag()
            if tag >> 16 == 0xFFFE:
                (length,) = struct.unpack(self.endian + "L", self.read(4))
                self.count()
                if tag == _ITEM_DELIMITER and frame.end is None:
                    stack.pop()
                    continue
                raise _refuse(_TRUNCATED)
            vr, length = self.read_vr_and_length(frame.implicit)
            self.count()
            value_offset = self.fp.tell()

            if frame.top_level and tag in _OTHER_PIXEL_DATA:
                raise UnsupportedImageType(
                    "DICOM files with floating-point pixel data are not accepted; "
                    "upload a radiograph or photograph"
                )
            if frame.top_level and tag == _PIXEL_DATA:
                return _PixelElement(offset=position, value_offset=value_offset, length=length,
                                     vr=vr.decode("ascii") if vr in (b"OB", b"OW") else None)

            if length == _UNDEFINED:
                if tag == _PIXEL_DATA:
                    # Encapsulated pixel data nested in e.g. an icon image.
                    _, fragment_bytes = self.skip_fragments(value_offset)
                    self.count_nested(fragment_bytes)
                    continue
                peek, _ = self.read_tag()
                self.fp.seek(value_offset)
                # Only pixel data may be encapsulated; anything else of
                # undefined length must be a sequence (pydicom reads SQ, UN
                # and unknown private elements of undefined length as one).
                if vr in (b"OB", b"OW") or peek not in (_ITEM, _SEQUENCE_DELIMITER):
                    raise _refuse("the DICOM file has an element of undefined length that is not a sequence")
                depth += 1
                if depth > MAX_SEQUENCE_DEPTH:
                    raise _refuse(f"the DICOM file nests sequences deeper than {MAX_SEQUENCE_DEPTH} levels")
                # Items decide their own VR encoding, see detect_implicit.
                stack.append(_Frame(end=None, implicit=frame.implicit, is_sequence=True))
                continue

            value_end = value_offset + length
            if value_end > limit:
                raise _refuse(_TRUNCATED)
            if self.is_sequence(tag, vr):
                depth += 1
                if depth > MAX_SEQUENCE_DEPTH:
                    raise _refuse(f"the DICOM file nests sequences deeper than {MAX_SEQUENCE_DEPTH} levels")
                # A known sequence stored as UN is implicit VR little endian inside (PS3.5 6.2.2).
                implicit = frame.implicit or vr == b"UN"
                stack.append(_Frame(end=value_end, implicit=implicit, is_sequence=True))
                continue
            if not frame.top_level:
                self.count_nested(length)
            if tag == _SPECIFIC_CHARACTER_SET and length > _MAX_CHARSET_BYTES:
                raise _refuse("the DICOM character set element is damaged")
            self.fp.seek(value_end)
        return None

    def read_vr_and_length(self, implicit: bool) -> tuple[bytes | None, int]:
        """Read what follows the tag; ``None`` as VR means implicit encoding."""
        rest = self.read(4)
        if implicit:
            (length,) = struct.unpack(self.endian + "L", rest)
            return None, length
        vr = rest[:2]
        if vr in _LONG_LENGTH_VRS:
            (length,) = struct.unpack(self.endian + "L", self.read(4))
            return vr, length
        if vr not in _KNOWN_VRS and not (b"AA" <= vr <= b"ZZ"):
            # Some writers switch to implicit VR mid-file; pydicom follows them.
            (length,) = struct.unpack(self.endian + "L", rest)
            return None, length
        (length,) = struct.unpack(self.endian + "H", rest[2:])
        return vr, length

    @staticmethod
    def is_sequence(tag: int, vr: bytes | None) -> bool:
        if vr == b"SQ":
            return True
        if vr not in (None, b"UN"):
            return False
        try:
            return bool(dictionary_VR(tag) == "SQ")
        except KeyError:
            return False

    def skip_fragments(self, offset: int) -> tuple[int, int]:
        """Seek over encapsulated fragments; return (non-empty image fragments, total bytes)."""
        self.fp.seek(offset)
        fragments = 0
        non_empty = 0
        total = 0
        while True:
            if self.fp.tell() + 8 > self.size:
                raise _refuse("the DICOM pixel data is truncated")
            tag, _ = self.read_tag()
            (length,) = struct.unpack(self.endian + "L", self.read(4))
            if tag == _SEQUENCE_DELIMITER:
                return non_empty, total
            if tag != _ITEM or length == _UNDEFINED:
                raise _refuse("the DICOM pixel data is damaged")
            fragments += 1
            if fragments > MAX_FRAGMENTS:
                raise _refuse(f"the DICOM pixel data has more than {MAX_FRAGMENTS} fragments")
            # The first item is the basic offset table, not image data.
            if length and fragments > 1:
                non_empty += 1
            total += length
            end = self.fp.tell() + length
            if end > self.size:
                raise _refuse("the DICOM pixel data is truncated")
            self.fp.seek(end)


# --- value decoding -------------------------------------------------------------


def _element(ds: Dataset, tag: int) -> RawDataElement | DataElement | None:
    try:
        elem = ds.get_item(tag, keep_deferred=True)
    except Exception:
        return None
    if isinstance(elem, RawDataElement) and elem.value is None:
        return None  # deferred: larger than anything we would keep
    return elem


def _vr_of(elem: RawDataElement | DataElement) -> str | None:
    vr = elem.VR
    if vr in (None, "UN"):
        try:
            return str(dictionary_VR(elem.tag))
        except KeyError:
            return None
    return str(vr)


# Backslash separates values; the others end lines in text values. Escape sequences switch character set
# only until one of these (PS3.5 6.1.2.5.3), so pydicom needs to know them.
_TEXT_DELIMITERS = {0x5C, 0x0D, 0x0A, 0x09, 0x0C}
_DEFAULT_ENCODINGS = ["iso8859"]


def _encodings(ds: Dataset) -> list[str]:
    """Python codecs for the Specific Character Set terms, in order, as pydicom switches between them."""
    elem = _element(ds, _SPECIFIC_CHARACTER_SET)
    value = elem.value if elem is not None else None
    if isinstance(value, bytes):
        value = value.decode("ascii", errors="replace")
    if isinstance(value, str):
        value = value.split("\\")
    if not isinstance(value, CollectionsSequence) or not all(isinstance(term, str) for term in value):
        # pydicom decodes this element itself as it reads (it needs it for the others): a list by now.
        return list(_DEFAULT_ENCODINGS)
    terms = [str(term).strip(" \x00") for term in value]
    try:
        # Unknown terms fall back to the default repertoire, with a warning that is of no use here.
        return list(quietly(convert_encodings, terms))
    except Exception:
        return list(_DEFAULT_ENCODINGS)


def _decode_text(raw: bytes, encodings: list[str], vr: str | None) -> str:
    if vr == "PN":
        # Alphabetic, ideographic and phonetic groups may each use their own escapes.
        name = PersonName(raw, encodings=encodings)
        return "=".join(quietly(lambda: name.components))
    return str(quietly(decode_bytes, raw, encodings, _TEXT_DELIMITERS))


def _clean(text: str) -> str | None:
    text = text.replace("\x00", "").strip()
    return text[:MAX_TEXT_LENGTH] or None


def _text(ds: Dataset, tag: int, encodings: list[str], *, first_value: bool = False) -> str | None:
    elem = _element(ds, tag)
    if elem is None:
        return None
    value = elem.value
    if isinstance(value, bytes):
        try:
            text = _decode_text(value, encodings, _vr_of(elem))
        except Exception:
            text = value.decode("latin_1")
    elif isinstance(value, str):
        text = value
    else:
        return None
    if first_value:
        text = text.split("\\", 1)[0]
    if _vr_of(elem) == "PN":
        # Trailing empty component groups say nothing.
        text = text.rstrip("= \x00")
    return _clean(text)


_UID = re.compile(r"[0-9]+(\.[0-9]+)*")
_ASCII = ["ascii"]


def _uid(ds: Dataset, tag: int) -> str | None:
    """A UID exactly as DICOM defines them (digits and dots, at most 64 characters); anything else is absent."""
    value = _text(ds, tag, _ASCII)
    return value if value is not None and len(value) <= 64 and _UID.fullmatch(value) else None


def name_groups(patient_name: str | None) -> list[tuple[str | None, str | None]]:
    """(family, given) of each component group of a Person Name: alphabetic, ideographic, phonetic.

    Groups left empty are left out, so a name written only in ideographs gives one pair."""
    if not patient_name:
        return []
    groups = []
    for group in patient_name.split("="):
        parts = group.split("^")
        family = _clean(parts[0])
        given = _clean(parts[1]) if len(parts) > 1 else None
        if family or given:
            groups.append((family, given))
    return groups


def _name_key(value: str) -> str:
    return "".join(ch for ch in unicodedata.normalize("NFKD", value).casefold() if ch.isalnum())


def reading_order(person_name: str | None) -> str | None:
    """A Person Name (family^given^middle^prefix^suffix, then optional ideographic forms after "=") as a person
    writes it: ``Ann Smith``."""
    if not person_name:
        return None
    family, given, middle, prefix, suffix = (person_name.split("=")[0].split("^") + [""] * 5)[:5]
    return " ".join(part.strip() for part in (prefix, given, middle, family, suffix) if part.strip()) or None


def names_person(person_name: str | None, first_name: str, last_name: str) -> bool:
    """Whether a Person Name may name this person: some form of it has their family name and, when it gives
    one, a given name that agrees (``Ann`` and ``Anne`` do, ``Ann`` and ``Sam`` do not). A name written as
    free text (``Ann Smith``, ``SMITH ANN``) matches when it holds the family name as a word."""
    last, first = _name_key(last_name), _name_key(first_name)
    for family, given in name_groups(person_name):
        if given is None and family is not None and " " in family.strip():
            if last in {_name_key(word) for word in family.split()}:
                return True
            continue
        if _name_key(family or "") != last:
            continue
        given_key = _name_key((given or "").split(" ")[0])
        if not given_key or given_key.startswith(first) or first.startswith(given_key):
            return True
    return False


_BINARY_FORMATS = {"US": "H", "SS": "h", "UL": "L", "SL": "l", "FL": "f", "FD": "d"}


def _number(ds: Dataset, tag: int) -> float | None:
    elem = _element(ds, tag)
    if elem is not None and isinstance(elem.value, int) and not isinstance(elem.value, bool):
        # Parsing a sequence makes pydicom look up PixelRepresentation (to settle ambiguous US/SS
        # elements) and decode it in place, so by now it may already be a plain integer.
        return float(elem.value)
    if elem is None or not isinstance(elem.value, bytes):
        return None
    vr = _vr_of(elem)
    raw: bytes = elem.value
    number: float
    if vr in ("DS", "IS"):
        text = raw.decode("latin_1").split("\\", 1)[0].strip(" \x00")
        try:
            number = float(text)
        except ValueError:
            return None
    elif vr in _BINARY_FORMATS:
        code = _BINARY_FORMATS[vr]
        width = struct.calcsize(code)
        if len(raw) < width:
            return None
        little = elem.is_little_endian if isinstance(elem, RawDataElement) else True
        (number,) = struct.unpack(("<" if little else ">") + code, raw[:width])
    else:
        return None
    return number if math.isfinite(number) else None


def _integer(ds: Dataset, tag: int) -> int | None:
    number = _number(ds, tag)
    if number is None or number != int(number):
        return None
    return int(number)


_DATE = re.compile(r"(\d{4})(\d{2})(\d{2})")
_TIME = re.compile(r"(\d{2})(\d{2})?(\d{2})?(?:\.(\d{1,6}))?")
_DATETIME = re.compile(r"(\d{4})(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\d{2})?(?:\.(\d{1,6}))?([+-]\d{4})?")
_OFFSET = re.compile(r"([+-])(\d{2})(\d{2})")


def _parse_date(text: str | None) -> date | None:
    # Pre-1993 files may use "YYYY.MM.DD".
    match = _DATE.fullmatch((text or "").replace(".", ""))
    if not match:
        return None
    try:
        return date(*(int(part) for part in match.groups()))
    except ValueError:
        return None


def _parse_offset(text: str | None) -> timezone | None:
    match = _OFFSET.fullmatch(text or "")
    if not match:
        return None
    sign, hours, minutes = match.groups()
    delta = timedelta(hours=int(hours), minutes=int(minutes))
    if delta > timedelta(hours=14):
        return None
    return timezone(-delta if sign == "-" else delta)


def _fraction(text: str | None) -> int:
    return int((text or "0").ljust(6, "0"))


def _combine(
    day: date, hour: str | None, minute: str | None, second: str | None, fraction: str | None, tz: timezone
) -> datetime | None:
    try:
        return datetime(
            day.year,
            day.month,
            day.day,
            int(hour or 0),
            int(minute or 0),
            # DICOM allows a leap second (60); Python does not.
            min(int(second or 0), 59),
            _fraction(fraction),
            tzinfo=tz,
        )
    except ValueError:
        return None


@dataclass(frozen=True)
class _Moment:
    value: datetime
    offset_stated: bool
    time_stated: bool


def _moment(ds: Dataset, codec: list[str], datetime_tag: int | None, date_tag: int, time_tag: int) -> _Moment | None:
    # A timestamp without an explicit offset is interpreted in the instance's Timezone Offset From UTC when
    # present, otherwise labelled UTC: the parser does not know where the image was taken, so the caller (who
    # knows the practice's zone) reads the wall time in that zone when ``offset_stated`` is false.
    file_tz = _parse_offset(_text(ds, _TIMEZONE_OFFSET, codec))
    default_tz = file_tz or UTC
    text = _text(ds, datetime_tag, codec, first_value=True) if datetime_tag is not None else None
    match = _DATETIME.fullmatch(text or "")
    if match:
        year, month, day_, hour, minute, second, fraction, offset = match.groups()
        try:
            day = date(int(year), int(month or 1), int(day_ or 1))
        except ValueError:
            day = None
        tz = _parse_offset(offset) if offset else default_tz
        if day is not None and tz is not None:
            value = _combine(day, hour, minute, second, fraction, tz)
            if value is not None:
                return _Moment(value, bool(offset) or file_tz is not None, hour is not None)
    day = _parse_date(_text(ds, date_tag, codec, first_value=True))
    if day is None:
        return None
    time_text = (_text(ds, time_tag, codec, first_value=True) or "").replace(":", "")
    time_match = _TIME.fullmatch(time_text)
    if not time_match:
        value = _combine(day, None, None, None, None, default_tz)
        return _Moment(value, file_tz is not None, False) if value is not None else None
    hour, minute, second, fraction = time_match.groups()
    value = _combine(day, hour, minute, second, fraction, default_tz)
    return _Moment(value, file_tz is not None, True) if value is not None else None


def _acquisition_moment(ds: Dataset, codec: list[str]) -> _Moment | None:
    """When the image was taken: its acquisition date and time, or else its content (image) date and time."""
    acquired = _moment(ds, codec, _ACQUISITION_DATETIME, _ACQUISITION_DATE, _ACQUISITION_TIME)
    if acquired is not None and acquired.time_stated:
        return acquired
    content = _moment(ds, codec, None, _CONTENT_DATE, _CONTENT_TIME)
    if content is not None and content.time_stated:
        return content
    return acquired or content


def _sequence_items(ds: Dataset, tag: int) -> list[Dataset]:
    elem = _element(ds, tag)
    if elem is None:
        return []
    try:
        # Converting a raw sequence parses its items only; their values stay raw.
        value = ds[tag].value if isinstance(elem, RawDataElement) else elem.value
    except Exception:
        return []
    if not isinstance(value, Sequence):
        return []
    return [item for item in value if isinstance(item, Dataset)]


def _tooth_from_code(item: Dataset, codec: list[str]) -> str | None:
    value = _text(item, _CODE_VALUE, codec)
    scheme = _text(item, _CODING_SCHEME, codec) or ""
    if not value:
        return None
    return universal_from_code(value, scheme)


def _teeth(ds: Dataset, codec: list[str]) -> list[str]:
    items = _sequence_items(ds, _PRIMARY_ANATOMIC_STRUCTURE_SEQUENCE)
    # Some writers nest the structures inside the anatomic region item.
    for region in _sequence_items(ds, _ANATOMIC_REGION_SEQUENCE):
        items.extend(_sequence_items(region, _PRIMARY_ANATOMIC_STRUCTURE_SEQUENCE))
    teeth: list[str] = []
    for item in items:
        tooth = _tooth_from_code(item, codec)
        if tooth is not None and tooth not in teeth:
            teeth.append(tooth)
    return teeth


def _exposure_mas(ds: Dataset) -> float | None:
    mas = _number(ds, _EXPOSURE_MAS)
    if mas is None:
        mas = _number(ds, _EXPOSURE)
    if mas is None:
        uas = _number(ds, _EXPOSURE_UAS)
        mas = uas / 1000 if uas is not None else None
    return mas


def _name_parts(name: str | None) -> tuple[str | None, str | None]:
    # The first group written, usually the alphabetic one; matching looks at every group (name_groups).
    groups = name_groups(name)
    return groups[0] if groups else (None, None)


def _first_or_none(*values: float | None) -> float | None:
    return next((value for value in values if value is not None), None)


def _extract(ds: Dataset, transfer_syntax: str | None) -> DicomInfo:
    codec = _encodings(ds)
    patient_name = _text(ds, _PATIENT_NAME, codec)
    family, given = _name_parts(patient_name)
    regions = _sequence_items(ds, _ANATOMIC_REGION_SEQUENCE)
    meta = getattr(ds, "file_meta", None)
    sop_class = _uid(ds, _SOP_CLASS_UID)
    if sop_class is None and meta is not None:
        sop_class = _uid(meta, 0x00020002)
    sop_instance = _uid(ds, _SOP_INSTANCE_UID)
    if sop_instance is None and meta is not None:
        sop_instance = _uid(meta, 0x00020003)
    moment = _acquisition_moment(ds, codec)
    return DicomInfo(
        modality=_text(ds, _MODALITY, codec, first_value=True),
        sop_class_uid=sop_class,
        transfer_syntax_uid=transfer_syntax,
        study_instance_uid=_uid(ds, _STUDY_INSTANCE_UID),
        series_instance_uid=_uid(ds, _SERIES_INSTANCE_UID),
        sop_instance_uid=sop_instance,
        accession_number=_text(ds, _ACCESSION_NUMBER, codec),
        series_number=_integer(ds, _SERIES_NUMBER),
        instance_number=_integer(ds, _INSTANCE_NUMBER),
        presentation_intent=_text(ds, _PRESENTATION_INTENT, codec, first_value=True),
        acquisition_datetime=moment.value if moment else None,
        acquisition_offset_stated=moment.offset_stated if moment else False,
        acquisition_time_stated=moment.time_stated if moment else False,
        kvp=_number(ds, _KVP),
        exposure_time_ms=_first_or_none(_number(ds, _EXPOSURE_TIME_MS), _number(ds, _EXPOSURE_TIME)),
        tube_current_ma=_first_or_none(_number(ds, _TUBE_CURRENT_MA), _number(ds, _TUBE_CURRENT)),
        exposure_mas=_exposure_mas(ds),
        operators_name=_text(ds, _OPERATORS_NAME, codec),
        laterality=_text(ds, _IMAGE_LATERALITY, codec, first_value=True)
        or _text(ds, _LATERALITY, codec, first_value=True),
        patient_name=patient_name,
        patient_family_name=family,
        patient_given_name=given,
        patient_id=_text(ds, _PATIENT_ID, codec),
        patient_birth_date=_parse_date(_text(ds, _PATIENT_BIRTH_DATE, codec)),
        teeth=_teeth(ds, codec),
        anatomic_region=_text(regions[0], _CODE_MEANING, codec) if regions else None,
        rows=_integer(ds, _ROWS),
        columns=_integer(ds, _COLUMNS),
        samples_per_pixel=_integer(ds, _SAMPLES_PER_PIXEL),
        bits_allocated=_integer(ds, _BITS_ALLOCATED),
        bits_stored=_integer(ds, _BITS_STORED),
        number_of_frames=_integer(ds, _NUMBER_OF_FRAMES),
        photometric=_text(ds, _PHOTOMETRIC, codec, first_value=True),
        window_center=_number(ds, _WINDOW_CENTER),
        window_width=_number(ds, _WINDOW_WIDTH),
        pixel_representation=_integer(ds, _PIXEL_REPRESENTATION),
        planar_configuration=_integer(ds, _PLANAR_CONFIGURATION),
        rescale_slope=_number(ds, _RESCALE_SLOPE),
        rescale_intercept=_number(ds, _RESCALE_INTERCEPT),
    )


# --- pixel data ---------------------------------------------------------------------


def _check_pixels(scanner: _Scanner, layout: _Layout, info: DicomInfo) -> None:
    pixels = layout.pixels
    if pixels is None:
        raise DamagedImage("the DICOM file has no pixel data; upload the image itself, not a report or index")
    if not info.rows or not info.columns:
        raise _refuse("the DICOM file does not state its image dimensions")
    native = layout.transfer_syntax is None or layout.transfer_syntax in _NATIVE_SYNTAXES

    if pixels.length == _UNDEFINED:
        if layout.transfer_syntax in _NATIVE_SYNTAXES:
            raise _refuse("the DICOM pixel data does not match the file's transfer syntax")
        image_fragments, _ = scanner.skip_fragments(pixels.value_offset)
        if image_fragments == 0:
            raise DamagedImage("the DICOM file has no pixel data; upload the image itself, not a report")
        return

    if pixels.value_offset + pixels.length > scanner.size:
        raise _refuse("the DICOM pixel data is truncated")
    if not native:
        raise _refuse("the DICOM pixel data does not match the file's transfer syntax")
    if pixels.length == 0:
        raise DamagedImage("the DICOM file has no pixel data; upload the image itself, not a report")
    samples = info.samples_per_pixel or 1
    if (info.photometric or "").upper() == "YBR_FULL_422" and samples == 3:
        # Two luminance samples share one pair of chrominance samples (PS3.3 C.7.6.3.1.2).
        samples = 2
    frames = max(info.number_of_frames or 1, 1)
    bits = info.bits_allocated or 16
    pixel_count = info.rows * info.columns * samples * frames
    expected = math.ceil(pixel_count / 8) if bits == 1 else pixel_count * math.ceil(bits / 8)
    if pixels.length < expected:
        raise _refuse("the DICOM pixel data is shorter than the image dimensions require")


@dataclass(frozen=True)
class _Source:
    """The bytes of a DICOM file as its dataset is read: the upload itself, or its inflated twin."""

    fp: BinaryIO
    size: int
    deflated: bool


def _inflate(fp: BinaryIO, size: int, scanner: _Scanner, twin: BinaryIO) -> int:
    """Write ``fp`` to ``twin`` as the Explicit VR Little Endian file it encodes; return the twin's size.

    The file meta is copied with its transfer syntax value overwritten in place (same length, NUL padded),
    so its group length stays right; the rest is the raw deflate stream, inflated in bounded steps.
    """
    if scanner.transfer_syntax_value is None:
        raise _refuse("the DICOM file meta information is damaged")
    offset, length = scanner.transfer_syntax_value
    fp.seek(0)
    meta = bytearray(fp.read(scanner.meta_end))
    meta[offset : offset + length] = _EXPLICIT_LE.encode("ascii").ljust(length, b"\x00")
    twin.write(meta)
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    total = len(meta)
    fp.seek(scanner.meta_end)
    remaining = size - scanner.meta_end
    pending = b""
    while True:
        if not pending:
            if remaining <= 0:
                break
            pending = fp.read(min(_INFLATE_CHUNK, remaining))
            if not pending:
                break
            remaining -= len(pending)
        try:
            out = inflater.decompress(pending, _INFLATE_CHUNK)
        except zlib.error:
            raise _refuse("the deflated DICOM data is damaged") from None
        pending = inflater.unconsumed_tail
        total += len(out)
        if total > MAX_INFLATED_BYTES:
            raise _refuse(f"the deflated DICOM file expands to more than {MAX_INFLATED_BYTES // 2**20} MiB")
        twin.write(out)
        if inflater.eof:
            break
    if not inflater.eof:
        raise _refuse("the deflated DICOM data is truncated")
    twin.flush()
    twin.seek(0)
    return total


@contextlib.contextmanager
def pixel_source(fp: BinaryIO, size: int) -> Iterator[tuple[BinaryIO, int]]:
    """The file as its dataset and pixels are read: ``fp`` itself, or for Deflated Explicit VR Little
    Endian an inflated copy in an anonymous temporary file, removed on exit.

    ``DicomInfo.pixel_data`` offsets refer to this stream. Raises DamagedImage or UnsupportedImageType
    like ``read_dicom``.
    """
    with _source(fp, size) as source:
        yield source.fp, source.size


@contextlib.contextmanager
def _source(fp: BinaryIO, size: int) -> Iterator[_Source]:
    scanner = _Scanner(fp, size)
    fp.seek(0)
    head = fp.read(_PREAMBLE + len(_MAGIC))
    if head[_PREAMBLE:] != _MAGIC:
        raise UnsupportedImageType(
            "this is not a DICOM Part 10 file (no 'DICM' marker); "
            "export the image as a DICOM file, JPEG, PNG or TIFF"
        )
    try:
        transfer_syntax = scanner.scan_file_meta()
    except (struct.error, OSError, ValueError):
        raise _refuse(_TRUNCATED) from None
    if transfer_syntax != _DEFLATED_LE:
        fp.seek(0)
        yield _Source(fp, size, deflated=False)
        return
    with tempfile.TemporaryFile(prefix="dicom-inflated-") as twin:
        twin_size = _inflate(fp, size, scanner, twin)
        yield _Source(twin, twin_size, deflated=True)


def read_dicom(fp: BinaryIO, size: int) -> DicomInfo:
    """Read and sanity-check a DICOM Part 10 file held in a seekable binary file.

    Raises DamagedImage for anything malformed, truncated or hostile, and
    UnsupportedImageType for DICOM encodings the service does not accept.
    Memory use does not depend on the size of the file.
    """
    with _source(fp, size) as source:
        info = _read_dicom(source.fp, source.size)
    if source.deflated:
        info.transfer_syntax_uid = _DEFLATED_LE
    return info


def _read_dicom(fp: BinaryIO, size: int) -> DicomInfo:
    scanner = _Scanner(fp, size)
    try:
        layout = scanner.scan()
    except (DamagedImage, UnsupportedImageType):
        raise
    except (struct.error, OSError, ValueError, RecursionError):
        raise _refuse(_TRUNCATED) from None

    fp.seek(0)
    try:
        # pydicom warns about what it tolerates (a VR switching mid-file, odd values): expected of real files.
        ds = quietly(
            pydicom.dcmread,
            fp,
            stop_before_pixels=True,
            force=False,
            defer_size=_DEFER_BYTES,
            specific_tags=list(_WANTED_TAGS),
        )
        stopped_at = fp.tell()
        info = quietly(_extract, ds, layout.transfer_syntax)
    except Exception:
        # Chaining is dropped on purpose: pydicom's messages can quote values
        # such as names and dates, which must not end up in logs.
        raise _refuse("the DICOM file could not be read") from None

    if layout.pixels is not None and stopped_at != layout.pixels.offset:
        # pydicom and the scanner disagree about where the metadata ends: the
        # file is ambiguous, and ambiguity is not something to store.
        raise _refuse("the DICOM file structure is inconsistent")
    _check_pixels(scanner, layout, info)
    pixels = layout.pixels
    if pixels is not None:  # always set once _check_pixels passed; narrows the type
        info.pixel_data = PixelDataLocation(
            value_offset=pixels.value_offset,
            length=None if pixels.length == _UNDEFINED else pixels.length,
            little_endian=layout.little_endian,
            vr=pixels.vr,
        )
    return info
