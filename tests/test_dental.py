from __future__ import annotations

import pytest
from pydicom.sr._cid_dict import cid_concepts
from pydicom.sr.codedict import codes

from referral import dental
from referral.dental import (
    AREAS,
    SURFACES,
    fdi_from_universal,
    normalize_area,
    normalize_surfaces,
    normalize_tooth,
    parse_teeth,
    snomed_from_universal,
    tooth_arch,
    tooth_quadrant,
    universal_from_fdi,
    universal_from_snomed,
    universal_from_snomed_rt,
)

ALL_REGULAR_TEETH = [str(n) for n in range(1, 33)] + list("ABCDEFGHIJKLMNOPQRST")

# --- normalize_tooth ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1", "1"),
        ("32", "32"),
        ("08", "8"),
        ("  19 ", "19"),
        ("a", "A"),
        ("t", "T"),
        ("51", "51"),
        ("82", "82"),
        ("as", "AS"),
        (" Ts ", "TS"),
        (14, "14"),
    ],
)
def test_valid_tooth_designations_are_normalised(value: str | int, expected: str) -> None:
    assert normalize_tooth(value) == expected


@pytest.mark.parametrize(
    "value",
    ["0", "33", "50", "83", "U", "US", "AA", "A S", "", "  ", "1.5", "-3", "\uff18", "#3", "tooth 3", "19a"],
)
def test_anything_else_is_refused_with_a_readable_message(value: str) -> None:
    with pytest.raises(ValueError, match="is not an ADA Universal tooth number") as raised:
        normalize_tooth(value)
    assert "(1\u201332, A\u2013T, 51\u201382, AS\u2013TS)" in str(raised.value)


def test_the_refusal_message_quotes_the_input_exactly_as_specified() -> None:
    expected = "'33' is not an ADA Universal tooth number (1\u201332, A\u2013T, 51\u201382, AS\u2013TS)"
    with pytest.raises(ValueError, match="33") as raised:
        normalize_tooth("33")
    assert str(raised.value) == expected


def test_booleans_are_not_teeth() -> None:
    with pytest.raises(ValueError, match="not an ADA Universal tooth number"):
        normalize_tooth(True)


def test_long_input_is_not_echoed_in_full() -> None:
    with pytest.raises(ValueError, match="not an ADA Universal tooth number") as raised:
        normalize_tooth("9" * 500)
    assert len(str(raised.value)) < 150


# --- parse_teeth -------------------------------------------------------------------------


def test_a_comma_separated_string_is_parsed_in_order_without_duplicates() -> None:
    assert parse_teeth("3, 14,03,a, A ,51") == ["3", "14", "A", "51"]


def test_a_list_is_parsed_the_same_way() -> None:
    assert parse_teeth(["30", "k", "30", "K"]) == ["30", "K"]


def test_blank_entries_are_skipped() -> None:
    assert parse_teeth("3,,14,") == ["3", "14"]
    assert parse_teeth("") == []
    assert parse_teeth([]) == []


def test_every_bad_entry_is_listed_at_once() -> None:
    with pytest.raises(ValueError, match="tooth numbers") as raised:
        parse_teeth("3, 33, Z, 14, 0")
    message = str(raised.value)
    assert "'33'" in message
    assert "'Z'" in message
    assert "'0'" in message
    assert "'3'" not in message
    assert "'14'" not in message
    assert "are not ADA Universal tooth numbers" in message


def test_a_single_bad_entry_reads_in_the_singular() -> None:
    with pytest.raises(ValueError, match=r"^'99' is not an ADA Universal tooth number"):
        parse_teeth(["1", "99"])


# --- areas and surfaces ------------------------------------------------------------------------


def test_areas_are_the_ada_oral_cavity_codes() -> None:
    assert AREAS == {
        "00": "whole mouth",
        "01": "maxillary arch",
        "02": "mandibular arch",
        "10": "upper right quadrant",
        "20": "upper left quadrant",
        "30": "lower left quadrant",
        "40": "lower right quadrant",
    }


