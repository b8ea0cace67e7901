"""A claim's attachment package: one PDF of the case's documentation under a stored control number, which the
claim's 837D names in its PWK segment."""

from __future__ import annotations

import io
import re
import uuid

import pytest
import sqlalchemy as sa
from flask import Flask
from pypdf import PdfReader

from referral.billing.x12_validator import validate_837d
from referral.models import AuditEvent, Claim, ClaimAttachment
from tests.support.claim_cases import count_rows, endodontics_practice, reading_claim
from tests.support.documents import pdf_text
from tests.support.world import Practice, World

TABLES = ("claim_attachments", "claim_exports")


@pytest.fixture
def endo(world: World):
    return endodontics_practice(world)


def _stored_numbers(app: Flask, claim_id: str) -> list[str]:
    with app.app_context(), app.extensions["referral.sessionmaker"]() as session:
        return list(session.scalars(sa.select(ClaimAttachment.control_number)
                                    .where(ClaimAttachment.claim_id == uuid.UUID(claim_id))
                                    .order_by(ClaimAttachment.revision)))


def _pwk(text: str) -> list[list[str]]:
    return [segment.split("*") for segment in text.split("~") if segment.strip().startswith("PWK*")]


def test_billing_staff_get_the_package_with_its_control_number_on_the_first_page(
        app: Flask, world: World, riverside: Practice, endo):
    reader, coastal = endo
    claim = reading_claim(world, riverside, reader, coastal)

    response = coastal.billing.get(f"/api/v1/claims/{claim['id']}/attachments")

    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/pdf"
    assert response.headers["Cache-Control"] == "no-store"
    control = response.headers["Attachment-Control-Number"]
    assert _stored_numbers(app, claim["id"]) == [control]
    assert re.fullmatch(r"AT[0-9A-F]{16}\d{2}", control)
    pages = PdfReader(io.BytesIO(response.data)).pages
    first = pages[0].extract_text()
    assert control in first
    assert "Claim attachment package" in first
    text = pdf_text(response.data)
    assert "Capture note" in text or "capture note" in text.lower()
    assert "Radiographic interpretation report" in text
    assert "Billed images" in text
    # each billed image is labelled with the patient, the day it was taken and its tooth
    labels = text[text.index("Billed images"):]
    assert "Patient: Jane Doe, born 1980-01-01" in labels
    assert "Taken: 2026-01-05" in labels
    assert "Tooth #19" in labels
    assert "line 1, D0391" in labels
    # the case's pictures travel on the image pages
    assert sum(len(page.images) for page in pages) >= 1


def test_the_singular_address_serves_the_same_package_and_keeps_the_number(app: Flask, world: World,
                                                                            riverside: Practice, endo):
    reader, coastal = endo
    claim = reading_claim(world, riverside, reader, coastal)

    first = coastal.billing.get(f"/api/v1/claims/{claim['id']}/attachments")
    second = coastal.billing.get(f"/api/v1/claims/{claim['id']}/attachment")

    assert second.status_code == 200
    assert second.headers["Content-Type"] == "application/pdf"
    assert second.headers["Attachment-Control-Number"] == first.headers["Attachment-Control-Number"]
    assert len(_stored_numbers(app, claim["id"])) == 1


def test_the_837d_pwk_names_the_packages_control_number(app: Flask, world: World, riverside: Practice, endo):
    reader, coastal = endo
    claim = reading_claim(world, riverside, reader, coastal)

    x12 = coastal.billing.get(f"/api/v1/claims/{claim['id']}/x12")
    package = coastal.billing.get(f"/api/v1/claims/{claim['id']}/attachments")

    assert x12.status_code == 200
    text = x12.get_data(as_text=True)
    assert validate_837d(text) == []
    control = package.headers["Attachment-Control-Number"]
    # D0391 wants the diagnostic report under the default payer profile, sent electronically
    assert _pwk(text) == [["PWK", "DG", "EL", "", "", "AC", control]]
    assert control in pdf_text(package.data)
    assert _stored_numbers(app, claim["id"]) == [control]


def test_a_regenerated_claim_gets_a_new_package_number(app: Flask, world: World, riverside: Practice, endo):
    reader, coastal = endo
    claim = reading_claim(world, riverside, reader, coastal)
    before = coastal.billing.get(f"/api/v1/claims/{claim['id']}/attachments").headers["Attachment-Control-Number"]
    with app.app_context(), app.extensions["referral.sessionmaker"]() as session:
        row = session.get(Claim, uuid.UUID(claim["id"]))
        assert row is not None
        row.generation += 1
        session.commit()

    after = coastal.billing.get(f"/api/v1/claims/{claim['id']}/attachments").headers["Attachment-Control-Number"]
    x12 = coastal.billing.get(f"/api/v1/claims/{claim['id']}/x12").get_data(as_text=True)

    assert after != before
    assert _stored_numbers(app, claim["id"]) == [before, after]
    assert _pwk(x12)[0][-1] == after


