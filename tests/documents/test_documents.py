"""The capture note and the interpretation report, as HTML and PDF, built from a real case over HTTP."""

from __future__ import annotations

import io
import sys
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from PIL import ImageFile

from referral.documents import pdf, to_pdf
from referral.documents.pdf import RefusedURL, data_only_fetcher
from referral.documents.render import MAX_PREVIEW_BYTES, preview_data_uri
from referral.errors import ServiceUnavailable
from referral.models import AuditEvent, Image, Provider
from storage import Storage
from tests.support import samples
from tests.support.api import FINDING, draft_body, new_referral, ready_referral, submit, upload
from tests.support.documents import pdf_text, squeezed, visible
from tests.support.world import PATIENT, Practice, Reader, World

CAPTURE_ONLY = "Image capture only was performed at this office"
DID_NOT_CAPTURE = "interpreted these images remotely and did not capture them"
ADDENDUM = "Tooth 18 also shows a widened PDL space."
SCRIPT = "<script>alert(1)</script>"
DOCUMENTS = ("capture-note.html", "capture-note.pdf", "report.html", "report.pdf")


@dataclass
class SignedCase:
    referral_id: str
    reader: Reader
    images: list[dict[str, Any]]
    report: dict[str, Any]
    addendum: dict[str, Any]

    def path(self, name: str) -> str:
        return f"/api/v1/referrals/{self.referral_id}/documents/{name}"


@pytest.fixture
def signed_case(world: World, riverside: Practice) -> SignedCase:
    """A periapical of 19, its retake and a photo of 18, read by an endodontist, signed with one addendum."""
    reader = world.reader(world.reader_practice("Coastal Endodontics"))
    referral_id = ready_referral(riverside)
    photo = upload(riverside.staff, riverside, referral_id, samples.jpeg_bytes(), filename="photo.jpg",
                   kind="photo_intraoral", teeth="18", reason="Swelling buccal to tooth 18",
                   captured_at="2026-01-05T10:45:00+00:00",
                   captured_by_provider_id=riverside.dentist_provider_id)
    assert photo.status_code == 201, photo.get_json()
    assert submit(riverside, referral_id).status_code == 200
    assert reader.client.post(f"/api/v1/referrals/{referral_id}/accept").status_code == 200
    first = riverside.staff.get(f"/api/v1/referrals/{referral_id}").get_json()["images"][0]["id"]
    asked = reader.client.post(f"/api/v1/referrals/{referral_id}/retake-requests",
                               {"image_ids": [first], "reason": "Apex cut off"})
    assert asked.status_code == 201, asked.get_json()
    retake = upload(riverside.staff, riverside, referral_id, samples.dicom_bytes(teeth=()), teeth="19",
                    retake_of=first, retake_reason="Apex cut off", reason="Retake: apex of 19 not shown",
                    captured_at="2026-01-05T11:00:00+00:00")
    assert retake.status_code == 201, retake.get_json()
    assert submit(riverside, referral_id).get_json()["status"] == "accepted"
    images = riverside.staff.get(f"/api/v1/referrals/{referral_id}").get_json()["images"]
    report_path = f"/api/v1/referrals/{referral_id}/report"
    assert reader.client.put(report_path, draft_body([i["id"] for i in images],
                                                     evaluation_performed=True)).status_code == 200
    signed = reader.client.post(f"{report_path}/sign")
    assert signed.status_code == 200, signed.get_json()
    addendum = reader.client.post(f"{report_path}/addenda", {"text": ADDENDUM})
    assert addendum.status_code == 201
    return SignedCase(referral_id, reader, images, signed.get_json(), addendum.get_json())


def document_text(client: Any, path: str) -> str:
    response = client.get(path)
    assert response.status_code == 200, response.get_json()
    if path.endswith(".pdf"):
        return pdf_text(response.data)
    return response.get_data(as_text=True)


def _contains(text: str, *expected: str) -> None:
    flat = squeezed(visible(text))
    for value in expected:
        assert squeezed(value) in flat, value


def display_time(iso: str) -> str:
    return datetime.fromisoformat(iso).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def reader_npi(app: Flask, case: SignedCase) -> str:
    with app.app_context(), app.extensions["referral.sessionmaker"]() as session:
        return session.get(Provider, uuid.UUID(case.reader.provider_id)).npi


def image_rows(app: Flask, referral_id: str) -> list[Image]:
    with app.app_context(), app.extensions["referral.sessionmaker"]() as session:
        rows = session.scalars(sa.select(Image).where(Image.referral_id == uuid.UUID(referral_id))).all()
        session.expunge_all()
        return list(rows)