@pytest.mark.parametrize(
    ("value", "expected"), [("00", "00"), (" 10 ", "10"), ("1", "01"), (40, "40"), (0, "00")]
)
def test_valid_areas_are_normalised_to_two_digits(value: str | int, expected: str) -> None:
    assert normalize_area(value) == expected


@pytest.mark.parametrize("value", ["03", "11", "50", "UR", "", "010", "1O"])
def test_invalid_areas_are_refused(value: str) -> None:
    with pytest.raises(ValueError, match="is not an ADA oral area code"):
        normalize_area(value)


def test_surfaces_are_the_seven_ada_letters() -> None:
    assert SURFACES == "MOIDBFL"


@pytest.mark.parametrize(
    ("value", "expected"), [("mod", "MOD"), (" DO ", "DO"), ("MOOD", "MOD"), ("bfl", "BFL")]
)
def test_surfaces_are_uppercased_and_deduplicated_in_their_given_order(value: str, expected: str) -> None:
    assert normalize_surfaces(value) == expected


@pytest.mark.parametrize("value", ["", "  ", "MX", "M O", "M,O", "1"])
def test_invalid_surfaces_are_refused(value: str) -> None:
    with pytest.raises(ValueError, match="surface"):
        normalize_surfaces(value)


# --- arch and quadrant ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tooth", "quadrant", "arch"),
    [
        ("1", "10", "maxillary"),
        ("8", "10", "maxillary"),
        ("9", "20", "maxillary"),
        ("16", "20", "maxillary"),
        ("17", "30", "mandibular"),
        ("24", "30", "mandibular"),
        ("25", "40", "mandibular"),
        ("32", "40", "mandibular"),
        ("A", "10", "maxillary"),
        ("E", "10", "maxillary"),
        ("F", "20", "maxillary"),
        ("J", "20", "maxillary"),
        ("K", "30", "mandibular"),
        ("O", "30", "mandibular"),
        ("P", "40", "mandibular"),
        ("T", "40", "mandibular"),
        ("51", "10", "maxillary"),
        ("66", "20", "maxillary"),
        ("82", "40", "mandibular"),
        ("AS", "10", "maxillary"),
        ("ks", "30", "mandibular"),
    ],
)
def test_each_tooth_lies_in_its_quadrant_and_arch(tooth: str, quadrant: str, arch: str) -> None:
    assert tooth_quadrant(tooth) == quadrant
    assert tooth_arch(tooth) == arch


def test_every_quadrant_holds_eight_permanent_and_five_primary_teeth() -> None:
    for quadrant in ("10", "20", "30", "40"):
        teeth = [t for t in ALL_REGULAR_TEETH if tooth_quadrant(t) == quadrant]
        assert sum(t.isdigit() for t in teeth) == 8
        assert sum(not t.isdigit() for t in teeth) == 5


def test_quadrant_of_a_bad_tooth_raises() -> None:
    with pytest.raises(ValueError, match="not an ADA Universal tooth number"):
        tooth_quadrant("33")


# --- FDI ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fdi", "universal"),
    [
        ("18", "1"),
        ("11", "8"),
        ("21", "9"),
        ("28", "16"),
        ("38", "17"),
        ("36", "19"),
        ("31", "24"),
        ("41", "25"),
        ("48", "32"),
        ("55", "A"),
        ("51", "E"),
        ("61", "F"),
        ("65", "J"),
        ("75", "K"),
        ("71", "O"),
        ("81", "P"),
        ("85", "T"),
    ],
)
def test_fdi_numbers_convert_to_universal_and_back(fdi: str, universal: str) -> None:
    assert universal_from_fdi(fdi) == universal
    assert fdi_from_universal(universal) == fdi


