"""The printable claim summary: what billing staff file or send with an attachment, as PDF and HTML."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from referral.billing.catalogue import label
from referral.documents import pdf
from referral.models import AuditEvent, ClaimExport
from tests.support import samples
from tests.support.api import draft_body, new_referral, signed_case, submit, upload
from tests.support.documents import pdf_text, squeezed, visible
from tests.support.world import PATIENT, Client, Practice, Reader, World

SCRIPT = "<script>alert(1)</script>"
TAX_ID = "98-7654321"
NO_CAPTURE_ONLY = {**PATIENT, "coverage": {**PATIENT["coverage"], "payer_id": "EXAMPLE-PPO-NO-CAPTURE",
                                           "payer_name": "Example PPO", "group_number": "GRP-77"}}


@dataclass
class BilledCase:
    referral_id: str
    reader: Reader
    reader_billing: Client
    capture: dict[str, Any]
    reading: dict[str, Any]


def add_billing_user(world: World, organization_id: str) -> Client:
    created = world.admin.post(f"/api/v1/organizations/{organization_id}/users",
                               {"email": f"billing-{uuid.uuid4().hex[:8]}@coastal.example.com", "role": "billing"})
    assert created.status_code == 201, created.get_json()
    return world.as_token(created.get_json()["token"])


def bill(world: World, riverside: Practice, reader: Reader, reader_billing: Client, **overrides: Any) -> BilledCase:
    referral_id = signed_case(world, riverside, reader, **overrides)
    capture = riverside.billing.get(f"/api/v1/referrals/{referral_id}/claims").get_json()["claims"][0]
    reading = reader_billing.get(f"/api/v1/referrals/{referral_id}/claims").get_json()["claims"][0]
    return BilledCase(referral_id, reader, reader_billing, capture, reading)


@pytest.fixture
def billed(world: World, riverside: Practice) -> BilledCase:
    """A periapical of 19 captured at Riverside and read at Coastal Endodontics, both practices with fees."""
    org_id = world.reader_practice("Coastal Endodontics", phone="916-555-0100", tax_id=TAX_ID,
                                   address={"line1": "200 Capitol Mall", "line2": "Suite 5", "city": "Sacramento",
                                            "state": "CA", "zip": "95814-2001"})
    reader = world.reader(org_id)
    reader_billing = add_billing_user(world, org_id)
    assert riverside.org_admin.put(f"/api/v1/organizations/{riverside.id}/fee-schedule",
                                   {"D0707": 30}).status_code == 200
    assert reader_billing.put(f"/api/v1/organizations/{org_id}/fee-schedule",
                              {"D0391": "55.00", "D9996": 20}).status_code == 200
    return bill(world, riverside, reader, reader_billing)


def pdf_path(claim: dict[str, Any]) -> str:
    return f"/api/v1/claims/{claim['id']}/pdf"


def html_path(claim: dict[str, Any]) -> str:
    return f"/api/v1/claims/{claim['id']}/html"


def contains(text: str, *expected: str) -> None:
    flat = squeezed(visible(text))
    for value in expected:
        assert squeezed(value) in flat, value


def exports(app: Flask) -> list[tuple[str, str, str]]:
    with app.app_context(), app.extensions["referral.sessionmaker"]() as session:
        rows = session.scalars(sa.select(ClaimExport).order_by(ClaimExport.id)).all()
        return [(str(row.claim_id), row.format, str(row.exported_by_user_id)) for row in rows]


def test_the_pdf_lists_every_line_with_its_label_explanation_and_the_total(billed: BilledCase):
    claim = billed.reading

    response = billed.reader_billing.get(pdf_path(claim))

    assert response.status_code == 200
    assert response.data.startswith(b"%PDF")
    text = pdf_text(response.data)
    assert sorted(line["code"] for line in claim["lines"]) == ["D0391", "D9996"]
    for line in claim["lines"]:
        contains(text, line["code"], label(line["code"]), line["explanation"])
    contains(text, "$55.00", "$20.00", "Claim total $75.00", "Tooth #19")
    contains(text, "Status ready, generation 1", claim["id"], billed.referral_id)


def test_the_pdf_names_the_parties_and_masks_the_tax_id(billed: BilledCase):
    claim = billed.reading

    text = pdf_text(billed.reader_billing.get(pdf_path(claim)).data)

    contains(text, "Coastal Endodontics", f"Practice NPI {claim['billing_npi']}", "Tax id (EIN) **-***4321",
             "200 Capitol Mall", "Suite 5", "Sacramento, CA 95814-2001", "916-555-0100")
    contains(text, "Alex Endo, DDS", f"Rendering NPI {claim['rendering_npi']}", "Taxonomy 1223E0200X",
             f"Referring NPI {claim['referring_npi']}", "Alex Rivera, DDS")
    contains(text, "Jane Doe", "1980-01-01", "Example Dental Plan", "Payer id 60054", "Member id W123456789")
    contains(text, "02 (telehealth, patient not at home)", f"Date of service {claim['date_of_service']}",
             "1 (original claim)", "printed")
    assert "7654321" not in squeezed(text)


def test_a_held_claim_shows_its_edits_and_why_it_is_held(world: World, riverside: Practice, billed: BilledCase):
    patient = riverside.staff.post("/api/v1/patients", NO_CAPTURE_ONLY)
    held = bill(world, riverside, billed.reader, billed.reader_billing, patient_id=patient.get_json()["id"]).capture
    assert held["status"] == "hold"

    text = pdf_text(riverside.billing.get(pdf_path(held)).data)

    contains(text, "Status: hold", "D0707", "periapical, capture only", "11 (office)", "Claim total $30.00",
             "Example PPO", "Group number GRP-77")
    for edit in held["edits"]:
        contains(text, edit["severity"], edit["rule"], edit["message"])
    assert "Referring NPI" not in text


def test_the_html_form_is_the_same_summary_as_an_attachment_that_runs_nothing(billed: BilledCase):
    page = billed.reader_billing.get(html_path(billed.reading))

    assert page.status_code == 200
    assert page.headers["Content-Type"] == "text/html; charset=utf-8"
    assert page.headers["Content-Security-Policy"] == "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
    assert page.headers["Content-Disposition"] == f'attachment; filename="claim-{billed.reading["id"]}.html"'
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    assert page.headers["Cache-Control"] == "no-store"
    text = page.get_data(as_text=True)
    contains(text, "Claim total $75.00", *(line["explanation"] for line in billed.reading["lines"]))
    assert billed.capture["id"] not in text, "one practice's page says nothing of the other's claim"


def test_the_pdf_is_an_attachment_named_after_the_claim(billed: BilledCase):
    response = billed.reader_billing.get(pdf_path(billed.reading))

    assert response.headers["Content-Type"] == "application/pdf"
    assert response.headers["Content-Disposition"] == f'attachment; filename="claim-{billed.reading["id"]}.pdf"'
    assert response.headers["Cache-Control"] == "no-store"
    assert int(response.headers["Content-Length"]) == len(response.data)


def test_each_print_is_recorded_as_an_export_and_audited_without_phi(app: Flask, billed: BilledCase,
                                                                    riverside: Practice):
    assert riverside.billing.get(pdf_path(billed.capture)).status_code == 200
    assert riverside.org_admin.get(html_path(billed.capture)).status_code == 200

    with app.app_context(), app.extensions["referral.sessionmaker"]() as session:
        events = session.scalars(sa.select(AuditEvent).where(AuditEvent.action.like("claim.export_%"))
                                 .order_by(AuditEvent.id)).all()
        audited = [(e.action, str(e.actor_user_id), str(e.object_id), str(e.referral_id), e.outcome, e.details)
                   for e in events]
    recorded = exports(app)
    assert [(claim_id, fmt, user) for claim_id, fmt, user in recorded] == [
        (billed.capture["id"], "pdf", riverside.users["billing"]),
        (billed.capture["id"], "html", riverside.users["org_admin"]),
    ]
    assert [row[:5] for row in audited] == [
        ("claim.export_pdf", riverside.users["billing"], billed.capture["id"], billed.referral_id, "success"),
        ("claim.export_html", riverside.users["org_admin"], billed.capture["id"], billed.referral_id, "success"),
    ]
    assert all(set(row[5]) == {"export_id"} for row in audited)


def test_other_practices_get_not_found_and_other_roles_forbidden(app: Flask, world: World, billed: BilledCase,
                                                                 riverside: Practice, hillside: Practice):
    for path in (pdf_path(billed.reading), html_path(billed.reading)):
        for outsider in (riverside.billing, riverside.org_admin, hillside.billing, hillside.staff):
            assert outsider.get(path).status_code == 404, path
        assert billed.reader.client.get(path).status_code == 403
        assert world.admin.get(path).status_code == 404
        assert world.anonymous.get(path).status_code == 401
    for path in (pdf_path(billed.capture), html_path(billed.capture)):
        for clinician in (riverside.staff, riverside.dentist):
            response = clinician.get(path)
            assert response.status_code == 403, path
            assert "billing" in response.get_json()["message"]
    unknown = {"id": "01a20240-0000-7000-8000-000000000000"}
    assert billed.reader_billing.get(pdf_path(unknown)).status_code == 404
    assert billed.reader_billing.get(html_path(unknown)).status_code == 404
    assert billed.reader_billing.get(f"/api/v1/claims/{billed.reading['id']}/docx").status_code == 404
    assert exports(app) == []


def test_hostile_names_are_printed_as_text(world: World, riverside: Practice):
    org_id = world.reader_practice(f"Coastal {SCRIPT} Endodontics")
    reader = world.reader(org_id, last_name=SCRIPT)
    reader_billing = add_billing_user(world, org_id)
    patient = riverside.staff.post("/api/v1/patients", {**PATIENT, "first_name": SCRIPT,
                                                        "coverage": {**PATIENT["coverage"], "payer_name": SCRIPT}})
    assert patient.status_code == 201, patient.get_json()
    consent = {"given_by": "patient", "method": "verbal", "given_at": "2026-01-05T09:00:00Z"}
    referral_id = new_referral(riverside, patient_id=patient.get_json()["id"], reason=SCRIPT, consent=consent)
    image = upload(riverside.staff, riverside, referral_id, samples.dicom_bytes(patient_name=f"Doe^{SCRIPT}"))
    assert image.status_code == 201, image.get_json()
    assert submit(riverside, referral_id).status_code == 200
    assert reader.client.post(f"/api/v1/referrals/{referral_id}/accept").status_code == 200
    report = f"/api/v1/referrals/{referral_id}/report"
    assert reader.client.put(report, draft_body([image.get_json()["id"]])).status_code == 200
    assert reader.client.post(f"{report}/sign").status_code == 200
    claims = [(client, client.get(f"/api/v1/referrals/{referral_id}/claims").get_json()["claims"][0])
              for client in (riverside.billing, reader_billing)]

    for client, claim in claims:
        page = client.get(html_path(claim)).get_data(as_text=True)

        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
        assert "<script" not in page.lower()
    printed = pdf_text(reader_billing.get(pdf_path(claims[1][1])).data)
    assert squeezed(printed).count(squeezed(SCRIPT)) >= 4, "practice, reader, patient and payer as written"


def test_without_weasyprint_the_pdf_is_unavailable_and_nothing_is_recorded(app: Flask, billed: BilledCase,
                                                                          monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(pdf, "_WEASYPRINT", None)

    response = billed.reader_billing.get(pdf_path(billed.reading))

    assert response.status_code == 503
    assert "HTML" in response.get_json()["message"]
    assert exports(app) == []
    assert billed.reader_billing.get(html_path(billed.reading)).status_code == 200
