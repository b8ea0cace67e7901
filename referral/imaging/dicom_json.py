"""DICOM JSON (the DICOMweb model of a dataset): attributes keyed by eight hex digits, each a ``vr`` and a
``Value`` list. Used by the DICOMweb routes for search results, metadata and store responses.

Metadata is read from the stored file with pydicom, stopping before the pixel data. Binary values (pixel
data, overlays, embedded documents) are left out rather than inlined: this server hands out no bulk data
URIs, and a viewer fetches the pixels through the instance or its frames.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, time
from typing import Any, BinaryIO

import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError

from referral.imaging.quiet import quietly

JsonDataset = dict[str, dict[str, Any]]

# Value representations whose values are bytes, never text: left out of metadata.
_BINARY_VRS = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "UN", "OB or OW", "US or OW"})


class UnreadableDataset(ValueError):
    """The stored file could not be read as DICOM again (it was when it was accepted)."""


def tag(keyword_or_tag: str) -> str | None:
    """The eight hex digits of a keyword (``StudyDate``) or a tag written as hex (``00080020``); None if neither."""
    text = keyword_or_tag.strip()
    if len(text) == 8 and all(ch in "0123456789abcdefABCDEF" for ch in text):
        return text.upper()
    number = pydicom.datadict.tag_for_keyword(text)
    return None if number is None else f"{number:08X}"


def keyword(tag_hex: str) -> str:
    return str(pydicom.datadict.keyword_for_tag(int(tag_hex, 16)) or "")


def attribute(vr: str, *values: Any) -> dict[str, Any]:
    """One attribute; no values (or only None) gives the attribute present and empty."""
    kept = [v for v in values if v is not None and v != ""]
    return {"vr": vr, "Value": kept} if kept else {"vr": vr}


def person_name(family: str, given: str) -> dict[str, Any]:
    value = "^".join(part for part in (family.strip(), given.strip()) if part) if given.strip() else family.strip()
    return {"vr": "PN", "Value": [{"Alphabetic": value}]} if value else {"vr": "PN"}


def da(value: date | None) -> dict[str, Any]:
    return attribute("DA", value.strftime("%Y%m%d") if value is not None else None)


def tm(value: time | datetime | None) -> dict[str, Any]:
    return attribute("TM", value.strftime("%H%M%S") if value is not None else None)


def sequence(items: Iterable[JsonDataset]) -> dict[str, Any]:
    return {"vr": "SQ", "Value": list(items)}


def _strip_binary(ds: Dataset) -> None:
    for element in list(ds):
        if element.VR == "SQ":
            for item in element.value:
                _strip_binary(item)
        elif element.VR in _BINARY_VRS:
            del ds[element.tag]


def _read_header(stream: BinaryIO) -> Dataset:
    return pydicom.dcmread(stream, stop_before_pixels=True, force=True)


def metadata(stream: BinaryIO) -> JsonDataset:
    """The DICOM JSON of a stored Part 10 file, without its pixel data or other binary values."""
    try:
        ds = quietly(_read_header, stream)
        _strip_binary(ds)
        # File meta (group 0002) describes the file, not the instance, and is not part of the metadata.
        result: JsonDataset = quietly(ds.to_json_dict, bulk_data_threshold=1 << 30)
    except (InvalidDicomError, ValueError, TypeError, KeyError, OverflowError, EOFError) as exc:
        raise UnreadableDataset(type(exc).__name__) from None
    return result
