"""835 remittances and 999/277CA acknowledgements posted over the API move the practice's own claims along their
life cycle; files that cannot be read change nothing, and other practices' claims are never touched."""

from __future__ import annotations

import re
from decimal import Decimal

from flask import Flask

from referral.models import Acknowledgement, ClaimEvent, Remittance
from tests.support.edi import (
    ClaimPaid,
    ClaimStatus,
    ElementError,
    SegmentError,
    SetAcknowledged,
    acknowledgement_999,
    claim_acknowledgement_277ca,
)
from tests.support.lifecycle import (
    claim,
    control_number,
    count,
    paid_lines,
    post_file,
    reading_claim,
    reading_practice,
    remittance_for,
    send,
)
from tests.support.world import Practice, World

REMITTANCES = "/api/v1/remittances"
ACKNOWLEDGEMENTS = "/api/v1/acknowledgements"


def test_835_round_trips_paid_reversed_partly_paid_and_denied(app: Flask, world: World, riverside: Practice,
                                                              hillside: Practice):
    reader, coastal = reading_practice(world)
    ours = reading_claim(world, riverside, reader, coastal)
    send(coastal, ours["id"])
    ours = claim(coastal, ours["id"])
    # The capturing practice's claim of the same referral carries the same CLM01 but its own line numbers.
    capture = riverside.billing.get(f"/api/v1/referrals/{ours['referral_id']}/claims").get_json()["claims"][0]
    theirs = ClaimPaid(ours["patient_control_number"], paid_lines(capture), payer_claim_number="PCN-OTHER")
    paid_file = remittance_for(ours, coastal.npi, trace="T-1001", cut={"D0391": "5"}, others=[theirs])

    # Refusals first: nothing is stored, no claim moves.
    truncated = post_file(coastal.billing, REMITTANCES, paid_file[: len(paid_file) // 2])
    assert truncated.status_code == 422
    assert "segment" in truncated.get_json()["message"].lower()
    assert post_file(coastal.billing, REMITTANCES, "", "text/plain").status_code == 422
    assert post_file(coastal.billing, REMITTANCES, paid_file, "application/json").status_code == 415
    assert post_file(coastal.dentist, REMITTANCES, paid_file).status_code == 403
    # One dollar more paid in total than the claims add up to.
    unbalanced = re.sub(r"BPR\*I\*([0-9.]+)\*", lambda m: f"BPR*I*{Decimal(m.group(1)) + 1}*", paid_file, count=1)
    assert unbalanced != paid_file
    assert post_file(coastal.billing, REMITTANCES, unbalanced).status_code == 422
    assert count(app, Remittance) == 0
    assert claim(coastal, ours["id"])["status"] == "submitted"

    # Paid, less a contract cut: paid. The other practice's claim in the file is reported, not touched.
    posted = post_file(coastal.billing, REMITTANCES, paid_file, "text/plain")
    assert posted.status_code == 201, posted.get_json()
    body = posted.get_json()
    assert body["trace_number"] == "T-1001"
    assert body["payer"] == "EXAMPLE DENTAL PLAN"
    # Every line at its charge, less the 5.00 cut on D0391.
    fees = {line["code"]: Decimal(line["fee"]) * line["quantity"] for line in ours["lines"]}
    expected = f"{sum(fees.values()) - 5:.2f}"
    # The file's total also pays the other practice's claim in it.
    their_total = sum(Decimal(line["fee"]) * line["quantity"] for line in capture["lines"])
    assert body["paid_total"] == f"{Decimal(expected) + their_total:.2f}"
    assert [(c["claim_id"], c["status"], c["paid"]) for c in body["claims"]] == [(ours["id"], "paid", expected)]
    assert len(body["unmatched"]) == 1
    assert "claim_id" not in body["unmatched"][0]
    detail = coastal.billing.get(f"{REMITTANCES}/{body['id']}").get_json()
    lines = {line["code"]: line for line in detail["claims"][0]["lines"]}
    assert lines["D0391"]["paid"] == f"{fees['D0391'] - 5:.2f}"
    assert lines["D0391"]["claim_line_id"]
    assert lines["D0391"]["control_number"] == next(li["control_number"] for li in ours["lines"]
                                                     if li["code"] == "D0391")
    adjustment = lines["D0391"]["adjustments"][0]
    assert (adjustment["group"], adjustment["reason"], adjustment["amount"]) == ("CO", "45", "5.00")
    assert "allows" in adjustment["explanation"]
    paid = claim(coastal, ours["id"])
    assert paid["status"] == "paid"
    assert paid["payer_claim_number"] == "PCN7001"
    assert paid["events"][-1]["from"] == "submitted"
    assert claim(riverside, capture["id"])["status"] == capture["status"], "another practice's claim untouched"

    # The same file again: the earlier result, nothing posted twice. Another file under its trace number: refused.
    events = count(app, ClaimEvent)
    again = post_file(coastal.billing, REMITTANCES, paid_file)
    assert again.status_code == 200
    assert again.get_json()["id"] == body["id"]
    wrapped = post_file(coastal.billing, REMITTANCES, paid_file.replace("~", "~\r\n"))
    assert wrapped.status_code == 200, "the same file with line breaks between its segments"
    assert wrapped.get_json()["id"] == body["id"]
    assert count(app, Remittance) == 1
    assert count(app, ClaimEvent) == events
    other = remittance_for(ours, coastal.npi, trace="T-1001")
    assert post_file(coastal.billing, REMITTANCES, other).status_code == 409

    # The payer reverses the payment: the claim goes back to where it was.
    reversal = post_file(coastal.billing, REMITTANCES,
                         remittance_for(ours, coastal.npi, trace="T-1002", status="22", cut={"D0391": "5"}))
    assert reversal.status_code == 201, reversal.get_json()
    assert claim(coastal, ours["id"])["status"] == "submitted"
    assert coastal.billing.get(f"{REMITTANCES}/{body['id']}").get_json()["claims"][0]["reversed"] is True

    # Paid again with D9996 denied as not covered: partly paid, the reason in words.
    partial = post_file(coastal.billing, REMITTANCES, remittance_for(
        ours, coastal.npi, trace="T-1003", denied={"D9996": ("CO", "96", ["N130"])}))
    assert partial.status_code == 201, partial.get_json()
    assert partial.get_json()["claims"][0]["status"] == "partially_paid"
    assert claim(coastal, ours["id"])["status"] == "partially_paid"

    # A second claim denied for a missing attachment: denied.
    second = reading_claim(world, hillside, reader, coastal)
    send(coastal, second["id"])
    second = claim(coastal, second["id"])
    denial = post_file(coastal.billing, REMITTANCES, remittance_for(
        second, coastal.npi, trace="T-1004", status="4",
        denied={"D0391": ("CO", "252", ["N29"]), "D9996": ("CO", "252", ["N29"])}))
    assert denial.status_code == 201, denial.get_json()
    assert claim(coastal, second["id"])["status"] == "denied"
    denied_line = coastal.billing.get(f"{REMITTANCES}/{denial.get_json()['id']}").get_json()["claims"][0]["lines"][0]
    assert denied_line["paid"] == "0.00"
    assert denied_line["remarks"] == ["N29"]
    assert "attach" in (denied_line["adjustments"][0]["explanation"] + denied_line["adjustments"][0]["next_step"])

    # Outsiders: not found; another practice posting this payer's file touches none of these claims.
    assert hillside.billing.get(f"{REMITTANCES}/{body['id']}").status_code == 404
    foreign = post_file(riverside.billing, REMITTANCES, remittance_for(ours, coastal.npi, trace="T-1005"))
    assert foreign.status_code == 201
    assert foreign.get_json()["claims"] == []
    assert len(foreign.get_json()["unmatched"]) == 1
    assert claim(coastal, ours["id"])["status"] == "partially_paid"


def test_999_and_277ca_move_sent_claims_to_accepted_or_rejected_with_the_reason(app: Flask, world: World,
                                                                                riverside: Practice,
                                                                                hillside: Practice):
    reader, coastal = reading_practice(world)
    first = reading_claim(world, riverside, reader, coastal)
    number = control_number(send(coastal, first["id"]))
    first = claim(coastal, first["id"])

    assert post_file(coastal.billing, ACKNOWLEDGEMENTS, "ISA*garbage~").status_code == 422
    assert post_file(coastal.billing, ACKNOWLEDGEMENTS, "", "text/plain").status_code == 422
    remittance_like = remittance_for(first, coastal.npi, trace="T-9")
    assert post_file(coastal.billing, ACKNOWLEDGEMENTS, remittance_like).status_code == 422
    assert post_file(coastal.dentist, ACKNOWLEDGEMENTS,
                     acknowledgement_999(str(number), [SetAcknowledged("0001")])).status_code == 403
    assert count(app, Acknowledgement) == 0
    assert claim(coastal, first["id"])["status"] == "submitted"

    accepted = post_file(coastal.billing, ACKNOWLEDGEMENTS,
                         acknowledgement_999(str(number), [SetAcknowledged("0001")]))
    assert accepted.status_code == 201, accepted.get_json()
    assert accepted.get_json()["kind"] == "999"
    assert [(r["claim_id"], r["status"]) for r in accepted.get_json()["results"]] == [(first["id"], "accepted")]
    assert claim(coastal, first["id"])["status"] == "accepted"

    # Another practice posting the payer's 277CA about this claim changes nothing of it.
    status = ClaimStatus(first["patient_control_number"], category="A7", status="21", entity="85",
                         amount=first["total"], payer_claim_number=None)
    rejection = claim_acknowledgement_277ca([status], billing=("COASTAL ENDODONTICS", coastal.npi))
    foreign = post_file(riverside.billing, ACKNOWLEDGEMENTS, rejection)
    assert foreign.status_code == 201
    assert foreign.get_json()["results"] == []
    assert claim(coastal, first["id"])["status"] == "accepted"

    rejected = post_file(coastal.billing, ACKNOWLEDGEMENTS, rejection)
    assert rejected.status_code == 201, rejected.get_json()
    assert rejected.get_json()["kind"] == "277CA"
    after = claim(coastal, first["id"])
    assert after["status"] == "rejected"
    assert after["events"][-1]["note"].startswith("Rejected by the payer (277CA")
    assert len(after["events"][-1]["note"]) > len("Rejected by the payer (277CA from EXAMPLE DENTAL PLAN)")
    assert coastal.billing.get(f"{ACKNOWLEDGEMENTS}/{rejected.get_json()['id']}").status_code == 200
    assert hillside.billing.get(f"{ACKNOWLEDGEMENTS}/{rejected.get_json()['id']}").status_code == 404

    # Fixed and sent again as a new original; a 277CA A2 then accepts it and gives the payer's number.
    assert control_number(send(coastal, first["id"])) == number + 1
    assert claim(coastal, first["id"])["status"] == "submitted"
    accepted_277 = claim_acknowledgement_277ca([ClaimStatus(first["patient_control_number"], amount=first["total"])],
                                               billing=("COASTAL ENDODONTICS", coastal.npi))
    assert post_file(coastal.billing, ACKNOWLEDGEMENTS, accepted_277).status_code == 201
    assert claim(coastal, first["id"])["status"] == "accepted"
    assert claim(coastal, first["id"])["payer_claim_number"] == "PCN260415017"

    # A batch the receiver's 999 rejects: its claim is rejected with the segment named; unknown groups are reported.
    second = reading_claim(world, hillside, reader, coastal)
    batch = coastal.billing.post("/api/v1/claim-batches", {"claim_ids": [second["id"]]}).get_json()
    error = SegmentError("CLM", 20, "2300", "8", [ElementError("1", "1028", "7")])
    bad = acknowledgement_999(str(batch["control_number"]), [SetAcknowledged("0001", "R", ["5"], [error])])
    response = post_file(coastal.billing, ACKNOWLEDGEMENTS, bad)
    assert response.status_code == 201, response.get_json()
    assert claim(coastal, second["id"])["status"] == "rejected"
    assert "CLM" in claim(coastal, second["id"])["events"][-1]["note"]
    unknown = post_file(coastal.billing, ACKNOWLEDGEMENTS, acknowledgement_999("424242", [SetAcknowledged("0001")]))
    assert unknown.status_code == 201
    assert unknown.get_json()["results"] == []
    assert unknown.get_json()["unmatched"] == [{"group_control_number": "424242", "status": "A"}]
