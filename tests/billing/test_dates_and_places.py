"""Each line's date and place: the teledentistry code follows the procedures it accompanies, the alone-edit looks at
each date of service, a line performed elsewhere than its claim carries its own place, and every explanation says
where its date comes from."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime

from referral.billing.edits import check_claim
from referral.billing.engine import generate_claims
from referral.billing.model import DATE_BASES, Claim, ClaimLine
from referral.billing.profiles import PlacesOfService, get_profile
from tests.support.billing import (
    ALDER,
    CAPTURED,
    REMOTE_DENTIST,
    SIGNED,
    by_role,
    image,
    rows,
    rules_of,
    visit,
)

DEFAULT = get_profile("default")
LATER = date(2025, 3, 12)


def _line(claim: Claim, code: str) -> ClaimLine:
    return next(line for line in claim.lines if line.code == code)


def _school_visit(**overrides: object) -> list[Claim]:
    """One practice: its hygienist takes 2 BW, 2 PA and a photo at a school; its own dentist reads them the next day."""
    facts = visit(
        image("bw-right", "bitewing"),
        image("bw-left", "bitewing"),
        image("pa-14", "periapical", "14"),
        image("pa-19", "periapical", "19"),
        image("photo-1", "photo_intraoral", area="10"),
        reader=REMOTE_DENTIST,
        reader_org=ALDER,
        place_of_service="03",
        **overrides,  # type: ignore[arg-type]
    )
    return generate_claims(facts)


# -- teledentistry follows its procedures ----------------------------------------------------------------------------


def test_in_the_single_practice_case_d9996_carries_the_visit_date_not_the_signing_date() -> None:
    single = _school_visit()[0]

    assert rows(single) == [
        ("D0220", "14", 1),
        ("D0230", "19", 1),
        ("D0272", None, 1),
        ("D0350", "area 10", 1),
        ("D9996", None, 1),
    ]
    assert {line.date_of_service for line in single.lines} == {CAPTURED}
    assert _line(single, "D9996").date_basis == "visit"
    assert "teledentistry-alone" not in rules_of(single)
    assert single.status == "ready"


def test_the_single_practice_evaluation_keeps_the_reading_date_and_d9996_stays_with_the_imaging() -> None:
    single = _school_visit(evaluation=True)[0]

    assert (_line(single, "D0140").date_of_service, _line(single, "D0140").date_basis) == (SIGNED, "reading")
    assert (_line(single, "D9996").date_of_service, _line(single, "D9996").date_basis) == (CAPTURED, "visit")
    assert _line(single, "D0220").date_of_service == CAPTURED
    assert "teledentistry-alone" not in rules_of(single)


def test_images_taken_on_two_days_put_d9996_on_the_first_visit() -> None:
    facts = visit(
        image("pa-3", "periapical", "3"),
        image("pa-4", "periapical", "4", on=LATER),
        reader=REMOTE_DENTIST,
        reader_org=ALDER,
        signed_at=datetime(2025, 3, 13, 9, tzinfo=UTC),
    )

    single = generate_claims(facts)[0]

    assert [(line.code, line.date_of_service) for line in single.lines] == [
        ("D0220", CAPTURED),
        ("D0220", LATER),
        ("D9996", CAPTURED),
    ]


def test_on_the_readers_claim_d9996_carries_the_reading_date_with_d0391() -> None:
    claims = by_role(generate_claims(visit(image("pa-3", "periapical", "3"))))

    reading = claims["interpretation"]
    assert [(line.code, line.date_of_service, line.date_basis) for line in reading.lines] == [
        ("D0391", SIGNED, "reading"),
        ("D9996", SIGNED, "reading"),
    ]
    capture = claims["capture"]
    assert [(line.code, line.date_of_service, line.date_basis) for line in capture.lines] == [
        ("D0707", CAPTURED, "capture")
    ]


def test_a_live_consult_in_one_practice_dates_d9995_with_the_visit() -> None:
    single = _school_visit(mode="synchronous", signed_at=datetime(2025, 3, 14, 9, tzinfo=UTC))[0]

    assert _line(single, "D9995").date_of_service == CAPTURED


# -- the alone-edit is per date of service ---------------------------------------------------------------------------


def test_a_teledentistry_code_alone_on_its_date_is_held_even_beside_lines_of_other_dates() -> None:
    single = _school_visit()[0]
    # Move the teledentistry line to a day of its own, as the engine used to date it.
    moved = replace(
        single,
        lines=tuple(
            replace(line, date_of_service=SIGNED) if line.code == "D9996" else line for line in single.lines
        ),
    )

    edits = [edit for edit in check_claim(moved, visit(), DEFAULT) if edit.rule == "teledentistry-alone"]

    assert len(edits) == 1
    assert edits[0].severity == "hold"
    assert edits[0].line_numbers == (_line(moved, "D9996").number,)
    assert str(SIGNED) in edits[0].message
    assert str(CAPTURED) in edits[0].message  # where the other procedures are


def test_a_teledentistry_code_beside_a_procedure_of_its_own_date_is_not_held() -> None:
    reading = by_role(generate_claims(visit(image("pa-3", "periapical", "3"))))["interpretation"]

    assert "teledentistry-alone" not in [edit.rule for edit in check_claim(reading, visit(), DEFAULT)]


def test_a_readers_claim_whose_only_procedure_is_on_another_date_is_held() -> None:
    # The reader's practice took the only radiograph itself on the visit day and signed two days later.
    facts = visit(image("pa-4", "periapical", "4", org=replace(ALDER, id="org-birch")))

    reading = by_role(generate_claims(facts))["interpretation"]

    assert [(line.code, line.date_of_service) for line in reading.lines] == [("D0220", CAPTURED), ("D9996", SIGNED)]
    assert "teledentistry-alone" in rules_of(reading)


# -- line-level place of service -------------------------------------------------------------------------------------


def test_the_single_practice_imaging_lines_carry_the_school_where_the_claim_carries_telehealth() -> None:
    single = _school_visit()[0]

    assert single.place_of_service == "02"
    assert [(line.code, line.place_of_service) for line in single.lines] == [
        ("D0220", "03"),
        ("D0230", "03"),
        ("D0272", "03"),
        ("D0350", "03"),
        ("D9996", None),
    ]
    assert "place of service 03 (school), not the claim's 02" in _line(single, "D0220").explanation


def test_lines_performed_where_the_claim_says_carry_no_place_of_their_own() -> None:
    claims = by_role(generate_claims(visit(image("pa-3", "periapical", "3"), place_of_service="03")))

    assert claims["capture"].place_of_service == "03"
    assert all(line.place_of_service is None for claim in claims.values() for line in claim.lines)


def test_an_image_taken_at_another_site_gets_its_own_line_with_that_place() -> None:
    facts = visit(
        image("pa-3", "periapical", "3"),
        image("pa-3-office", "periapical", "3", place_of_service="11"),
        place_of_service="03",
    )

    capture = by_role(generate_claims(facts))["capture"]

    assert [(line.code, line.tooth, line.quantity, line.place_of_service) for line in capture.lines] == [
        ("D0707", "3", 1, None),
        ("D0707", "3", 1, "11"),
    ]
    assert capture.place_of_service == "03"


def test_the_capturing_dentists_exam_on_a_telehealth_claim_carries_the_site_where_it_happened() -> None:
    single = _school_visit(office_evaluation=True)[0]

    exam = _line(single, "D0140")
    assert (exam.date_of_service, exam.place_of_service, exam.date_basis) == (CAPTURED, "03", "visit")


def test_a_payer_that_fixes_the_capture_place_gets_it_on_every_capture_line() -> None:
    profile = replace(DEFAULT, places_of_service=PlacesOfService(capture="11"))
    facts = visit(image("pa-3", "periapical", "3"), reader=REMOTE_DENTIST, reader_org=ALDER, place_of_service="03")

    single = generate_claims(facts, profile)[0]

    assert [(line.code, line.place_of_service) for line in single.lines] == [("D0220", "11"), ("D9996", None)]


# -- every date is traceable -----------------------------------------------------------------------------------------


def test_every_line_says_in_its_explanation_what_its_date_is() -> None:
    claims = generate_claims(visit(image("pa-3", "periapical", "3"), image("ph", "photo_intraoral"), evaluation=True))
    claims += _school_visit(evaluation=True)

    for claim in claims:
        for line in claim.lines:
            assert line.date_basis in DATE_BASES
            assert f"Dated {line.date_of_service}: {DATE_BASES[line.date_basis]}." in line.explanation


def test_capture_lines_are_dated_by_their_images_and_reading_lines_by_the_signature() -> None:
    facts = visit(image("pa-3", "periapical", "3"), image("pa-5", "periapical", "5", on=LATER))

    claims = by_role(generate_claims(facts))

    for line in claims["capture"].lines:
        assert line.date_basis == "capture"
        assert {facts_image.captured_on for facts_image in facts.images if facts_image.id in line.image_ids} == {
            line.date_of_service
        }
    assert {line.date_of_service for line in claims["interpretation"].lines} == {SIGNED}