def test_fdi_conversion_is_a_bijection_over_all_52_teeth() -> None:
    fdi_codes = {fdi_from_universal(tooth) for tooth in ALL_REGULAR_TEETH}
    assert len(fdi_codes) == 52
    assert sorted(universal_from_fdi(code) for code in fdi_codes) == sorted(ALL_REGULAR_TEETH)


@pytest.mark.parametrize("value", ["19", "56", "66", "09", "10", "91", "3", "111", "", "ab"])
def test_impossible_fdi_numbers_are_refused(value: str) -> None:
    with pytest.raises(ValueError, match="ISO 3950"):
        universal_from_fdi(value)


def test_supernumeraries_have_no_fdi_number() -> None:
    with pytest.raises(ValueError, match="supernumerary"):
        fdi_from_universal("51")


# --- SNOMED CT ---------------------------------------------------------------------------------------


def test_the_snomed_table_covers_all_52_teeth_exactly_once() -> None:
    permanent = cid_concepts[4018]["SCT"]
    deciduous = cid_concepts[4019]["SCT"]
    assert len(permanent) == 32
    assert len(deciduous) == 20
    mapped = [universal_from_snomed(getattr(codes.SCT, name).value) for name in permanent + deciduous]
    assert sorted(t for t in mapped if t is not None) == sorted(ALL_REGULAR_TEETH)


@pytest.mark.parametrize(
    ("keyword", "universal"),
    [
        ("PermanentMaxillaryRightThirdMolarTooth", "1"),
        ("PermanentMaxillaryRightCentralIncisorTooth", "8"),
        ("PermanentMaxillaryLeftCanineTooth", "11"),
        ("MandibularLeftFirstMolarTooth", "19"),  # no "Permanent" in the keyword
        ("MandibularLeftLateralTooth", "23"),  # no "Incisor" either
        ("MandibularRightSecondPremolarTooth", "29"),
        ("DeciduousMaxillaryRightSecondMolarTooth", "A"),
        ("DeciduousMaxillaryLeftCentralIncisorTooth", "F"),
        ("DeciduousMandibularLeftSecondMolarTooth", "K"),
        ("DeciduousMandibularRightCanineTooth", "R"),
    ],
)
def test_snomed_concepts_land_on_the_right_tooth(keyword: str, universal: str) -> None:
    code = getattr(codes.SCT, keyword).value
    assert universal_from_snomed(code) == universal
    assert snomed_from_universal(universal) == code


def test_snomed_lookup_of_non_teeth_gives_none() -> None:
    assert universal_from_snomed("38199008") is None  # "Tooth" in general
    assert universal_from_snomed("not a code") is None
    assert snomed_from_universal("51") is None


def test_retired_snomed_rt_ids_map_to_the_same_teeth() -> None:
    assert universal_from_snomed_rt("T-54210") == "1"
    assert universal_from_snomed_rt("t-54610") == "E"
    assert universal_from_snomed_rt("T-00000") is None


def test_keyword_parsing_refuses_what_it_cannot_place() -> None:
    with pytest.raises(ValueError, match="lacks"):
        dental._tooth_from_keyword("PermanentMaxillaryMolarTooth", default_primary=False)
    with pytest.raises(ValueError, match="unexpected word"):
        dental._tooth_from_keyword("PermanentMaxillaryRightWisdomTooth", default_primary=False)
    with pytest.raises(ValueError, match="contradicts"):
        dental._tooth_from_keyword("DeciduousMaxillaryRightCanineTooth", default_primary=False)
    with pytest.raises(ValueError, match="names no known tooth"):
        dental._tooth_from_keyword("DeciduousMaxillaryRightFirstPremolarTooth", default_primary=True)


def test_keyword_parsing_accepts_synonyms() -> None:
    assert dental._tooth_from_keyword("UpperRightCuspid", default_primary=False) == "6"
    assert dental._tooth_from_keyword("LowerLeftSecondBicuspidTooth", default_primary=False) == "20"
    assert dental._tooth_from_keyword("PrimaryUpperLeftFirstMolar", default_primary=True) == "I"