def test_the_capture_note_documents_each_image_for_a_capture_only_claim(signed_case: SignedCase,
                                                                        riverside: Practice):
    original, photo, retake = sorted(signed_case.images, key=lambda i: i["captured_at"])
    for name in ("capture-note.html", "capture-note.pdf"):
        text = document_text(riverside.staff, signed_case.path(name))

        _contains(text, "Riverside Family Dental", "100 Main St", "Sacramento, CA 95814", riverside.npi,
                  "Jane Doe", "1980-01-01", signed_case.referral_id,
                  "Lingering pain to cold on the lower left first molar")
        _contains(text, "2026-01-05 10:30 UTC", "Sam Lee, RDH", "Tooth #19", "Pain to cold, lower left",
                  "70 kVp, 7 mA, 120 ms", "Operator recorded in the file: Ann Smith", original["sha256"])
        _contains(text, "2026-01-05 10:45 UTC", "Alex Rivera, DDS", "Tooth #18", "Swelling buccal to tooth 18",
                  "Intraoral photograph", photo["sha256"])
        _contains(text, "2026-01-05 11:00 UTC", "Retake: apex of 19 not shown",
                  f"Retake of image 1 ({original['id']}); reason: Apex cut off", retake["sha256"])
        _contains(text, CAPTURE_ONLY, "The images were not interpreted at this office")
        _contains(text, "Alex Endo, DDS", "Coastal Endodontics")
        _contains(text, "Given by patient", "Method verbal", "2026-01-05 09:00 UTC",
                  "Scanned consent form on file no")
    assert "No consent recorded" not in document_text(riverside.staff, signed_case.path("capture-note.html"))


def test_the_capture_note_names_the_readers_npi_and_when_the_case_was_sent(app: Flask, signed_case: SignedCase,
                                                                           riverside: Practice):
    npi = reader_npi(app, signed_case)
    detail = riverside.staff.get(f"/api/v1/referrals/{signed_case.referral_id}").get_json()
    routed = next(e for e in detail["events"] if e["action"] == "submit" and e["to_status"] == "routed")
    sent = datetime.fromisoformat(routed["at"]).astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")

    text = document_text(riverside.staff, signed_case.path("capture-note.html"))

    _contains(text, f"Provider NPI {npi}", f"Sent {sent}")


def test_a_case_without_consent_says_so_and_is_not_yet_sent(world: World):
    relaxed = world.practice("Relaxed Dental")
    referral_id = new_referral(relaxed)
    upload(relaxed.staff, relaxed, referral_id, samples.dicom_bytes())

    text = document_text(relaxed.staff, f"/api/v1/referrals/{referral_id}/documents/capture-note.html")

    _contains(text, "No consent recorded.", "Not yet sent to an interpreting provider", CAPTURE_ONLY)


def test_the_report_carries_the_findings_signature_and_addenda(app: Flask, signed_case: SignedCase,
                                                               riverside: Practice):
    report, addendum = signed_case.report, signed_case.addendum
    for name in ("report.html", "report.pdf"):
        for client in (riverside.dentist, signed_case.reader.client):
            text = document_text(client, signed_case.path(name))

            _contains(text, "Jane Doe", "1980-01-01", "Riverside Family Dental", "Alex Rivera, DDS")
            _contains(text, *(value for value in FINDING.values() if value and value != "adequate"))
            _contains(text, "Diagnostic quality", "Symptomatic apical periodontitis, tooth 19",
                      "Root canal treatment of tooth 19", "Evaluation of the patient performed by the interpreting "
                      "provider: Yes")
            _contains(text, "Alex Endo, DDS", "Coastal Endodontics",
                      f"Electronically signed by Alex Endo, DDS, NPI {reader_npi(app, signed_case)}, "
                      f"on {display_time(report['signed_at'])}",
                      report["content_sha256"], DID_NOT_CAPTURE)
            _contains(text, ADDENDUM, display_time(addendum["signed_at"]), addendum["content_sha256"])
            for image in signed_case.images:
                _contains(text, image["id"])


def test_the_report_shows_each_image_preview_or_says_there_is_none(app: Flask, signed_case: SignedCase,
                                                                   riverside: Practice):
    rows = image_rows(app, signed_case.referral_id)
    with_preview = [row for row in rows if getattr(row, "preview_key", None)]

    text = document_text(riverside.dentist, signed_case.path("report.html"))

    assert text.count('src="data:image/jpeg;base64,') == len(with_preview)
    assert text.count("No preview available.") == len(rows) - len(with_preview)
    assert "http://" not in text
    assert "https://" not in text


def test_billing_reads_both_documents_for_claims_but_sees_no_pictures(signed_case: SignedCase,
                                                                       riverside: Practice):
    for name in DOCUMENTS:
        assert riverside.billing.get(signed_case.path(name)).status_code == 200, name

    text = document_text(riverside.billing, signed_case.path("report.html"))

    assert "data:image" not in text
    assert text.count("Preview not included for your role.") == len(signed_case.images)


