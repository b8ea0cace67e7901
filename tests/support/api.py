"""Cases built over the HTTP API: referrals, uploads, submitting, reports, signed cases, and what is stored."""

from __future__ import annotations

import io
import json
import uuid
from typing import Any

import sqlalchemy as sa
from flask import Flask

from referral.models import Image
from tests.support import samples
from tests.support.world import Client, Practice, Reader, World, referral_body

CAPTURED_AT = "2026-01-05T10:30:00+00:00"
# The smallest PDF the consent-form upload accepts.
PDF = b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n"
# One image's findings in a report draft.
FINDING = {"crown": "Deep distal caries", "roots": "Two roots, curved mesial",
           "pdl_space": "Widened at the mesial apex", "lamina_dura": "Lost at the mesial apex",
           "periapical_area": "Radiolucency about 4 mm at the mesial root", "bone_levels": "Within normal limits",
           "other": None, "diagnostic_quality": "adequate"}


def new_referral(practice: Practice, **overrides: Any) -> str:
    response = practice.staff.post("/api/v1/referrals", referral_body(practice, **overrides))
    assert response.status_code == 201, response.get_json()
    return str(response.get_json()["id"])


def upload(client: Client, practice: Practice, referral_id: str, data: bytes, filename: str = "image.dcm",
           headers: dict[str, str] | None = None, **fields: Any) -> Any:
    form: dict[str, Any] = {
        "kind": "periapical",
        "teeth": "19",
        "reason": "Pain to cold, lower left",
        "captured_at": CAPTURED_AT,
        "captured_by_provider_id": practice.hygienist_provider_id,
    }
    form.update(fields)
    form = {key: value for key, value in form.items() if value is not None}
    form["file"] = (io.BytesIO(data), filename)
    return client.post(f"/api/v1/referrals/{referral_id}/images", data=form, content_type="multipart/form-data",
                       headers=headers)


def ready_referral(practice: Practice, teeth: tuple[str, ...] = ("19",), **overrides: Any) -> str:
    """A draft with consent and a periapical of every named tooth: ready to submit."""
    consent = {"given_by": "patient", "method": "verbal", "given_at": "2026-01-05T09:00:00Z"}
    referral_id = new_referral(practice, teeth=list(teeth), consent=consent, **overrides)
    for tooth in teeth:
        response = upload(practice.staff, practice, referral_id, samples.dicom_bytes(teeth=()), teeth=tooth)
        assert response.status_code == 201, response.get_json()
    return referral_id


def submit(practice: Practice, referral_id: str) -> Any:
    return practice.staff.post(f"/api/v1/referrals/{referral_id}/submit")


def put_form(client: Client, referral_id: str, data: bytes, filename: str = "consent.pdf") -> Any:
    """Upload a scanned consent form for a referral."""
    return client.client.put(f"/api/v1/referrals/{referral_id}/consent/form",
                             data={"file": (io.BytesIO(data), filename)}, content_type="multipart/form-data",
                             headers={"Authorization": f"Bearer {client.token}"})


def draft_body(images: list[str], **overrides: Any) -> dict[str, Any]:
    """A report draft with FINDING for each of ``images``."""
    body = {"findings": [{"image_id": image_id, **FINDING} for image_id in images],
            "impression": "Symptomatic apical periodontitis, tooth 19",
            "recommendation": "Root canal treatment of tooth 19", "evaluation_performed": False}
    body.update(overrides)
    return body


def signed_case(world: World, practice: Practice, reader: Reader, **referral_overrides: Any) -> str:
    """A referral of ``practice`` routed to ``reader``, accepted, reported on and signed."""
    referral_id = ready_referral(practice, **referral_overrides)
    assert submit(practice, referral_id).get_json()["assigned_provider_id"] == reader.provider_id
    assert reader.client.post(f"/api/v1/referrals/{referral_id}/accept").status_code == 200
    images = [i["id"] for i in practice.staff.get(f"/api/v1/referrals/{referral_id}").get_json()["images"]]
    assert reader.client.put(f"/api/v1/referrals/{referral_id}/report", draft_body(images)).status_code == 200
    assert reader.client.post(f"/api/v1/referrals/{referral_id}/report/sign").status_code == 200
    return referral_id


def delete_patient(client: Client, patient_id: str) -> Any:
    return client.client.delete(f"/api/v1/patients/{patient_id}",
                                headers={"Authorization": f"Bearer {client.token}"})


def run_retention(app: Flask, *options: str) -> tuple[int, dict[str, Any]]:
    """``flask retention apply`` with ``options``: its exit status and the JSON it printed."""
    result = app.test_cli_runner().invoke(args=["retention", "apply", *options])
    return result.exit_code, json.loads(result.stdout)


def images_of(app: Flask, referral_id: str) -> list[Image]:
    """The image rows of a referral, deleted ones included, in id order."""
    with app.app_context():
        factory = app.extensions["referral.sessionmaker"]
        with factory() as session:
            return list(session.scalars(sa.select(Image).where(Image.referral_id == uuid.UUID(referral_id))
                                        .order_by(Image.id)))


def stored_state(app: Flask) -> tuple[int, list[str]]:
    """How many image rows exist and which image objects are in the store."""
    with app.app_context():
        factory = app.extensions["referral.sessionmaker"]
        with factory() as session:
            rows = session.scalar(sa.select(sa.func.count()).select_from(Image)) or 0
    keys = list(app.extensions["referral.storage"].keys("images/"))
    return rows, keys


def assert_nothing_stored(app: Flask) -> None:
    rows, keys = stored_state(app)
    assert rows == 0, f"{rows} image rows were left behind"
    assert keys == [], f"objects were left behind: {keys}"
