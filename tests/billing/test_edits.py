"""Each edit: facts that trigger it and facts that do not. A hold keeps the claim from being sent."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest

from referral.billing.edits import check_claim
from referral.billing.engine import generate_claims
from referral.billing.model import Claim, CoverageFacts, Edit, ImageFacts, OrganizationFacts, PriorLine
from referral.billing.profiles import PayerProfile, get_profile
from tests.support.billing import ALDER, BIRCH, CAPTURED, SIGNED, by_role, image, rows, rules_of, units, visit

DEFAULT = get_profile("default")
MEDICAID = get_profile("medicaid-example")
PPO = get_profile("ppo-example")
PPO_NO_CAPTURE = get_profile("ppo-no-capture-only")


def _edit(claim: Claim, rule: str) -> Edit:
    matches = [edit for edit in claim.edits if edit.rule == rule]
    assert len(matches) == 1, f"expected one {rule} edit, got {claim.edits}"
    return matches[0]


def _single(*images: ImageFacts, profile: PayerProfile | None = None, **kwargs: Any) -> Claim:
    claims = generate_claims(visit(*images, reader=None, office_read=True, **kwargs), profile)
    assert [claim.role for claim in claims] == ["single"]
    return claims[0]


def _split(*images: ImageFacts, profile: PayerProfile | None = None, **kwargs: Any) -> dict[str, Claim]:
    return by_role(generate_claims(visit(*images, **kwargs), profile))


# -- images that are not billed -------------------------------------------------------------------------------------


def test_a_retake_is_left_out_with_a_warning_naming_it() -> None:
    claims = _split(image("pa-1", "periapical", "3"), image("pa-2", "periapical", "3", retake_of="pa-1"))

    assert rows(claims["capture"]) == [("D0707", "3", 1)]
    assert claims["capture"].lines[0].image_ids == ("pa-1",)
    assert units(claims["interpretation"])["D0391"] == 1
    edit = _edit(claims["capture"], "not-billable-images")
    assert edit.severity == "warning"
    assert "pa-2 (retake of image pa-1" in edit.message
    assert claims["capture"].status == "ready"


def test_a_nondiagnostic_original_is_left_out_and_its_diagnostic_retake_is_billed_instead() -> None:
    claims = _split(
        image("pa-1", "periapical", "3", nondiagnostic=True), image("pa-2", "periapical", "3", retake_of="pa-1")
    )

    assert claims["capture"].lines[0].image_ids == ("pa-2",)
    assert "pa-1 (not of diagnostic quality)" in _edit(claims["capture"], "not-billable-images").message
    assert units(claims["interpretation"])["D0391"] == 1


def test_a_nondiagnostic_image_is_not_billed_and_not_read() -> None:
    claims = _split(image("pa-1", "periapical", "3"), image("pa-2", "periapical", "4", nondiagnostic=True))

    assert rows(claims["capture"]) == [("D0707", "3", 1)]
    assert rows(claims["interpretation"]) == [("D0391", "3", 1), ("D9996", None, 1)]
    assert "pa-2 (not of diagnostic quality)" in _edit(claims["interpretation"], "not-billable-images").message


def test_diagnostic_first_exposures_raise_no_left_out_warning() -> None:
    claims = _split(image("pa-1", "periapical", "3"), image("pa-2", "periapical", "4"))

    assert all("not-billable-images" not in rules_of(claim) for claim in claims.values())


def test_an_image_of_an_unknown_kind_holds_the_claim() -> None:
    claims = _split(image("pa-1", "periapical", "3"), image("x-1", "hologram"))

    edit = _edit(claims["capture"], "unknown-image-kind")
    assert edit.severity == "hold"
    assert "x-1" in edit.message
    assert claims["capture"].status == "hold"


def test_known_kinds_raise_no_unknown_kind_hold() -> None:
    claims = _split(image("pa-1", "periapical", "3"), image("pano", "panoramic"), image("ceph", "cephalometric"))

    assert "unknown-image-kind" not in rules_of(claims["capture"])
    assert units(claims["capture"]) == {"D0707": 1, "D0701": 1, "D0702": 1}


# -- bitewing counts ------------------------------------------------------------------------------------------------


def test_six_bitewings_are_billed_as_the_set_of_four_with_a_warning() -> None:
    single = _single(*(image(f"bw-{n}", "bitewing") for n in range(6)))

    assert rows(single) == [("D0274", None, 1)]
    edit = _edit(single, "bitewing-count")
    assert edit.severity == "warning"
    assert "6 bitewings" in edit.message


def test_four_and_eight_bitewings_have_their_own_group_codes_and_no_warning() -> None:
    four = _single(*(image(f"bw-{n}", "bitewing") for n in range(4)))
    eight = _single(*(image(f"bw-{n}", "bitewing") for n in range(8)))

    assert rows(four) == [("D0274", None, 1)]
    assert rows(eight) == [("D0277", None, 1)]
    assert "bitewing-count" not in rules_of(four) + rules_of(eight)


# -- periapical sequencing ------------------------------------------------------------------------------------------


def _three_periapicals() -> Claim:
    return _single(image("pa-30", "periapical", "30"), image("pa-29", "periapical", "29"))


def test_d0230_without_a_d0220_on_the_same_day_is_held() -> None:
    claim = _three_periapicals()
    orphan = replace(claim, lines=tuple(line for line in claim.lines if line.code != "D0220"))

    edits = check_claim(orphan, visit(reader=None, office_read=True), DEFAULT)

    assert [(edit.rule, edit.severity) for edit in edits] == [("d0230-needs-d0220", "hold")]


def test_d0230_beside_its_d0220_is_not_held() -> None:
    claim = _three_periapicals()

    assert "d0230-needs-d0220" not in rules_of(claim)
    assert claim.status == "ready"


# -- complete series ------------------------------------------------------------------------------------------------


def _series(count: int = 4, series_id: str = "fmx-1") -> list[ImageFacts]:
    return [image(f"fmx-{n}", "complete_series", str(n + 1), series_id=series_id) for n in range(count)]


def test_a_complete_series_with_a_same_day_periapical_is_held() -> None:
    single = _single(*_series(), image("pa-30", "periapical", "30"))

    edit = _edit(single, "complete-series-exclusive")
    assert edit.severity == "hold"
    assert [single.lines[n - 1].code for n in edit.line_numbers] == ["D0220"]


def test_a_capture_only_series_with_a_same_day_capture_only_bitewing_is_held() -> None:
    claims = _split(*_series(), image("bw-1", "bitewing"))

    assert units(claims["capture"]) == {"D0709": 1, "D0708": 1}
    assert _edit(claims["capture"], "complete-series-exclusive").severity == "hold"


def test_a_complete_series_alone_is_one_line_and_not_held() -> None:
    single = _single(*_series())
    claims = _split(*_series())

    assert rows(single) == [("D0210", None, 1)]
    assert rows(claims["capture"]) == [("D0709", None, 1)]
    # The reader read four images of one series: one D0391 line for the series, one unit per image.
    assert rows(claims["interpretation"]) == [("D0391", "area 00", 4), ("D9996", None, 1)]
    assert "complete-series-exclusive" not in rules_of(single) + rules_of(claims["capture"])


def test_a_periapical_on_another_day_than_the_series_is_not_held() -> None:
    single = _single(*_series(), image("pa-30", "periapical", "30", on=date(2025, 3, 20)))

    assert "complete-series-exclusive" not in rules_of(single)


# -- fees that reach the complete-series fee ------------------------------------------------------------------------


def _fee_visit_periapicals(count: int) -> list[ImageFacts]:
    return [image(f"pa-{n}", "periapical", str(n)) for n in range(1, count + 1)]


def _with_series_fee(amount: str) -> OrganizationFacts:
    return replace(ALDER, fee_schedule={**ALDER.fee_schedule, "D0210": Decimal(amount)})


def test_same_day_periapical_fees_equal_to_the_series_fee_warn_under_the_default_profile() -> None:
    # 30 + 25 + 25 = 80
    single = _single(*_fee_visit_periapicals(3), capturing=_with_series_fee("80.00"))

    edit = _edit(single, "complete-series-fee")
    assert edit.severity == "warning"
    assert "80.00" in edit.message
    assert single.status == "ready"


def test_same_day_fees_equal_to_the_series_fee_do_not_warn_under_a_payer_that_compares_with_exceeds() -> None:
    single = _single(*_fee_visit_periapicals(3), capturing=_with_series_fee("80.00"), profile=PPO)

    assert "complete-series-fee" not in rules_of(single)


def test_same_day_fees_above_the_series_fee_warn_under_a_payer_that_compares_with_exceeds() -> None:
    single = _single(*_fee_visit_periapicals(4), capturing=_with_series_fee("80.00"), profile=PPO)

    assert _edit(single, "complete-series-fee").severity == "warning"


def test_same_day_fees_below_the_series_fee_do_not_warn() -> None:
    single = _single(*_fee_visit_periapicals(2), capturing=_with_series_fee("80.00"))

    assert "complete-series-fee" not in rules_of(single)


def test_capture_only_periapical_and_bitewing_fees_are_compared_with_the_capture_only_series_fee() -> None:
    cheap_series = replace(ALDER, fee_schedule={**ALDER.fee_schedule, "D0709": Decimal("38.00")})

    claims = _split(image("pa-1", "periapical", "3"), image("bw-1", "bitewing"), capturing=cheap_series)

    # D0707 20 + D0708 18 = 38
    assert "D0709 fee" in _edit(claims["capture"], "complete-series-fee").message


# -- tooth or area on periapicals -----------------------------------------------------------------------------------


def test_a_periapical_without_tooth_or_area_warns_by_default() -> None:
    claims = _split(image("pa-1", "periapical"))

    edit = _edit(claims["capture"], "periapical-location")
    assert edit.severity == "warning"
    assert claims["capture"].status == "ready"


def test_a_periapical_without_tooth_or_area_is_held_where_the_payer_requires_it() -> None:
    claims = _split(image("pa-1", "periapical"), profile=MEDICAID)

    assert _edit(claims["capture"], "periapical-location").severity == "hold"


def test_periapicals_with_a_tooth_or_an_area_raise_no_location_edit() -> None:
    claims = _split(image("pa-1", "periapical", "3"), image("pa-2", "periapical", area="40"), profile=MEDICAID)

    assert "periapical-location" not in rules_of(claims["capture"])


# -- per-day caps ---------------------------------------------------------------------------------------------------


def test_more_additional_periapicals_than_the_daily_cap_are_held() -> None:
    single = _single(*_fee_visit_periapicals(5), profile=MEDICAID)

    edit = _edit(single, "daily-cap")
    assert edit.severity == "hold"
    assert "D0230: 4 units" in edit.message
    assert single.status == "hold"


def test_periapicals_within_the_daily_cap_are_not_held() -> None:
    single = _single(*_fee_visit_periapicals(4), profile=MEDICAID)

    assert "daily-cap" not in rules_of(single)


def test_a_first_periapical_already_billed_that_day_counts_against_the_cap() -> None:
    prior = (PriorLine("D0220", CAPTURED, "8", "org-elsewhere"),)

    single = _single(image("pa-3", "periapical", "3"), profile=MEDICAID, prior=prior)

    assert "1 of them on earlier claims" in _edit(single, "daily-cap").message


def test_capture_only_periapicals_are_capped_like_the_ones_they_mirror() -> None:
    held = _split(*_fee_visit_periapicals(5), profile=MEDICAID)
    fine = _split(*_fee_visit_periapicals(4), profile=MEDICAID)

    assert "D0707: 5 units" in _edit(held["capture"], "daily-cap").message
    assert "daily-cap" not in rules_of(fine["capture"])


def test_a_second_teledentistry_code_by_the_same_practice_that_day_is_held() -> None:
    prior = (PriorLine("D9996", SIGNED, None, BIRCH.id),)

    claims = _split(image("pa-3", "periapical", "3"), prior=prior)

    assert _edit(claims["interpretation"], "daily-cap").severity == "hold"


def test_a_teledentistry_code_billed_by_another_practice_that_day_does_not_count() -> None:
    prior = (PriorLine("D9996", SIGNED, None, "org-elsewhere"),)

    claims = _split(image("pa-3", "periapical", "3"), prior=prior)

    assert "daily-cap" not in rules_of(claims["interpretation"])


# -- frequency with look-back ---------------------------------------------------------------------------------------


def test_a_panoramic_within_36_months_of_an_earlier_complete_series_is_held() -> None:
    prior = (PriorLine("D0210", date(2023, 6, 1), None, "org-elsewhere"),)

    claims = _split(image("pano", "panoramic"), profile=MEDICAID, prior=prior)

    edit = _edit(claims["capture"], "frequency")
    assert edit.severity == "hold"
    assert "D0210 on 2023-06-01" in edit.message
    assert "36 months" in edit.message


def test_a_panoramic_on_the_36_month_anniversary_of_the_last_one_is_not_held() -> None:
    prior = (PriorLine("D0330", date(2022, 3, 10), None, "org-elsewhere"),)

    claims = _split(image("pano", "panoramic"), profile=MEDICAID, prior=prior)

    assert "frequency" not in rules_of(claims["capture"])


def test_frequency_limits_do_not_apply_under_a_profile_without_them() -> None:
    prior = (PriorLine("D0210", date(2024, 6, 1)),)

    claims = _split(image("pano", "panoramic"), prior=prior)

    assert "frequency" not in rules_of(claims["capture"])


# -- photos alone ---------------------------------------------------------------------------------------------------


def test_photos_as_the_only_procedure_warn() -> None:
    claims = _split(image("photo-1", "photo_intraoral"), image("photo-2", "photo_extraoral"))

    assert rows(claims["capture"]) == [("D0703", None, 1)]
    assert _edit(claims["capture"], "photos-only").severity == "warning"


def test_photos_with_a_radiograph_do_not_warn() -> None:
    claims = _split(image("photo-1", "photo_intraoral"), image("pa-1", "periapical", "3"))

    assert "photos-only" not in rules_of(claims["capture"])


# -- D0391 guards ---------------------------------------------------------------------------------------------------


def test_d0391_with_an_unsigned_report_is_held() -> None:
    reading = _split(image("pa-3", "periapical", "3"))["interpretation"]

    edits = check_claim(reading, visit(image("pa-3", "periapical", "3"), signed_at=None), DEFAULT)

    assert ("d0391-needs-signed-report", "hold") in [(edit.rule, edit.severity) for edit in edits]


def test_d0391_by_a_reader_whose_practice_captured_the_image_is_held() -> None:
    reading = _split(image("pa-3", "periapical", "3"))["interpretation"]

    edits = check_claim(reading, visit(image("pa-3", "periapical", "3", org=BIRCH)), DEFAULT)

    assert ("d0391-reader-captured", "hold") in [(edit.rule, edit.severity) for edit in edits]


def test_the_reader_bills_its_own_practices_capture_with_the_full_code_never_d0391() -> None:
    claims = _split(image("pa-3", "periapical", "3"), image("pa-4", "periapical", "4", org=BIRCH))

    assert rows(claims["capture"]) == [("D0707", "3", 1)]
    assert rows(claims["interpretation"]) == [("D0220", "4", 1), ("D0391", "3", 1), ("D9996", None, 1)]
    assert not {"d0391-reader-captured", "d0391-needs-signed-report"} & set(rules_of(claims["interpretation"]))


# -- code validity by date of service -------------------------------------------------------------------------------


def test_capture_only_codes_before_2021_are_held() -> None:
    claims = _split(
        image("pa-3", "periapical", "3", on=date(2020, 12, 31)),
        signed_at=datetime(2021, 1, 2, 9, 0, tzinfo=UTC),
    )

    edit = _edit(claims["capture"], "code-validity")
    assert edit.severity == "hold"
    assert "2021-01-01" in edit.message
    assert rows(claims["capture"]) == [("D0707", "3", 1)]  # held, never recoded


def test_capture_only_codes_from_2021_are_valid() -> None:
    claims = _split(image("pa-3", "periapical", "3", on=date(2021, 1, 1)))

    assert "code-validity" not in rules_of(claims["capture"])


def test_teledentistry_before_2018_is_held() -> None:
    claims = _split(
        image("pa-3", "periapical", "3", on=date(2017, 12, 1)),
        signed_at=datetime(2017, 12, 2, 9, 0, tzinfo=UTC),
    )

    edit = _edit(claims["interpretation"], "code-validity")
    assert edit.line_numbers == (2,)
    assert "D9996" in edit.message


def test_a_retired_code_on_a_later_date_is_held() -> None:
    claim = _split(image("pa-3", "periapical", "3"))["capture"]
    retired = replace(claim, lines=(replace(claim.lines[0], code="D0704"),))

    edits = check_claim(retired, visit(), DEFAULT)

    assert [(edit.rule, edit.severity) for edit in edits if edit.rule == "code-validity"] == [("code-validity", "hold")]
    assert "retired after 2022-12-31" in edits[0].message


# -- teledentistry code alone ---------------------------------------------------------------------------------------


def test_a_reading_claim_with_only_the_teledentistry_code_is_held() -> None:
    claims = _split(image("photo-1", "photo_intraoral"))

    reading = claims["interpretation"]
    assert rows(reading) == [("D9996", None, 1)]
    assert _edit(reading, "teledentistry-alone").severity == "hold"


def test_a_teledentistry_code_beside_an_evaluation_is_not_alone() -> None:
    claims = _split(image("photo-1", "photo_intraoral"), evaluation=True)

    assert rows(claims["interpretation"]) == [("D0140", None, 1), ("D9996", None, 1)]
    assert "teledentistry-alone" not in rules_of(claims["interpretation"])


# -- codes the payer does not take ----------------------------------------------------------------------------------


def test_a_payer_without_capture_only_codes_keeps_the_lines_and_holds_for_the_plans_instructions() -> None:
    coverage = CoverageFacts("EXAMPLE-PPO-NO-CAPTURE", "Example PPO", "M9")

    claims = _split(image("pa-3", "periapical", "3"), image("photo-1", "photo_intraoral"), coverage=coverage)

    capture = claims["capture"]
    assert capture.payer_profile == "ppo-no-capture-only"
    assert rows(capture) == [("D0707", "3", 1), ("D0703", None, 1)]
    edit = _edit(capture, "payer-code-not-recognised")
    assert edit.severity == "hold"
    assert edit.line_numbers == (1, 2)
    assert "does not accept capture-only codes" in edit.message
    assert "plan's instructions" in edit.message
    assert claims["interpretation"].status == "ready"


def test_a_payer_that_takes_capture_only_codes_raises_no_recognition_hold() -> None:
    claims = _split(image("pa-3", "periapical", "3"), profile=PPO)

    assert "payer-code-not-recognised" not in rules_of(claims["capture"])


# -- what profiles change -------------------------------------------------------------------------------------------


def test_the_coverages_payer_id_selects_the_profile_and_unknown_payers_get_the_default() -> None:
    medicaid = _split(image("pa-3", "periapical", "3"), coverage=CoverageFacts("EXAMPLE-MEDICAID", "State", "M1"))
    unknown = _split(image("pa-3", "periapical", "3"), coverage=CoverageFacts("NOBODY", "Nobody", "M1"))
    uninsured = _split(image("pa-3", "periapical", "3"), coverage=None)

    assert {claim.payer_profile for claim in medicaid.values()} == {"medicaid-example"}
    assert {claim.payer_profile for claim in unknown.values()} == {"default"}
    assert {claim.payer_profile for claim in uninsured.values()} == {"default"}


def test_a_medicaid_profile_puts_pos_02_on_the_readers_claim_even_when_the_patient_was_home() -> None:
    claims = _split(image("pa-3", "periapical", "3"), place_of_service="12", profile=MEDICAID)

    assert claims["interpretation"].place_of_service == "02"
    assert claims["capture"].place_of_service == "12"


def test_a_profile_can_choose_another_evaluation_code() -> None:
    re_evaluation = replace(DEFAULT, id="re-evaluation", evaluation_code="D0170")

    claims = _split(image("pa-3", "periapical", "3"), evaluation=True, profile=re_evaluation)

    assert units(claims["interpretation"])["D0170"] == 1
    assert "D0140" not in units(claims["interpretation"])


def test_the_capturing_office_evaluation_goes_on_the_capturing_claim_not_the_readers() -> None:
    claims = _split(image("pa-3", "periapical", "3"), office_evaluation=True)

    assert rows(claims["capture"]) == [("D0140", None, 1), ("D0707", "3", 1)]
    assert "D0140" not in units(claims["interpretation"])


@pytest.mark.parametrize(
    ("kind", "capture_code", "full_code"),
    [
        ("occlusal", "D0706", "D0240"),
        ("extraoral_posterior", "D0705", "D0251"),
        ("panoramic", "D0701", "D0330"),
        ("cephalometric", "D0702", "D0340"),
        ("cbct_limited", "D0380", "D0364"),
    ],
)
def test_each_kind_has_its_capture_only_code_and_its_full_code(kind: str, capture_code: str, full_code: str) -> None:
    assert units(_split(image("i", kind))["capture"]) == {capture_code: 1}
    assert units(_single(image("i", kind))) == {full_code: 1}


def test_a_multi_tooth_image_keeps_its_teeth_on_a_line_of_quantity_one() -> None:
    claims = _split(image("pa-1", "periapical", "29", "30", "31"), image("pa-2", "periapical", "29", "30", "31"))

    assert rows(claims["capture"]) == [("D0707", "29,30,31", 1), ("D0707", "29,30,31", 1)]
    assert all(line.tooth is None and line.teeth for line in claims["capture"].lines)


def test_inconsistent_reader_facts_are_refused() -> None:
    with pytest.raises(ValueError, match="organization and a provider"):
        generate_claims(replace(visit(image("pa-3", "periapical", "3")), reader_organization=None))
    with pytest.raises(ValueError, match="mode"):
        generate_claims(visit(image("pa-3", "periapical", "3"), mode="carrier pigeon"))
