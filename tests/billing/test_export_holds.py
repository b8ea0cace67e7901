"""Every reason an 837D cannot be produced is a hold with words a billing clerk reads and a fact to fix."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pytest

from referral.billing.edits import EXPORT_RULES, export_holds
from referral.billing.model import Address, Claim
from referral.billing.x12 import ExportError
from referral.billing.x12_validator import validate_837d
from tests.support.claims import CHILD_MEDICAID, all_claims, child_claim, reader_claim, single_claim
from tests.support.x12 import export


def sendable(claim: Claim) -> Claim:
    return replace(claim, billing_organization=replace(claim.billing_organization, phone="608-555-0100"))


def rules(claim: Claim) -> list[str]:
    return [edit.rule for edit in export_holds(claim)]


def export_fails(claim: Claim) -> bool:
    try:
        return bool(validate_837d(export([claim])))
    except ExportError:
        return True


def test_the_sample_claims_have_no_export_holds_and_export_cleanly():
    for claim in map(sendable, all_claims()):
        assert export_holds(claim) == (), claim.role
        assert not export_fails(claim)


def _broken() -> dict[str, Claim]:
    single = sendable(single_claim())
    org = single.billing_organization
    return {
        "export-no-coverage": replace(single, coverage=None),
        "export-no-subscriber": replace(sendable(child_claim()), coverage=replace(CHILD_MEDICAID, subscriber=None)),
        "export-patient-address": replace(single, patient=replace(single.patient, address=None)),
        "export-billing-address": replace(single, billing_organization=replace(
            org, address=Address("", "Madison", "WI", "537031234"))),
        "export-billing-zip": replace(single, billing_organization=replace(
            org, address=replace(org.address, zip="53703"))),
        "export-billing-phone": replace(single, billing_organization=replace(org, phone=None)),
        "export-billing-ids": replace(single, billing_organization=replace(org, npi="")),
        "export-provider-ids": replace(single, rendering_provider=replace(single.rendering_provider, taxonomy="")),
    }


@pytest.mark.parametrize("rule", sorted(_broken()))
def test_each_reason_an_export_fails_is_a_hold_naming_what_to_fix(rule: str):
    claim = _broken()[rule]

    holds = export_holds(claim)

    assert [edit.rule for edit in holds] == [rule]
    assert holds[0].severity == "hold"
    assert rule in EXPORT_RULES, "the pages know where it is fixed"
    message = holds[0].message
    assert "_" not in message, "no field names"
    assert message[0].isupper()
    assert message.endswith(".")
    if rule != "export-billing-phone":  # the service names the practice's phone as the submitter contact
        assert export_fails(claim), "the hold stands for a real failure of the export"


def test_a_line_without_a_fee_is_held_and_the_message_counts_right():
    claim = sendable(reader_claim())
    one = replace(claim, lines=(replace(claim.lines[0], fee=Decimal("0")), claim.lines[1]))
    both = replace(claim, lines=tuple(replace(line, fee=Decimal("0.00")) for line in claim.lines))

    [single] = export_holds(one)
    [double] = export_holds(both)

    assert single.rule == "export-no-fee"
    assert single.line_numbers == (1,)
    assert single.message == ("No fee is on file for D0391 (line 1), so it would be sent at 0.00. Add the fee to "
                              "the practice's fee schedule.")
    assert double.line_numbers == (1, 2)
    assert double.message == ("No fee is on file for D0391 and D9996 (lines 1 and 2), so they would be sent at "
                              "0.00. Add their fees to the practice's fee schedule.")


def test_a_dependant_without_a_subscriber_is_held_in_the_clerks_words():
    claim = replace(sendable(child_claim()), coverage=replace(CHILD_MEDICAID, subscriber=None))

    [hold] = export_holds(claim)

    assert "covered as the subscriber's child" in hold.message
    assert "insured person" in hold.message


def test_a_referring_providers_bad_npi_is_named():
    claim = sendable(reader_claim())
    assert claim.referring_provider is not None
    broken = replace(claim, referring_provider=replace(claim.referring_provider, npi="1234567890"))

    assert rules(broken) == ["export-provider-ids"]
    assert "Grace Patel's NPI" in export_holds(broken)[0].message
