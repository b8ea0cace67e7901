"""The read API served over real HTTP on the loopback, for the FHIR client library, and a case carried from
referral to signed report and claims."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask

from tests.support import samples
from tests.support.api import draft_body, ready_referral, submit, upload
from tests.support.fhir import SignedCase
from tests.support.live import served
from tests.support.world import Practice, Reader, World


@pytest.fixture
def fhir_base(app: Flask) -> Iterator[str]:
    """The app on a loopback port of its own, one request at a time; the read API's base URL."""
    with served(app, threaded=False, name="fhir-test-server") as url:
        yield f"{url}/fhir/R4"




@pytest.fixture
def reader(world: World) -> Reader:
    return world.reader(world.reader_practice("Coastal Endodontics"))


@pytest.fixture
def signed_case(reader: Reader, riverside: Practice) -> SignedCase:
    """An urgent case of Riverside's patient, with a coded reason, read and signed by the Coastal reader."""
    referral_id = ready_referral(riverside, reason_code="27355003")
    photo = upload(riverside.staff, riverside, referral_id, samples.jpeg_bytes(), filename="photo.jpg",
                   kind="photo_intraoral", teeth="19")
    assert photo.status_code == 201, photo.get_json()
    assert submit(riverside, referral_id).status_code == 200
    assert reader.client.post(f"/api/v1/referrals/{referral_id}/accept").status_code == 200
    images = [i["id"] for i in riverside.staff.get(f"/api/v1/referrals/{referral_id}").get_json()["images"]]
    assert reader.client.put(f"/api/v1/referrals/{referral_id}/report", draft_body(images)).status_code == 200
    signed = reader.client.post(f"/api/v1/referrals/{referral_id}/report/sign")
    assert signed.status_code == 200, signed.get_json()
    claims = riverside.billing.get(f"/api/v1/referrals/{referral_id}/claims").get_json()["claims"]
    assert len(claims) == 1, claims
    return SignedCase(referral_id=referral_id, reader=reader, images=images, report_id=signed.get_json()["id"],
                      claim_id=claims[0]["id"])
