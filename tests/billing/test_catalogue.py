"""The code catalogue (validity dates, twins, our own labels) and the payer profiles shipped as data."""

from __future__ import annotations

from datetime import date

import pytest

from referral.billing.catalogue import (
    CAPTURE_AND_INTERPRETATION,
    CAPTURE_ONLY,
    CATALOGUE,
    TWINS,
    UnknownCode,
    capture_only_twin,
    is_valid_on,
    label,
    twins_of,
)
from referral.billing.engine import KINDS, generate_claims
from referral.billing.profiles import (
    ProfileError,
    all_profiles,
    get_profile,
    load_profile,
    parse_profile,
)
from tests.support.billing import image, visit

CAPTURE_ONLY_FAMILY = ["D0701", "D0702", "D0703", "D0704", "D0705", "D0706", "D0707", "D0708", "D0709"]


@pytest.mark.parametrize("code", CAPTURE_ONLY_FAMILY)
def test_capture_only_codes_are_valid_from_2021(code: str) -> None:
    assert not is_valid_on(code, date(2020, 12, 31))
    assert is_valid_on(code, date(2021, 1, 1))


@pytest.mark.parametrize("code", ["D0704", "D0351"])
def test_the_3d_photo_codes_end_with_2022(code: str) -> None:
    assert is_valid_on(code, date(2022, 12, 31))
    assert not is_valid_on(code, date(2023, 1, 1))


@pytest.mark.parametrize("code", ["D9995", "D9996"])
def test_teledentistry_codes_are_valid_from_2018(code: str) -> None:
    assert not is_valid_on(code, date(2017, 12, 31))
    assert is_valid_on(code, date(2018, 1, 1))


def test_cbct_capture_only_codes_date_from_the_2013_split() -> None:
    assert all(is_valid_on(code, date(2013, 1, 1)) for code in ("D0380", "D0381", "D0382", "D0383", "D0384"))
    assert not is_valid_on("D0380", date(2012, 12, 31))


def test_long_standing_codes_have_no_start_date_to_trip_over() -> None:
    assert all(is_valid_on(code, date(2000, 1, 1)) for code in ("D0210", "D0220", "D0230", "D0140", "D0391"))


def test_an_uncatalogued_code_is_an_error_not_a_guess() -> None:
    with pytest.raises(UnknownCode):
        is_valid_on("D1110", date(2025, 1, 1))
    assert label("D1110") == ""


def test_the_catalogue_holds_every_code_the_brief_names() -> None:
    named = {
        *CAPTURE_ONLY_FAMILY,
        *("D9995", "D9996", "D0380", "D0381", "D0382", "D0383", "D0384", "D0391", "D0220", "D0230", "D0210"),
        *("D0240", "D0251", "D0270", "D0272", "D0273", "D0274", "D0277", "D0330", "D0340", "D0350", "D0351"),
        *("D0364", "D0365", "D0366", "D0367", "D0368", "D0140", "D0120", "D0150", "D0170", "D0171"),
    }
    assert named <= set(CATALOGUE)


def test_every_twin_pairs_a_capture_only_code_with_capture_and_reading_codes_both_ways() -> None:
    for capture, fulls in TWINS.items():
        assert CATALOGUE[capture].category == CAPTURE_ONLY
        for full in fulls:
            assert CATALOGUE[full].category == CAPTURE_AND_INTERPRETATION
            assert capture_only_twin(full) == capture
            assert capture in twins_of(full)
            assert full in twins_of(capture)
    assert twins_of("D0391") == frozenset()


def test_the_twin_table_covers_rule_2_of_the_research() -> None:
    assert TWINS["D0707"] == ("D0220", "D0230")
    assert {"D0270", "D0272", "D0273", "D0274"} <= set(TWINS["D0708"])
    expected = {"D0709": "D0210", "D0706": "D0240", "D0705": "D0251", "D0701": "D0330", "D0702": "D0340"}
    expected |= {"D0703": "D0350", "D0380": "D0364", "D0381": "D0365", "D0382": "D0366", "D0383": "D0367"}
    expected |= {"D0384": "D0368"}
    assert all(full in TWINS[capture] for capture, full in expected.items())


def test_labels_are_our_own_short_words_not_the_cdt_nomenclature() -> None:
    for code, procedure in CATALOGUE.items():
        assert procedure.label, code
        assert len(procedure.label) <= 60, code
        # CDT nomenclature is built on these phrases; our labels avoid them.
        assert "radiographic image" not in procedure.label, code
        assert "image capture only" not in procedure.label, code


