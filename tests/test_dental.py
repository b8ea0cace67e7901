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


# --- every code family, every tooth ----------------------------------------------------------------------

# Universal, FDI, SNOMED CT in CID 4018/4019 today, SNOMED CT in editions before about 2020 (as in pydicom
# 2.x), SNOMED RT (PS3.16 Annex O). Written out from those sources, not computed, so the tables are checked
# against something they were not made from.
TOOTH_CODES = [
    ("1", "18", "68085002", "68085002", "T-54210"), ("2", "17", "863902006", "7121006", "T-54220"),
    ("3", "16", "865995000", "5140004", "T-54230"), ("4", "15", "36492000", "36492000", "T-54240"),
    ("5", "14", "57826002", "57826002", "T-54250"), ("6", "13", "860767006", "80647007", "T-54260"),
    ("7", "12", "424877001", "11712009", "T-54270"), ("8", "11", "422653006", "22120004", "T-54280"),
    ("9", "21", "424399000", "31982000", "T-54290"), ("10", "22", "423185002", "25748002", "T-54300"),
    ("11", "23", "860780009", "72876007", "T-54310"), ("12", "24", "61897005", "61897005", "T-54320"),
    ("13", "25", "23226009", "23226009", "T-54330"), ("14", "26", "865988009", "23427002", "T-54340"),
    ("15", "27", "863901004", "66303006", "T-54350"), ("16", "28", "87704003", "87704003", "T-54360"),
    ("17", "38", "74344005", "74344005", "T-54370"), ("18", "37", "863898000", "48402004", "T-54380"),
    ("19", "36", "866006002", "89625000", "T-54390"), ("20", "35", "24573005", "24573005", "T-54400"),
    ("21", "34", "2400006", "2400006", "T-54410"), ("22", "33", "860782001", "39844006", "T-54420"),
    ("23", "32", "423331005", "77130001", "T-54430"), ("24", "31", "425106001", "113278005", "T-54440"),
    ("25", "41", "424575004", "15422005", "T-54450"), ("26", "42", "423937004", "82628004", "T-54460"),
    ("27", "43", "860785004", "47055002", "T-54470"), ("28", "44", "80140008", "80140008", "T-54480"),
    ("29", "45", "8873007", "8873007", "T-54490"), ("30", "46", "866005003", "28480000", "T-54500"),
    ("31", "47", "863899008", "40005008", "T-54510"), ("32", "48", "38994002", "38994002", "T-54520"),
    ("A", "55", "27855007", "27855007", "T-54650"), ("B", "54", "17505006", "245616001", "T-54640"),
    ("C", "53", "30618001", "30618001", "T-54630"), ("D", "52", "65624003", "245619008", "T-54620"),
    ("E", "51", "88824007", "245620002", "T-54610"), ("F", "61", "51678005", "51678005", "T-54660"),
    ("G", "62", "43622005", "43622005", "T-54670"), ("H", "63", "73937000", "73937000", "T-54680"),
    ("I", "64", "45234009", "45234009", "T-54690"), ("J", "65", "51943008", "51943008", "T-54700"),
    ("K", "75", "49330006", "49330006", "T-54800"), ("L", "74", "38896004", "38896004", "T-54790"),
    ("M", "73", "43281008", "245639007", "T-54780"), ("N", "72", "14770005", "14770005", "T-54770"),
    ("O", "71", "89552004", "89552004", "T-54760"), ("P", "81", "67834006", "67834006", "T-54710"),
    ("Q", "82", "22445006", "22445006", "T-54720"), ("R", "83", "6062009", "6062009", "T-54730"),
    ("S", "84", "58646007", "245631005", "T-54740"), ("T", "85", "61868007", "61868007", "T-54750"),
]


def test_the_code_table_names_every_permanent_and_primary_tooth_once() -> None:
    assert [row[0] for row in TOOTH_CODES] == list(dental.PERMANENT_TEETH) + list(dental.PRIMARY_TEETH)


@pytest.mark.parametrize(("universal", "fdi", "sct", "older_sct", "srt"), TOOTH_CODES,
                         ids=[row[0] for row in TOOTH_CODES])
def test_every_code_family_names_the_same_tooth(universal: str, fdi: str, sct: str, older_sct: str,
                                                srt: str) -> None:
    assert universal_from_fdi(fdi) == universal
    assert fdi_from_universal(universal) == fdi
    assert snomed_from_universal(universal) == sct
    assert dental.universal_from_code(sct, "SCT") == universal
    assert dental.universal_from_code(older_sct, "SCT") == universal
    assert dental.universal_from_code(srt, "SRT") == universal
    assert dental.universal_from_code(srt, "SNM3") == universal
    assert dental.universal_from_code(fdi, "ISO3950") == universal
    assert dental.universal_from_code(fdi, "FDI") == universal
    # Writers mix designators up: a SNOMED CT id under "SRT" still names its tooth.
    assert dental.universal_from_code(sct, "SRT") == universal
    assert dental.snomed_rt_codes(universal)[0] == srt
    if older_sct != sct:
        assert older_sct in dental.legacy_snomed_codes(universal)


def test_the_t54xx1_variants_of_deciduous_teeth_are_known() -> None:
    assert dental.universal_from_code("T-54611", "SRT") == "E"
    assert dental.universal_from_code("T-54641", "SRT") == "B"
    assert dental.universal_from_code("T-54282", "SRT") == "8"


@pytest.mark.parametrize(("value", "scheme"), [("T-54000", "SRT"), ("38199008", "SCT"), ("19", "ISO3950"),
                                               ("36", "LN"), ("", "SCT")])
def test_codes_that_name_no_tooth_give_none(value: str, scheme: str) -> None:
    assert dental.universal_from_code(value, scheme) is None