def test_the_package_is_audited_as_an_export(app: Flask, world: World, riverside: Practice, endo):
    reader, coastal = endo
    claim = reading_claim(world, riverside, reader, coastal)

    assert coastal.billing.get(f"/api/v1/claims/{claim['id']}/attachments").status_code == 200

    with app.app_context(), app.extensions["referral.sessionmaker"]() as session:
        rows = session.scalars(sa.select(AuditEvent).where(AuditEvent.action == "claim.export_attachment")).all()
    assert len(rows) == 1
    assert str(rows[0].object_id) == claim["id"]
    assert str(rows[0].organization_id) == coastal.id


def test_outsiders_get_404_and_nothing_is_stored(app: Flask, world: World, riverside: Practice,
                                                  hillside: Practice, endo):
    reader, coastal = endo
    claim = reading_claim(world, riverside, reader, coastal)
    before = count_rows(app, *TABLES)

    outsider = hillside.billing.get(f"/api/v1/claims/{claim['id']}/attachments")
    other_side = riverside.billing.get(f"/api/v1/claims/{claim['id']}/attachment")
    missing = coastal.billing.get(f"/api/v1/claims/{uuid.uuid4()}/attachments")

    assert outsider.status_code == 404
    assert other_side.status_code == 404
    assert missing.status_code == 404
    assert "Claim not found" in outsider.get_json()["message"]
    assert count_rows(app, *TABLES) == before
    with app.app_context(), app.extensions["referral.sessionmaker"]() as session:
        denied = session.scalars(sa.select(AuditEvent).where(AuditEvent.action == "claim.access")).all()
    # Each refusal is recorded, the unknown id too: the trail does not tell which ids exist.
    assert len(denied) == 3


def test_members_who_do_not_bill_are_refused_and_nothing_is_stored(app: Flask, world: World, riverside: Practice,
                                                                   endo):
    reader, coastal = endo
    claim = reading_claim(world, riverside, reader, coastal)
    before = count_rows(app, *TABLES)

    as_reader = reader.client.get(f"/api/v1/claims/{claim['id']}/attachments")
    anonymous = world.anonymous.get(f"/api/v1/claims/{claim['id']}/attachments")

    assert as_reader.status_code == 403
    assert anonymous.status_code == 401
    assert count_rows(app, *TABLES) == before


def test_a_claim_whose_patient_was_deleted_has_no_package(app: Flask, world: World, riverside: Practice, endo):
    reader, coastal = endo
    claim = reading_claim(world, riverside, reader, coastal)
    with app.app_context(), app.extensions["referral.sessionmaker"]() as session:
        from referral.models import Patient, Referral

        referral = session.get(Referral, uuid.UUID(claim["referral_id"]))
        assert referral is not None
        patient = session.get(Patient, referral.patient_id)
        assert patient is not None
        patient.deleted_at = patient.created_at
        session.commit()
    before = count_rows(app, *TABLES)

    response = coastal.billing.get(f"/api/v1/claims/{claim['id']}/attachments")

    assert response.status_code == 409
    assert "deleted" in response.get_json()["message"]
    assert count_rows(app, *TABLES) == before


def test_a_refused_837d_keeps_no_package_number(app: Flask, world: World, riverside: Practice, endo):
    reader, coastal = endo
    claim = reading_claim(world, riverside, reader, coastal)
    capture = riverside.billing.get(f"/api/v1/referrals/{claim['referral_id']}/claims").get_json()["claims"][0]
    before = count_rows(app, *TABLES)

    # the patient's address is taken off, so the capturing practice's 837D cannot be produced
    assert riverside.staff.patch(f"/api/v1/patients/{riverside.patient_id}", {"address": None}).status_code == 200
    before = count_rows(app, *TABLES)
    refused = riverside.billing.get(f"/api/v1/claims/{capture['id']}/x12")

    assert refused.status_code == 409
    assert count_rows(app, *TABLES) == before
    package = riverside.billing.get(f"/api/v1/claims/{capture['id']}/attachments")
    assert package.status_code == 200
    # the capturing office's package labels its own billed image for the capture-only line
    labels = pdf_text(package.data)
    assert "line 1, D0707" in labels[labels.index("Billed images"):]
