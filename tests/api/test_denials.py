"""The denials worklist, corrected and void claims, and appeal packets, over the API."""

from __future__ import annotations

import uuid

import pytest
import sqlalchemy as sa
from flask import Flask

from referral.billing.x12_validator import validate_837d
from referral.models import AuditEvent
from tests.support.api import signed_case
from tests.support.claim_cases import count_rows, endodontics_practice, reading_claim
from tests.support.denials import Paid, claim_state, record_payment, reverse
from tests.support.documents import pdf_text
from tests.support.world import Practice, World
from tests.support.x12 import claims_in, first, only

TABLES = ("claims", "claim_lines", "claim_events", "claim_exports", "claim_attachments")
ATTACHMENT_DENIAL = Paid(1, "0", (("CO", "252", "55.00"),), ("N29",))
BUNDLED = Paid(2, "0", (("CO", "97", "20.00"),), ("M15",))


@pytest.fixture
def endo(world: World):
    return endodontics_practice(world)


@pytest.fixture
def denied(app: Flask, world: World, riverside: Practice, endo):
    """The endodontist's claim (D0391, D9996), both lines denied: documentation needed, and bundled."""
    reader, coastal = endo
    assert coastal.billing.put(f"/api/v1/organizations/{coastal.id}/fee-schedule",
                               {"D0391": 55, "D9996": 20}).status_code == 200
    claim = reading_claim(world, riverside, reader, coastal)
    record_payment(app, claim["id"], [ATTACHMENT_DENIAL, BUNDLED], payer_claim_number="PCN260416018")
    return claim


def test_billing_staff_see_each_denied_line_with_its_reason_and_next_step(app: Flask, world: World,
                                                                         riverside: Practice, endo, denied):
    _, coastal = endo
    capture = riverside.billing.get(f"/api/v1/referrals/{denied['referral_id']}/claims").get_json()["claims"][0]
    record_payment(app, capture["id"], [Paid(1, "0", (("CO", "16", "30.00"),), ("N37",))])

    items = coastal.billing.get("/api/v1/denials").get_json()["items"]
    theirs = riverside.billing.get("/api/v1/denials").get_json()["items"]

    assert [(item["line_number"], item["code"], item["action"]) for item in items] == [
        (1, "D0391", "send_attachment"), (2, "D9996", "review_history")]
    attachment, bundled = items
    assert attachment["claim_id"] == denied["id"]
    assert attachment["denied"] is True
    assert attachment["charge"] == "55.00"
    assert attachment["paid"] == "0.00"
    assert attachment["payer_claim_number"] == "PCN260416018"
    assert attachment["patient"] == "Doe, Jane"
    assert "document" in attachment["reason"]
    assert "attachment package" in attachment["next_step"]
    assert attachment["adjustments"][0]["group"] == "CO"
    assert attachment["adjustments"][0]["reason"] == "252"
    assert attachment["remarks"] == [{"code": "N29", "meaning": "documentation is missing"}]
    assert "bundled" in bundled["reason"] or "components" in bundled["reason"]
    assert "history" in bundled["next_step"]
    # the capturing practice sees only its own line, and the field to fix
    assert [(item["code"], item["action"], item["field"]) for item in theirs] == [
        ("D0707", "fix_field", "tooth number")]
    assert "tooth number" in theirs[0]["next_step"]


def test_contract_write_offs_and_reversed_payments_are_not_denials(app: Flask, world: World, riverside: Practice,
                                                                   endo):
    reader, coastal = endo
    assert coastal.billing.put(f"/api/v1/organizations/{coastal.id}/fee-schedule",
                               {"D0391": 55, "D9996": 20}).status_code == 200
    claim = reading_claim(world, riverside, reader, coastal)
    first_payment = record_payment(app, claim["id"], [ATTACHMENT_DENIAL, BUNDLED])
    reverse(app, first_payment)
    record_payment(app, claim["id"], [Paid(1, "45", (("CO", "45", "10.00"),)),
                                      Paid(2, "15", (("PR", "2", "5.00"),))])

    assert coastal.billing.get("/api/v1/denials").get_json()["items"] == []


def test_the_worklist_is_for_billing_staff_and_is_audited(app: Flask, world: World, riverside: Practice,
                                                           hillside: Practice, endo, denied):
    reader, coastal = endo

    assert hillside.billing.get("/api/v1/denials").get_json()["items"] == []
    assert reader.client.get("/api/v1/denials").status_code == 403
    assert world.anonymous.get("/api/v1/denials").status_code == 401
    assert coastal.billing.get("/api/v1/denials").status_code == 200
    with app.app_context(), app.extensions["referral.sessionmaker"]() as session:
        rows = session.scalars(sa.select(AuditEvent).where(AuditEvent.action == "denial.list",
                                                           AuditEvent.organization_id == uuid.UUID(coastal.id)))
        assert [row.details["count"] for row in rows] == [2]


