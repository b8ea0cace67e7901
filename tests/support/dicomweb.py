"""DICOMweb as a viewer or imaging program drives it: the ``dicomweb-client`` library over real HTTP, with the
API's bearer token on its requests session, and DICOM files that carry their own identity."""

from __future__ import annotations

import io
from typing import Any

import pydicom
import requests
from dicomweb_client import DICOMwebClient
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from tests.support import samples
from tests.support.world import Client

STUDY_DATE = "20260101"


def client_for(base_url: str, who: Client) -> DICOMwebClient:
    """A DICOMweb client whose every request carries ``who``'s API token."""
    session = requests.Session()
    if who.token:
        session.headers["Authorization"] = f"Bearer {who.token}"
    return DICOMwebClient(url=base_url, session=session)


def raw(base_url: str, path: str, who: Client | None = None, method: str = "GET", **kwargs: Any) -> requests.Response:
    headers = dict(kwargs.pop("headers", None) or {})
    if who is not None and who.token:
        headers["Authorization"] = f"Bearer {who.token}"
    return requests.request(method, base_url + path, headers=headers, timeout=30, **kwargs)


def radiograph(*, study: str, series: str | None = None, sop: str | None = None, accession: str | None = None,
               **options: Any) -> tuple[bytes, str, str, str]:
    """An intra-oral radiograph of the world's patient with the given identity; (bytes, study, series, sop)."""
    series = series or generate_uid()
    sop = sop or generate_uid()

    def identity(ds: Dataset) -> None:
        ds.StudyInstanceUID = study
        ds.SeriesInstanceUID = series
        ds.SOPInstanceUID = sop
        ds.file_meta.MediaStorageSOPInstanceUID = sop
        if accession is not None:
            ds.AccessionNumber = accession

    return samples.dicom_bytes(mutate=identity, **options), study, series, sop


def dataset(data: bytes) -> Dataset:
    return pydicom.dcmread(io.BytesIO(data))


def values(result: dict[str, Any], tag: str) -> list[Any]:
    return list(result.get(tag, {}).get("Value", []))