def test_every_code_the_engine_emits_for_every_kind_is_catalogued_and_labelled() -> None:
    images = [image(f"img-{kind}", kind, "3") for kind in sorted(KINDS)]
    emitted = set()
    for facts in (
        visit(*images, evaluation=True),
        visit(*images, office_read=True, office_evaluation=True),
        visit(*images, mode="synchronous", reader=None, office_read=True),
    ):
        emitted |= {line.code for claim in generate_claims(facts) for line in claim.lines}
    assert emitted <= set(CATALOGUE)
    assert all(label(code) for code in emitted)


# -- profiles ----------------------------------------------------------------------------------------------------------


def test_the_shipped_profiles_load_with_their_file_names_as_ids() -> None:
    assert {profile.id for profile in all_profiles()} == {
        "default",
        "medicaid-example",
        "ppo-example",
        "ppo-no-capture-only",
    }


def test_the_default_profile_implements_the_products_billing_rules() -> None:
    default = get_profile("default")

    assert default.d0391_unit == "image"
    assert default.photo_unit == "visit"
    assert default.evaluation_code == "D0140"
    assert default.rebundle_comparator == ">="
    assert default.places_of_service.teledentistry == "02"
    assert default.places_of_service.teledentistry_at_home == "10"
    assert default.places_of_service.capture is None
    assert default.complete_series_exclusive
    assert not default.unrecognised_codes
    assert default.payer_ids == ()


def test_the_medicaid_example_caps_periapicals_and_occlusals_per_day_and_mirrors_them_on_capture_only_codes() -> None:
    caps = {cap.codes: cap.max_units for cap in get_profile("medicaid-example").daily_caps}

    assert caps[("D0220",)] == 1
    assert caps[("D0230",)] == 3
    assert caps[("D0240",)] == 2
    assert caps[("D0707",)] == 4
    assert caps[("D0706",)] == 2


def test_the_medicaid_example_limits_complete_series_and_panoramic_with_their_twins_to_one_per_36_months() -> None:
    limits = {rule.codes: (rule.max_occasions, rule.months) for rule in get_profile("medicaid-example").frequencies}

    assert limits[("D0210", "D0330", "D0701", "D0709")] == (1, 36)


def test_the_no_capture_only_variant_extends_the_ppo_without_taking_its_payer_ids() -> None:
    parent, variant = get_profile("ppo-example"), get_profile("ppo-no-capture-only")

    assert variant.frequencies == parent.frequencies
    assert variant.rebundle_comparator == parent.rebundle_comparator
    assert variant.unrecognised_codes == frozenset(CAPTURE_ONLY_FAMILY)
    assert not set(variant.payer_ids) & set(parent.payer_ids)


def test_a_payer_id_selects_its_profile_and_anything_else_gets_the_default() -> None:
    assert load_profile("EXAMPLE-MEDICAID").id == "medicaid-example"
    assert load_profile(" EXAMPLE-PPO ").id == "ppo-example"
    assert load_profile("SOMEONE-ELSE").id == "default"
    assert load_profile("").id == "default"
    assert load_profile(None).id == "default"


def test_no_two_profiles_claim_the_same_payer_id() -> None:
    payer_ids = [payer_id for profile in all_profiles() for payer_id in profile.payer_ids]

    assert len(payer_ids) == len(set(payer_ids))


@pytest.mark.parametrize(
    ("data", "complaint"),
    [
        ({"id": "x", "colour": "blue"}, "unknown keys"),
        ({"id": "x", "d0391_unit": "per tooth"}, "d0391_unit"),
        ({"id": "x", "photo_unit": "per smile"}, "photo_unit"),
        ({"id": "x", "evaluation_code": "D0220"}, "not an evaluation code"),
        ({"id": "x", "unrecognised_codes": ["D9999"]}, "does not know"),
        ({"id": "x", "daily_caps": [{"codes": ["D0220"], "max_units": 0}]}, "positive whole number"),
        ({"id": "x", "daily_caps": [{"codes": ["D0220"], "max_units": True}]}, "positive whole number"),
        ({"id": "x", "frequencies": [{"codes": [], "max_occasions": 1, "months": 36}]}, "non-empty list"),
        ({"id": "x", "places_of_service": {"teledentistry": "2"}}, "two-digit"),
        ({"id": "x", "rebundle_comparator": "=>"}, "rebundle_comparator"),
        ({"id": ""}, "id"),
    ],
)
def test_a_profile_that_says_something_unclear_is_refused(data: dict, complaint: str) -> None:
    with pytest.raises(ProfileError, match=complaint):
        parse_profile(data)


def test_a_minimal_profile_takes_the_product_defaults() -> None:
    profile = parse_profile({"id": "minimal"})

    assert profile.d0391_unit == "image"
    assert profile.photo_unit == "visit"
    assert profile.rebundle_comparator == ">="
    assert profile.places_of_service.teledentistry_at_home == "10"