def test_a_replacement_claim_names_the_payers_number_and_exports_as_a_valid_837d(app: Flask, endo, denied):
    _, coastal = endo

    response = coastal.billing.post(f"/api/v1/claims/{denied['id']}/corrections",
                                    {"frequency": "7", "note": "documentation now attached"})

    assert response.status_code == 201, response.get_json()
    replacement = response.get_json()
    assert replacement["id"] != denied["id"]
    assert replacement["frequency"] == "7"
    assert replacement["original_claim_id"] == denied["id"]
    assert replacement["original_payer_claim_number"] == "PCN260416018"
    assert replacement["status"] == "ready"
    assert [(line["code"], line["control_number"]) for line in replacement["lines"]] == [
        (line["code"], line["control_number"]) for line in denied["lines"]]
    status, events = claim_state(app, denied["id"])
    assert status == "corrected"
    assert events[-1] == ("denied", "corrected")
    assert claim_state(app, replacement["id"])[1] == [(None, "ready")]
    # the original's denials are dealt with
    assert coastal.billing.get("/api/v1/denials").get_json()["items"] == []

    x12 = coastal.billing.get(f"/api/v1/claims/{replacement['id']}/x12")
    package = coastal.billing.get(f"/api/v1/claims/{replacement['id']}/attachments")

    assert x12.status_code == 200, x12.get_json()
    text = x12.get_data(as_text=True)
    assert validate_837d(text) == []
    (claim,) = claims_in(text)
    assert first(claim, "CLM")[5].split(":")[2] == "7"
    assert first(claim, "REF", "F8")[2] == "PCN260416018"
    assert only(claim, "PWK")[0][6] == package.headers["Attachment-Control-Number"]


def test_a_void_repeats_the_lines_and_takes_a_number_given_by_the_clerk(app: Flask, endo, denied):
    _, coastal = endo

    response = coastal.billing.post(f"/api/v1/claims/{denied['id']}/corrections",
                                    {"frequency": "8", "payer_claim_number": "PCN-OTHER-1"})

    assert response.status_code == 201, response.get_json()
    void = response.get_json()
    assert void["frequency"] == "8"
    text = coastal.billing.get(f"/api/v1/claims/{void['id']}/x12").get_data(as_text=True)
    assert validate_837d(text) == []
    (claim,) = claims_in(text)
    assert first(claim, "CLM")[5].split(":")[2] == "8"
    assert first(claim, "REF", "F8")[2] == "PCN-OTHER-1"
    assert [first(line, "SV3")[1] for line in _lines(claim)] == ["AD:D0391", "AD:D9996"]
    # a void is not corrected again
    again = coastal.billing.post(f"/api/v1/claims/{void['id']}/corrections", {"frequency": "7"})
    assert again.status_code == 409


def _lines(claim: list[list[str]]) -> list[list[list[str]]]:
    from tests.support.x12 import lines_in

    return lines_in(claim)


@pytest.mark.parametrize(("body", "status", "words"), [
    ({"frequency": "1"}, 422, "7 (replacement) or 8 (void)"),
    ({}, 422, "Missing data"),
    ({"frequency": "7", "payer_claim_number": "PCN*1"}, 422, "payer's claim number"),
    ({"frequency": "7", "colour": "red"}, 422, "Unknown field"),
])
def test_a_refused_correction_stores_nothing(app: Flask, endo, denied, body, status, words):
    _, coastal = endo
    before = count_rows(app, *TABLES)

    response = coastal.billing.post(f"/api/v1/claims/{denied['id']}/corrections", body)

    assert response.status_code == status
    assert words in str(response.get_json())
    assert count_rows(app, *TABLES) == before
    assert claim_state(app, denied["id"])[0] == "denied"


