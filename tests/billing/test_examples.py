"""The six worked examples of docs/billing.md, line by line.

Each runs under the product's default profile (photos one line per visit, D0391 one per radiograph read) and,
where the unit matters, under the tables' payer (photos per image, D0391 once per report). Lines are compared as
(code, tooth or area, quantity). Where a table shows several teeth on a line with quantity above 1, the engine
splits it one line per tooth (docs/billing.md, "Teeth, areas and surfaces"), so the table's totals are asserted
instead.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from datetime import date

import pytest

from referral.billing.engine import generate_claims
from referral.billing.explain import explain
from referral.billing.model import Claim, ImageFacts
from referral.billing.profiles import PayerProfile
from tests.support.billing import (
    ALDER,
    BIRCH,
    CAPTURED,
    ENDODONTIST,
    GP,
    REMOTE_DENTIST,
    SIGNED,
    by_role,
    image,
    rows,
    tables_profile,
    units,
    visit,
)


def _example_1() -> list[Claim]:
    return generate_claims(visit(image("pa-3", "periapical", "3"), place_of_service="11"))


def test_example_1_the_gp_bills_the_periapical_capture_and_the_endodontist_bills_the_reading() -> None:
    claims = by_role(_example_1())

    capture, reading = claims["capture"], claims["interpretation"]
    assert rows(capture) == [("D0707", "3", 1)]
    assert capture.billing_organization == ALDER
    assert capture.rendering_provider == GP
    assert capture.place_of_service == "11"
    assert capture.date_of_service == CAPTURED
    assert rows(reading) == [("D0391", "3", 1), ("D9996", None, 1)]
    assert reading.billing_organization == BIRCH
    assert reading.rendering_provider == ENDODONTIST
    assert reading.referring_provider == GP
    assert reading.place_of_service == "02"
    assert reading.date_of_service == SIGNED
    assert {line.date_of_service for line in reading.lines} == {SIGNED}
    assert capture.status == reading.status == "ready"


def test_example_1_reproduces_the_table_under_a_per_report_payer() -> None:
    claims = by_role(generate_claims(visit(image("pa-3", "periapical", "3")), tables_profile()))

    assert rows(claims["capture"]) == [("D0707", "3", 1)]
    assert rows(claims["interpretation"]) == [("D0391", "3", 1), ("D9996", None, 1)]
    assert claims["interpretation"].payer_profile == "tables-example"


def test_example_1_before_the_report_is_signed_only_the_capture_is_billed() -> None:
    claims = generate_claims(visit(image("pa-3", "periapical", "3"), signed_at=None))

    assert [claim.role for claim in claims] == ["capture"]
    assert rows(claims[0]) == [("D0707", "3", 1)]


def _school_images() -> list[ImageFacts]:
    photos = [image(f"photo-{area}", "photo_intraoral", area=area) for area in ("10", "20", "30", "40")]
    return [
        image("bw-right", "bitewing"),
        image("bw-left", "bitewing"),
        image("pa-14", "periapical", "14"),
        image("pa-19", "periapical", "19"),
        *photos,
    ]


def test_example_2a_the_school_program_bills_capture_only_and_the_remote_dentist_bills_reading_and_exam() -> None:
    claims = by_role(generate_claims(visit(*_school_images(), place_of_service="03", evaluation=True)))

    capture, reading = claims["capture"], claims["interpretation"]
    assert capture.place_of_service == "03"
    assert rows(capture) == [("D0707", "14", 1), ("D0707", "19", 1), ("D0708", None, 2), ("D0703", None, 1)]
    assert reading.place_of_service == "02"
    # One D0391 per radiograph read: two periapicals and two bitewings.
    assert rows(reading) == [
        ("D0140", None, 1),
        ("D0391", "14", 1),
        ("D0391", "19", 1),
        ("D0391", None, 2),
        ("D9996", None, 1),
    ]
    assert units(reading)["D0391"] == 4


def test_example_2a_reproduces_the_table_with_photos_per_image_and_one_reading_per_report() -> None:
    claims = by_role(
        generate_claims(visit(*_school_images(), place_of_service="03", evaluation=True), tables_profile())
    )

    capture, reading = claims["capture"], claims["interpretation"]
    assert rows(capture) == [
        ("D0707", "14", 1),
        ("D0707", "19", 1),
        ("D0708", None, 2),
        ("D0703", "area 10", 1),
        ("D0703", "area 20", 1),
        ("D0703", "area 30", 1),
        ("D0703", "area 40", 1),
    ]
    assert units(capture) == Counter({"D0708": 2, "D0707": 2, "D0703": 4})
    assert rows(reading) == [("D0140", None, 1), ("D0391", "14,19", 1), ("D9996", None, 1)]


def test_example_2b_one_practice_that_captures_and_reads_remotely_bills_one_claim_with_full_codes() -> None:
    claims = generate_claims(
        visit(*_school_images(), place_of_service="03", evaluation=True, reader=REMOTE_DENTIST, reader_org=ALDER)
    )

    assert [claim.role for claim in claims] == ["single"]
    single = claims[0]
    assert rows(single) == [
        ("D0140", None, 1),
        ("D0220", "14", 1),
        ("D0230", "19", 1),
        ("D0272", None, 1),
        ("D0350", None, 1),
        ("D9996", None, 1),
    ]
    assert single.billing_organization == ALDER
    assert single.rendering_provider == REMOTE_DENTIST
    assert single.place_of_service == "02"
    assert not {"D0391", "D0707", "D0708", "D0703"} & set(units(single))
    assert single.status == "ready"
    # PRODUCT.md rule 4: D9996 sits beside D0350 on this claim, so it carries the visit's date; the evaluation is
    # dated when the report recording it was signed. The imaging was done at the school, not by telehealth.
    assert [(line.code, line.date_of_service, line.place_of_service) for line in single.lines] == [
        ("D0140", SIGNED, None),
        ("D0220", CAPTURED, "03"),
        ("D0230", CAPTURED, "03"),
        ("D0272", CAPTURED, "03"),
        ("D0350", CAPTURED, "03"),
        ("D9996", CAPTURED, None),
    ]


def test_example_2b_reproduces_the_table_with_four_photos_under_a_per_image_payer() -> None:
    claims = generate_claims(
        visit(*_school_images(), place_of_service="03", evaluation=True, reader=REMOTE_DENTIST, reader_org=ALDER),
        tables_profile(),
    )

    assert units(claims[0]) == Counter({"D0140": 1, "D0220": 1, "D0230": 1, "D0272": 1, "D0350": 4, "D9996": 1})


def test_example_2b_without_a_recorded_evaluation_bills_no_evaluation_code() -> None:
    claims = generate_claims(visit(*_school_images(), reader=REMOTE_DENTIST, reader_org=ALDER))

    assert "D0140" not in units(claims[0])


def test_example_2b_bills_nothing_until_the_report_is_signed() -> None:
    assert generate_claims(visit(*_school_images(), signed_at=None, reader=REMOTE_DENTIST, reader_org=ALDER)) == []


def _fractured_cusp() -> list[ImageFacts]:
    return [image("pa-30", "periapical", "30"), image("pa-29", "periapical", "29"), image("pa-31", "periapical", "31")]


@pytest.mark.parametrize("profile", [None, tables_profile()], ids=["default", "tables"])
def test_example_3_a_single_office_bills_exam_first_periapical_and_two_additional(profile: PayerProfile | None) -> None:
    facts = visit(*_fractured_cusp(), reader=None, office_read=True, office_evaluation=True)

    claims = generate_claims(facts, profile)

    assert [claim.role for claim in claims] == ["single"]
    single = claims[0]
    # The table's "D0230 29-31 qty 2" becomes one line per tooth: several teeth need quantity 1.
    assert rows(single) == [("D0140", None, 1), ("D0220", "30", 1), ("D0230", "29", 1), ("D0230", "31", 1)]
    assert units(single)["D0230"] == 2
    assert single.place_of_service == "11"
    assert single.rendering_provider == GP
    assert single.date_of_service == CAPTURED
    assert single.status == "ready"


def test_example_3_without_a_reader_or_an_office_reading_nothing_is_billed_yet() -> None:
    assert generate_claims(visit(*_fractured_cusp(), reader=None)) == []


def _live_consult() -> list[ImageFacts]:
    return [
        image("pa-14", "periapical", "14"),
        image("photo-1", "photo_intraoral", "14"),
        image("photo-2", "photo_intraoral", "14"),
    ]


def test_example_4_a_live_consult_bills_capture_at_the_site_and_exam_reading_and_d9995_at_the_reader() -> None:
    claims = by_role(generate_claims(visit(*_live_consult(), mode="synchronous", evaluation=True)))

    assert rows(claims["capture"]) == [("D0707", "14", 1), ("D0703", "14", 1)]
    assert rows(claims["interpretation"]) == [("D0140", None, 1), ("D0391", "14", 1), ("D9995", None, 1)]
    assert claims["interpretation"].place_of_service == "02"


def test_example_4_reproduces_the_table_with_two_photo_units_under_a_per_image_payer() -> None:
    claims = by_role(generate_claims(visit(*_live_consult(), mode="synchronous", evaluation=True), tables_profile()))

    assert rows(claims["capture"]) == [("D0707", "14", 1), ("D0703", "14", 2)]
    assert rows(claims["interpretation"]) == [("D0140", None, 1), ("D0391", "14", 1), ("D9995", None, 1)]


def test_example_4_with_the_patient_at_home_the_readers_claim_carries_pos_10() -> None:
    claims = by_role(generate_claims(visit(*_live_consult(), mode="synchronous", place_of_service="12")))

    assert claims["interpretation"].place_of_service == "10"
    assert claims["capture"].place_of_service == "12"


@pytest.mark.parametrize("profile", [None, tables_profile()], ids=["default", "tables"])
def test_example_5_a_gp_who_read_the_image_bills_the_full_code_and_the_endodontist_still_bills_d0391(
    profile: PayerProfile | None,
) -> None:
    facts = visit(image("pa-19", "periapical", "19"), office_read=True, office_evaluation=True)

    claims = by_role(generate_claims(facts, profile))

    capture, reading = claims["capture"], claims["interpretation"]
    assert rows(capture) == [("D0140", None, 1), ("D0220", "19", 1)]
    assert capture.place_of_service == "11"
    assert rows(reading) == [("D0391", "19", 1), ("D9996", None, 1)]
    assert reading.place_of_service == "02"
    assert all(line.code != "D0707" for claim in claims.values() for line in claim.lines)


@pytest.mark.parametrize("profile", [None, tables_profile()], ids=["default", "tables"])
def test_example_6_a_small_field_cbct_is_billed_capture_only_at_the_gp_and_read_by_the_endodontist(
    profile: PayerProfile | None,
) -> None:
    facts = visit(image("cbct-1", "cbct_limited", "3", area="10"))

    claims = by_role(generate_claims(facts, profile))

    assert rows(claims["capture"]) == [("D0380", "3", 1)]
    assert rows(claims["interpretation"]) == [("D0391", "3", 1), ("D9996", None, 1)]
    assert all(line.code != "D0364" for claim in claims.values() for line in claim.lines)


def test_every_line_explains_itself_and_names_its_rule() -> None:
    for claim in _example_1():
        for line in claim.lines:
            assert line.rule
            assert line.explanation.endswith(".")
            assert len(line.explanation.split()) >= 8


def test_control_numbers_are_short_alphanumeric_and_stable_for_the_same_facts() -> None:
    first, second = _example_1(), _example_1()

    numbers = [line.control_number for claim in first for line in claim.lines]
    assert numbers == [line.control_number for claim in second for line in claim.lines]
    assert len(set(numbers)) == len(numbers)
    assert all(number.isalnum() and len(number) <= 30 for number in numbers)


def test_fees_come_from_the_billing_practices_own_schedule_and_default_to_zero() -> None:
    claims = by_role(_example_1())

    assert [str(line.fee) for line in claims["capture"].lines] == ["20.00"]
    assert [str(line.fee) for line in claims["interpretation"].lines] == ["40.00", "10.00"]
    assert str(claims["interpretation"].total) == "50.00"
    no_fees = generate_claims(visit(image("pa-3", "periapical", "3"), capturing=replace(ALDER, fee_schedule={})))
    assert no_fees[0].lines[0].fee == 0
    assert no_fees[0].total == 0


def test_the_explanation_shows_each_claim_line_by_line_with_labels_and_edits() -> None:
    facts = visit(image("pa-3", "periapical", "3"), image("pa-3b", "periapical", "3", retake_of="pa-3"))

    text = explain(generate_claims(facts))

    assert "Claim 1 of 2: capture claim" in text
    assert "Claim 2 of 2: reading claim" in text
    assert "D0707  periapical, capture only" in text
    assert "tooth 3" in text
    assert "[capture-only.periapical]" in text
    assert "WARNING not-billable-images" in text
    assert "pa-3b (retake of image pa-3" in text
    assert "Pat" not in text  # patients appear by id only


def test_the_explanation_of_no_claims_says_why_there_is_nothing() -> None:
    assert explain([]).startswith("No claims")


def test_a_different_date_of_capture_gives_each_date_its_own_first_periapical() -> None:
    facts = visit(
        image("pa-a", "periapical", "3"),
        image("pa-b", "periapical", "4"),
        image("pa-c", "periapical", "5", on=date(2025, 3, 12)),
        reader=None,
        office_read=True,
    )

    single = generate_claims(facts)[0]

    assert [(line.code, line.date_of_service) for line in single.lines] == [
        ("D0220", CAPTURED),
        ("D0230", CAPTURED),
        ("D0220", date(2025, 3, 12)),
    ]