def test_a_stored_preview_is_embedded_inline_and_anything_else_is_left_out(store: Storage):
    jpeg = samples.jpeg_bytes()
    store.put("previews/a/b/good", io.BytesIO(jpeg), content_type="image/jpeg", size=len(jpeg))
    png = samples.png_bytes()
    store.put("previews/a/b/png", io.BytesIO(png), content_type="image/jpeg", size=len(png))
    huge = b"\xff\xd8\xff" + bytes(MAX_PREVIEW_BYTES)
    store.put("previews/a/b/huge", io.BytesIO(huge), content_type="image/jpeg", size=len(huge))

    embedded = preview_data_uri(store, SimpleNamespace(preview_key="previews/a/b/good"))

    assert embedded is not None
    assert embedded.startswith("data:image/jpeg;base64,/9j/")
    for image in (SimpleNamespace(), SimpleNamespace(preview_key=None), SimpleNamespace(preview_key="previews/none"),
                  SimpleNamespace(preview_key="previews/a/b/png"), SimpleNamespace(preview_key="previews/a/b/huge")):
        assert preview_data_uri(store, image) is None


def test_hostile_text_from_people_and_dicom_files_is_printed_as_text(world: World, riverside: Practice):
    reader = world.reader(world.reader_practice("Coastal Endodontics"))
    patient = riverside.staff.post("/api/v1/patients", {**PATIENT, "first_name": SCRIPT})
    assert patient.status_code == 201, patient.get_json()
    referral_id = new_referral(riverside, patient_id=patient.get_json()["id"], reason=SCRIPT,
                               consent={"given_by": "patient", "method": "verbal",
                                        "given_at": "2026-01-05T09:00:00Z"})
    named = upload(riverside.staff, riverside, referral_id, samples.dicom_with_script_in_name(), reason=SCRIPT)
    operated = upload(riverside.staff, riverside, referral_id,
                      samples.dicom_bytes(patient_name=f"Doe^{SCRIPT}", operator=SCRIPT, teeth=("18",)),
                      teeth="18", reason="Tooth 18")
    assert named.status_code == 201, named.get_json()
    assert operated.status_code == 201, operated.get_json()
    submit(riverside, referral_id)
    reader.client.post(f"/api/v1/referrals/{referral_id}/accept")
    image_ids = [named.get_json()["id"], operated.get_json()["id"]]
    body = draft_body(image_ids, impression=SCRIPT, recommendation=SCRIPT)
    body["findings"][0]["other"] = SCRIPT
    reader.client.put(f"/api/v1/referrals/{referral_id}/report", body)
    assert reader.client.post(f"/api/v1/referrals/{referral_id}/report/sign").status_code == 200
    reader.client.post(f"/api/v1/referrals/{referral_id}/report/addenda", {"text": SCRIPT})

    for name in ("capture-note.html", "report.html"):
        text = document_text(riverside.staff, f"/api/v1/referrals/{referral_id}/documents/{name}")

        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
        assert "<script" not in text.lower()
    note = document_text(riverside.staff, f"/api/v1/referrals/{referral_id}/documents/capture-note.html")
    assert "Operator recorded in the file: &lt;script&gt;" in note
    printed = pdf_text(riverside.staff.get(f"/api/v1/referrals/{referral_id}/documents/report.pdf").data)
    assert squeezed(SCRIPT) in squeezed(printed)


def test_the_report_is_not_found_until_it_is_signed(world: World, riverside: Practice):
    reader = world.reader(world.reader_practice("Coastal Endodontics"))
    referral_id = ready_referral(riverside)
    paths = [f"/api/v1/referrals/{referral_id}/documents/{name}" for name in ("report.html", "report.pdf")]
    before_submit = [riverside.staff.get(path) for path in paths]
    submit(riverside, referral_id)
    reader.client.post(f"/api/v1/referrals/{referral_id}/accept")
    images = [i["id"] for i in riverside.staff.get(f"/api/v1/referrals/{referral_id}").get_json()["images"]]
    reader.client.put(f"/api/v1/referrals/{referral_id}/report", draft_body(images))
    drafted = [client.get(path) for path in paths for client in (riverside.staff, reader.client)]

    for response in before_submit + drafted:
        assert response.status_code == 404
        assert response.get_json()["message"] == "No signed report"
    assert riverside.staff.get(f"/api/v1/referrals/{referral_id}/documents/capture-note.pdf").status_code == 200