def test_corrections_need_an_answered_claim_and_a_payer_number(app: Flask, world: World, riverside: Practice,
                                                                hillside: Practice, endo):
    reader, coastal = endo
    claim = reading_claim(world, riverside, reader, coastal)
    before = count_rows(app, *TABLES)

    unsent = coastal.billing.post(f"/api/v1/claims/{claim['id']}/corrections", {"frequency": "7"})
    record_payment(app, claim["id"], [ATTACHMENT_DENIAL], payer_claim_number=None)
    after_payment = count_rows(app, *TABLES)
    no_number = coastal.billing.post(f"/api/v1/claims/{claim['id']}/corrections", {"frequency": "7"})
    outsider = hillside.billing.post(f"/api/v1/claims/{claim['id']}/corrections", {"frequency": "7"})
    other_side = riverside.billing.post(f"/api/v1/claims/{claim['id']}/corrections", {"frequency": "7"})
    not_billing = reader.client.post(f"/api/v1/claims/{claim['id']}/corrections", {"frequency": "7"})
    missing = coastal.billing.post(f"/api/v1/claims/{uuid.uuid4()}/corrections", {"frequency": "7"})

    assert unsent.status_code == 409
    assert "payment or a denial" in unsent.get_json()["message"]
    assert before["claims"] == after_payment["claims"]
    assert no_number.status_code == 422
    assert "payer's claim number" in no_number.get_json()["message"]
    assert outsider.status_code == 404
    assert other_side.status_code == 404
    assert not_billing.status_code == 403
    assert missing.status_code == 404
    assert count_rows(app, *TABLES) == after_payment
    assert claim_state(app, claim["id"])[0] == "denied"


def test_a_claim_is_corrected_once(app: Flask, endo, denied):
    _, coastal = endo
    assert coastal.billing.post(f"/api/v1/claims/{denied['id']}/corrections", {"frequency": "7"}).status_code == 201
    before = count_rows(app, *TABLES)

    again = coastal.billing.post(f"/api/v1/claims/{denied['id']}/corrections", {"frequency": "7"})

    assert again.status_code == 409
    assert count_rows(app, *TABLES) == before


def test_the_appeal_packet_names_the_claim_the_denial_and_the_documentation(app: Flask, endo, denied):
    _, coastal = endo

    response = coastal.billing.get(f"/api/v1/claims/{denied['id']}/appeal")

    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/pdf"
    control = response.headers["Attachment-Control-Number"]
    text = pdf_text(response.data)
    assert "Request for reconsideration" in text
    assert "PCN260416018" in text
    assert "Jane Doe" in text
    assert "CO-252" in text
    assert "D0391" in text
    assert "Why the service was billable" in text
    assert control in text
    # the attachment package follows the letter
    assert "Claim attachment package" in text
    assert "Radiographic interpretation report" in text
    assert "Tooth #19" in text[text.index("Billed images"):]
    assert claim_state(app, denied["id"])[0] == "denied"


def test_sending_the_appeal_marks_the_claim_appealed_once(app: Flask, endo, denied):
    _, coastal = endo

    sent = coastal.billing.post(f"/api/v1/claims/{denied['id']}/appeal", {"note": "second review"})
    before = count_rows(app, *TABLES)
    again = coastal.billing.post(f"/api/v1/claims/{denied['id']}/appeal", {})

    assert sent.status_code == 200
    assert sent.headers["Content-Type"] == "application/pdf"
    status, events = claim_state(app, denied["id"])
    assert status == "appealed"
    assert events[-1] == ("denied", "appealed")
    assert again.status_code == 409
    assert "appealed" in again.get_json()["message"]
    assert count_rows(app, *TABLES) == before
    with app.app_context(), app.extensions["referral.sessionmaker"]() as session:
        exports = session.scalars(sa.select(AuditEvent.action).where(AuditEvent.action == "claim.export_appeal"))
        assert list(exports) == ["claim.export_appeal"]
    # an appealed claim stays on the worklist until the payer answers
    assert {item["claim_status"] for item in coastal.billing.get("/api/v1/denials").get_json()["items"]} == {
        "appealed"}


def test_appeals_are_refused_without_a_denial_and_to_outsiders(app: Flask, world: World, riverside: Practice,
                                                                hillside: Practice, endo, denied):
    reader, coastal = endo
    paid_claim = signed_case(world, riverside, reader)
    paid = coastal.billing.get(f"/api/v1/referrals/{paid_claim}/claims").get_json()["claims"][0]
    record_payment(app, paid["id"], [Paid(line["number"], str(line["fee"])) for line in paid["lines"]])
    before = count_rows(app, *TABLES)

    nothing_denied = coastal.billing.post(f"/api/v1/claims/{paid['id']}/appeal", {})
    outsider = hillside.billing.get(f"/api/v1/claims/{denied['id']}/appeal")
    outsider_post = hillside.billing.post(f"/api/v1/claims/{denied['id']}/appeal", {})
    not_billing = reader.client.post(f"/api/v1/claims/{denied['id']}/appeal", {})
    bad_body = coastal.billing.post(f"/api/v1/claims/{denied['id']}/appeal", {"note": "x" * 501})

    assert nothing_denied.status_code == 409
    assert "no denied or reduced line" in nothing_denied.get_json()["message"]
    assert outsider.status_code == 404
    assert outsider_post.status_code == 404
    assert not_billing.status_code == 403
    assert bad_body.status_code == 422
    assert count_rows(app, *TABLES) == before
    assert claim_state(app, denied["id"])[0] == "denied"
