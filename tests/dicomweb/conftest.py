"""The app served over real HTTP on the loopback, for the DICOMweb client library, and a case with radiographs."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from flask import Flask
from pydicom.uid import generate_uid

from tests.support import samples
from tests.support.api import new_referral, upload
from tests.support.dicomweb import STUDY_DATE, radiograph
from tests.support.live import served
from tests.support.world import Practice, Reader, World


@pytest.fixture
def dicomweb_url(app: Flask) -> Iterator[str]:
    """The app on a loopback port of its own, one request at a time; the DICOMweb base URL."""
    with served(app, threaded=False, name="dicomweb-test-server") as url:
        yield f"{url}/dicomweb"


@pytest.fixture
def reader(world: World) -> Reader:
    return world.reader(world.reader_practice("Coastal Endodontics"))


@dataclass
class Case:
    referral_id: str
    study: str
    series: str
    sops: list[str]
    files: list[bytes]
    accession: str


@pytest.fixture
def case(riverside: Practice) -> Case:
    """A draft of Riverside with two radiographs of one study and series, and a photo (not DICOM)."""
    consent = {"given_by": "patient", "method": "verbal", "given_at": "2026-01-05T09:00:00Z"}
    referral_id = new_referral(riverside, teeth=["19"], consent=consent)
    study, series = generate_uid(), generate_uid()
    files, sops = [], []
    for minute in ("00", "05"):
        data, _, _, sop = radiograph(study=study, series=series, accession="RIV-0001",
                                     acquisition=f"{STUDY_DATE}12{minute}00")
        response = upload(riverside.staff, riverside, referral_id, data, teeth="19")
        assert response.status_code == 201, response.get_json()
        files.append(data)
        sops.append(sop)
    photo = upload(riverside.staff, riverside, referral_id, samples.jpeg_bytes(), filename="photo.jpg",
                   kind="photo_intraoral", teeth="19")
    assert photo.status_code == 201, photo.get_json()
    return Case(referral_id=referral_id, study=study, series=series, sops=sops, files=files, accession="RIV-0001")