def test_other_practices_and_readers_not_assigned_get_not_found(signed_case: SignedCase, hillside: Practice,
                                                                world: World):
    colleague = world.reader(signed_case.reader.organization_id, last_name="Colleague")
    for outsider in (hillside.staff, hillside.dentist, hillside.billing, hillside.org_admin, colleague.client):
        for name in DOCUMENTS:
            assert outsider.get(signed_case.path(name)).status_code == 404, name
    assert world.anonymous.get(signed_case.path("report.pdf")).status_code == 401


def test_every_document_read_is_audited(app: Flask, signed_case: SignedCase, riverside: Practice,
                                        hillside: Practice):
    readers = (riverside.staff, riverside.billing, signed_case.reader.client)
    for client in readers:
        for name in DOCUMENTS:
            assert client.get(signed_case.path(name)).status_code == 200
    assert hillside.staff.get(signed_case.path("report.pdf")).status_code == 404

    with app.app_context(), app.extensions["referral.sessionmaker"]() as session:
        events = session.scalars(sa.select(AuditEvent).where(
            AuditEvent.referral_id == uuid.UUID(signed_case.referral_id),
            AuditEvent.action.in_(("document.read", "referral.access")))).all()
        reads = sorted((str(e.actor_user_id), e.details["name"]) for e in events if e.action == "document.read")
        denied = [(str(e.actor_organization_id), e.outcome) for e in events if e.action == "referral.access"]
    users = [riverside.users["staff"], riverside.users["billing"]]
    assert [r for r in reads if r[0] in users] == sorted((user, name) for user in users for name in DOCUMENTS)
    assert len(reads) == len(readers) * len(DOCUMENTS)
    assert all(e.outcome == "success" and e.object_id == uuid.UUID(signed_case.referral_id)
               for e in events if e.action == "document.read")
    assert denied == [(hillside.id, "denied")]


def test_unknown_document_names_are_not_found(signed_case: SignedCase, riverside: Practice):
    for name in ("report.docx", "capture-note", "REPORT.PDF", "..%2Freport.pdf", "report.pdf.html", "claims.pdf"):
        response = riverside.staff.get(signed_case.path(name))
        assert response.status_code == 404, name
        assert response.is_json


def test_documents_are_attachments_and_html_runs_and_loads_nothing(signed_case: SignedCase, riverside: Practice):
    page = riverside.staff.get(signed_case.path("report.html"))
    pdf = riverside.staff.get(signed_case.path("capture-note.pdf"))

    assert page.headers["Content-Type"] == "text/html; charset=utf-8"
    assert page.headers["Content-Security-Policy"] == "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
    assert page.headers["Content-Disposition"] == f'attachment; filename="report-{signed_case.referral_id}.html"'
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    assert page.headers["Cache-Control"] == "no-store"
    assert pdf.headers["Content-Type"] == "application/pdf"
    assert pdf.headers["Content-Disposition"] == (
        f'attachment; filename="capture-note-{signed_case.referral_id}.pdf"')
    assert pdf.data.startswith(b"%PDF-")
    assert int(pdf.headers["Content-Length"]) == len(pdf.data)


def test_the_pdf_renderer_resolves_data_uris_and_refuses_everything_else(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-FILE-CONTENT")
    fetcher = data_only_fetcher()

    for url in (secret.as_uri(), "http://127.0.0.1:9/x.png", "https://example.com/font.woff", "ftp://x/y",
                " FILE:///etc/passwd"):
        with pytest.raises(RefusedURL):
            fetcher.fetch(url)
    assert fetcher.fetch("data:text/plain;base64,aGk=").read() == b"hi"
    page = (f'<link rel="stylesheet" href="{secret.as_uri()}"><object data="{secret.as_uri()}"></object>'
            f'<img src="{secret.as_uri()}"><iframe src="{secret.as_uri()}"></iframe>'
            f'<a rel="attachment" href="{secret.as_uri()}">x</a><p>visible</p>')
    data = to_pdf(page)
    assert "visible" in pdf_text(data)
    assert b"TOP-SECRET" not in data


def test_without_weasyprint_a_pdf_is_unavailable_rather_than_the_whole_server(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setitem(sys.modules, "weasyprint", None)

    assert pdf._load() is None
    monkeypatch.setattr(pdf, "_WEASYPRINT", None)
    with pytest.raises(ServiceUnavailable):
        to_pdf("<p>x</p>")


def test_making_a_pdf_leaves_truncated_uploads_refused(world: World, riverside: Practice):
    referral_id = ready_referral(riverside)
    assert riverside.staff.get(f"/api/v1/referrals/{referral_id}/documents/capture-note.pdf").status_code == 200

    truncated = upload(riverside.staff, riverside, referral_id, samples.truncated(samples.tiff_bytes(), 0.1),
                       filename="photo.tif", kind="photo_intraoral")

    assert ImageFile.LOAD_TRUNCATED_IMAGES is False
    assert truncated.status_code == 422, truncated.get_json()
