"""The 837D exporter and its structural validator: exact segments for realistic claims, and one corrupted
interchange per kind of defect the validator must catch."""

from __future__ import annotations

import dataclasses
from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from referral.billing.model import (
    Address,
    Attachment,
    Claim,
    ClaimLine,
    CoverageFacts,
    OrganizationFacts,
    PatientFacts,
    ProviderFacts,
    SubscriberFacts,
)
from referral.billing.x12 import (
    ExportError,
    Submitter,
    claim_filing_indicator,
    format_amount,
    patient_control_number,
    to_837d,
)
from referral.billing.x12_text import basic_text
from referral.billing.x12_validator import validate_837d
from tests.support.claims import (
    ADULT,
    CHILD_MEDICAID,
    CHILD_REFERRAL,
    CREATED_AT,
    DELTA,
    DOS,
    ENDODONTIST,
    GP,
    NORTHSIDE,
    SPLIT_REFERRAL,
    all_claims,
    capture_claim,
    child_claim,
    line,
    reader_claim,
    single_claim,
)
from tests.support.x12 import (
    Segment,
    assert_reported,
    claim_with,
    claims_in,
    export,
    first,
    lines_in,
    only,
    parse,
    problems_after,
)

# -- reading an interchange back -------------------------------------------------------------------



















@pytest.fixture
def interchange() -> str:
    return export(all_claims())




# -- the exporter ----------------------------------------------------------------------------------


def test_an_interchange_of_split_single_and_dependant_claims_passes_the_validator(interchange: str) -> None:
    assert validate_837d(interchange) == []


def test_each_claim_alone_passes_the_validator() -> None:
    for claim in all_claims():
        assert validate_837d(export([claim])) == [], claim.role


def test_the_isa_segment_is_106_characters_with_fixed_width_fields(interchange: str) -> None:
    isa = interchange[: interchange.index("~") + 1]
    assert len(isa) == 106
    elements = isa[:-1].split("*")
    assert [len(e) for e in elements[1:]] == [2, 10, 2, 10, 2, 15, 2, 15, 6, 4, 1, 5, 9, 1, 1, 1]
    assert elements[6] == "NORTHSIDE01    "
    assert elements[9:] == ["250311", "0930", "^", "00501", "000000042", "0", "T", ":"]


def test_the_functional_group_declares_the_837d_implementation_guide(interchange: str) -> None:
    gs = first(parse(interchange), "GS")
    assert gs == ["GS", "HC", "NORTHSIDE01", "CLEARHOUSE", "20250311", "0930", "7", "X", "005010X224A2"]
    assert all(st[3] == "005010X224A2" for st in only(parse(interchange), "ST"))


def test_envelope_trailers_count_their_contents_and_repeat_the_control_numbers(interchange: str) -> None:
    segments = parse(interchange)
    assert first(segments, "GE") == ["GE", "2", "7"]
    assert first(segments, "IEA") == ["IEA", "1", "000000042"]
    assert [st[2] for st in only(segments, "ST")] == [se[2] for se in only(segments, "SE")] == ["0001", "0002"]


def test_there_is_one_transaction_set_per_billing_organization(interchange: str) -> None:
    segments = parse(interchange)
    billing_names = [s[3] for s in only(segments, "NM1", "85")]
    assert billing_names == ["NORTHSIDE FAMILY DENTAL", "LAKESHORE ENDODONTICS"]
    # Northside: its 2000A, three 2000B and the child's 2000C; Lakeshore: its 2000A and one 2000B
    assert len(only(segments, "HL")) == 5 + 2


def test_se01_counts_the_segments_from_st_to_se(interchange: str) -> None:
    segments = parse(interchange)
    start = 0
    for index, segment in enumerate(segments):
        if segment[0] == "ST":
            start = index
        elif segment[0] == "SE":
            assert segment[1] == str(index - start + 1)


def test_the_claim_total_is_the_sum_of_its_line_charges(interchange: str) -> None:
    capture = claim_with(interchange, "D0707")
    clm = capture[0]
    assert clm[2] == "92.5"
    assert [s[2] for s in only(capture, "SV3")] == ["35", "35", "22.5"]
    assert claim_with(interchange, "D0220")[0][2] == "131.5"  # 31 + 2 x 26 + 48.50


def test_the_claim_carries_place_of_service_frequency_and_the_usual_indicators(interchange: str) -> None:
    clm = claim_with(interchange, "D0391")[0]
    assert clm == ["CLM", patient_control_number(SPLIT_REFERRAL), "110", "", "", "02:B:1", "Y", "A", "Y", "Y"]


def test_the_patient_control_number_is_the_referral_id_cut_to_20_characters() -> None:
    assert patient_control_number(SPLIT_REFERRAL) == "3F2A9C1E5B7D4E219A0C"
    assert patient_control_number("R-1001") == "R1001"


def test_every_line_has_a_line_item_control_number_in_ref_6r(interchange: str) -> None:
    # Claims come out grouped by billing organization: Northside's three, then Lakeshore's.
    in_file_order = [capture_claim(), single_claim(), child_claim(), reader_claim()]
    for claim, expected in zip(claims_in(interchange), in_file_order, strict=True):
        lines = lines_in(claim)
        assert [only(block, "REF", "6R") for block in lines] == [
            [["REF", "6R", item.control_number]] for item in expected.lines
        ]
        assert [block[0] for block in lines] == [["LX", str(n)] for n in range(1, len(lines) + 1)]


def test_a_tooth_goes_in_a_too_segment_with_the_jp_qualifier(interchange: str) -> None:
    capture = lines_in(claim_with(interchange, "D0707"))
    assert only(capture[0], "TOO") == [["TOO", "JP", "19"]]
    assert only(capture[1], "TOO") == [["TOO", "JP", "30"]]
    assert only(capture[2], "TOO") == []  # the photo line names no tooth


def test_surfaces_follow_the_tooth_as_components(interchange: str) -> None:
    child = lines_in(claim_with(interchange, "D0140"))
    assert only(child[1], "TOO") == [["TOO", "JP", "K"]]
    assert only(child[2], "TOO") == [["TOO", "JP", "S", "D:O"]]


def test_a_line_naming_several_teeth_gets_one_too_per_tooth(interchange: str) -> None:
    bitewings = lines_in(claim_with(interchange, "D0220"))[2]
    assert first(bitewings, "SV3") == ["SV3", "AD:D0272", "48.5"]
    assert only(bitewings, "TOO") == [["TOO", "JP", tooth] for tooth in ("2", "3", "30", "31")]


def test_an_area_only_line_carries_the_area_in_sv304_and_no_too(interchange: str) -> None:
    additional = lines_in(claim_with(interchange, "D0220"))[1]
    assert first(additional, "SV3") == ["SV3", "AD:D0230", "52", "", "10", "", "2"]
    assert only(additional, "TOO") == []


def test_the_area_is_left_out_when_the_line_names_a_tooth() -> None:
    claim = dataclasses.replace(single_claim(), lines=(line(1, "D0220", "31", "X-1", tooth="3", area="10"),))
    assert "SV3*AD:D0220*31~" in export([claim])


def test_the_quantity_is_sent_in_sv306_only_when_above_one(interchange: str) -> None:
    services = only(parse(interchange), "SV3")
    with_quantity = {s[1]: s[6] for s in services if len(s) > 6}
    assert with_quantity == {"AD:D0230": "2", "AD:D0391": "2"}
    assert ["SV3", "AD:D0220", "31"] in services


def test_the_referring_provider_appears_only_on_the_readers_claim(interchange: str) -> None:
    assert len(only(parse(interchange), "NM1", "DN")) == 1
    reader = claim_with(interchange, "D0391")
    assert first(reader, "NM1", "DN") == ["NM1", "DN", "1", "PATEL", "GRACE", "", "", "", "XX", GP.npi]


def test_the_rendering_provider_is_named_with_npi_and_taxonomy(interchange: str) -> None:
    reader = claim_with(interchange, "D0391")
    assert first(reader, "NM1", "82") == ["NM1", "82", "1", "REYES", "OMAR", "", "", "", "XX", ENDODONTIST.npi]
    assert first(reader, "PRV") == ["PRV", "PE", "PXC", "1223E0200X"]


def test_service_dates_are_sent_on_the_claim_and_on_every_line(interchange: str) -> None:
    for claim in claims_in(interchange):
        assert claim[1] == ["DTP", "472", "D8", "20250310"]
        for block in lines_in(claim):
            assert only(block, "DTP", "472") == [["DTP", "472", "D8", "20250310"]]


def test_the_billing_provider_loop_names_the_organization_with_npi_address_and_tax_id(interchange: str) -> None:
    segments = parse(interchange)
    start = segments.index(["HL", "1", "", "20", "1"])
    assert segments[start + 1 : start + 5] == [
        ["NM1", "85", "2", "NORTHSIDE FAMILY DENTAL", "", "", "", "", "XX", NORTHSIDE.npi],
        ["N3", "100 MAIN ST", "SUITE 2"],
        ["N4", "MADISON", "WI", "537031234"],
        ["REF", "EI", "123456789"],
    ]


def test_a_patient_who_is_the_subscriber_is_named_in_2010ba_with_demographics() -> None:
    segments = parse(export([capture_claim()]))
    start = segments.index(["HL", "2", "1", "22", "0"])
    assert segments[start + 1 : start + 7] == [
        ["SBR", "P", "18", "GRP-77", "", "", "", "", "", "CI"],
        ["NM1", "IL", "1", "LOPEZ", "MARIA", "", "", "", "MI", "DDW123456789"],
        ["N3", "5 ELM ST"],
        ["N4", "MADISON", "WI", "53703"],
        ["DMG", "D8", "19790514", "F"],
        ["NM1", "PR", "2", "DELTA DENTAL OF WISCONSIN", "", "", "", "", "PI", "CDWI1"],
    ]
    assert only(segments, "PAT") == []


def test_a_dependant_patient_gets_a_2000c_loop_under_the_subscriber() -> None:
    segments = parse(export([child_claim()]))
    start = segments.index(["HL", "2", "1", "22", "1"])
    assert segments[start + 1 : start + 11] == [
        ["SBR", "P", "", "", "", "", "", "", "", "MC"],
        ["NM1", "IL", "1", "NGUYEN", "THI", "", "", "", "MI", "MA0099887766"],
        ["NM1", "PR", "2", "WISCONSIN MEDICAID", "", "", "", "", "PI", "WIMCD"],
        ["HL", "3", "2", "23", "0"],
        ["PAT", "19"],
        ["NM1", "QC", "1", "NGUYEN", "LEO"],
        ["N3", "77 OAK AVE"],
        ["N4", "MADISON", "WI", "53704"],
        ["DMG", "D8", "20160901", "M"],
        ["CLM", patient_control_number(CHILD_REFERRAL), "110", "", "", "03:B:1", "Y", "A", "Y", "Y"],
    ]


@pytest.mark.parametrize(
    ("payer_profile", "payer_name", "indicator"),
    [
        ("default", "Delta Dental of Wisconsin", "CI"),
        ("medicaid-wi", "Wisconsin Dental Plan", "MC"),
        ("default", "ForwardHealth Wisconsin Medicaid", "MC"),
        ("default", "Medi-Cal Dental", "MC"),
    ],
)
def test_a_medicaid_payer_is_filed_as_mc_and_any_other_as_commercial(
    payer_profile: str, payer_name: str, indicator: str
) -> None:
    claim = dataclasses.replace(
        capture_claim(), payer_profile=payer_profile, coverage=dataclasses.replace(DELTA, payer_name=payer_name)
    )
    assert claim_filing_indicator(claim) == indicator


def test_a_dentist_billing_under_their_own_npi_gets_prv_bi_and_no_rendering_loop() -> None:
    solo = dataclasses.replace(NORTHSIDE, npi=GP.npi)
    text = export([dataclasses.replace(single_claim(), billing_organization=solo)])
    segments = parse(text)
    assert ["PRV", "BI", "PXC", "1223G0001X"] in segments
    assert first(segments, "NM1", "85") == ["NM1", "85", "1", "PATEL", "GRACE", "", "", "", "XX", GP.npi]
    assert only(segments, "NM1", "82") == []
    assert validate_837d(text) == []


def test_separator_characters_in_names_and_addresses_are_stripped() -> None:
    patient = dataclasses.replace(
        ADULT,
        first_name="Zoë^Ann",
        last_name="O'Brien*Smith~Jr",
        address=Address("12 Elm St: Apt~4", "Mad*ison", "WI", "53703"),
    )
    organization = dataclasses.replace(NORTHSIDE, name="North:side * Dental ^ Care")
    claim = dataclasses.replace(capture_claim(), patient=patient, billing_organization=organization)
    text = export([claim])
    segments = parse(text)
    assert first(segments, "NM1", "IL")[3:5] == ["O'BRIEN SMITH JR", "ZOE ANN"]
    assert ["N3", "12 ELM ST APT 4"] in segments
    assert first(segments, "NM1", "85")[3] == "NORTH SIDE DENTAL CARE"
    assert only(segments, "N4")[1][1] == "MAD ISON"
    assert validate_837d(text) == []


def test_nothing_but_payer_data_leaves_in_the_interchange(interchange: str) -> None:
    for claim in all_claims():
        for item in claim.lines:
            assert item.explanation.upper() not in interchange
            assert item.rule.upper() not in interchange.upper()
            assert all(image.upper() not in interchange.upper() for image in item.image_ids)
        for edit in claim.edits:
            assert edit.message.upper() not in interchange
    assert "PAT-ADULT" not in interchange.upper()  # our patient id means nothing to the payer


@pytest.mark.parametrize(
    ("amount", "text"),
    [
        ("125", "125"),
        ("125.00", "125"),
        ("125.50", "125.5"),
        ("125.55", "125.55"),
        ("0.005", "0.01"),
        ("0", "0"),
        ("1E+2", "100"),
    ],
)
def test_amounts_are_written_without_trailing_zeros(amount: str, text: str) -> None:
    assert format_amount(Decimal(amount)) == text


def test_a_dependants_claim_without_the_subscribers_name_cannot_be_exported() -> None:
    orphan = dataclasses.replace(child_claim(), coverage=dataclasses.replace(CHILD_MEDICAID, subscriber=None))
    with pytest.raises(ExportError, match="subscriber's name"):
        export([orphan])


def test_a_claim_without_coverage_cannot_be_exported() -> None:
    with pytest.raises(ExportError, match="no coverage"):
        export([dataclasses.replace(capture_claim(), coverage=None)])


def test_an_identifier_containing_a_separator_is_refused_rather_than_altered() -> None:
    coverage = dataclasses.replace(DELTA, member_id="DDW*123")
    with pytest.raises(ExportError, match="reserves") as raised:
        export([dataclasses.replace(capture_claim(), coverage=coverage)])
    assert "DDW" not in str(raised.value)  # member ids are patient data and error messages get logged


def test_without_a_submitter_the_billing_organization_submits_and_the_missing_contact_is_reported() -> None:
    text = to_837d(
        [capture_claim()],
        sender_id="NORTHSIDE01",
        receiver_id=DELTA.payer_id,
        interchange_control_number=1,
        group_control_number=1,
        created_at=CREATED_AT,
    )
    segments = parse(text)
    assert first(segments, "NM1", "41")[3] == "NORTHSIDE FAMILY DENTAL"
    assert first(segments, "NM1", "40")[3] == "DELTA DENTAL OF WISCONSIN"  # sent straight to the payer
    assert validate_837d(text) == [
        "transaction set 0001: the submitter contact needs a phone number or email address (PER03/PER04)"
    ]


def test_the_submitter_contact_carries_the_phone_digits_and_email(interchange: str) -> None:
    submitter = Submitter(
        "Northside Family Dental", "Billing Office", phone="(608) 555-0100", email="billing@northside.example"
    )
    segments = parse(export([capture_claim()], submitter=submitter))
    assert first(segments, "PER") == [
        "PER",
        "IC",
        "BILLING OFFICE",
        "TE",
        "6085550100",
        "EM",
        "billing@northside.example",
    ]


def test_a_replacement_claim_cannot_be_exported_without_the_payers_claim_number() -> None:
    with pytest.raises(ExportError, match="REF\\*F8"):
        export([dataclasses.replace(capture_claim(), frequency="7")])


def test_the_validator_catches_a_replacement_without_the_payers_claim_number(interchange: str) -> None:
    def edit(segments: list[Segment]) -> None:
        first(segments, "CLM")[5] = "11:B:7"

    assert_reported(problems_after(interchange, edit), "needs the payer's claim number (REF*F8)")


# -- the validator: one corrupted interchange per defect -------------------------------------------






def test_the_validator_accepts_a_line_break_after_each_segment(interchange: str) -> None:
    assert validate_837d(interchange.replace("~", "~\r\n")) == []


def test_the_validator_catches_a_wrong_se01(interchange: str) -> None:
    text = interchange.replace("~SE*", "~SE*1", 1)
    assert_reported(validate_837d(text), "SE01")


def test_the_validator_catches_a_claim_total_that_is_not_the_sum_of_its_lines(interchange: str) -> None:
    def edit(segments: list[Segment]) -> None:
        first(segments, "CLM")[2] = "93"

    assert_reported(problems_after(interchange, edit), "CLM02 93 does not equal the sum of its line charges")


def test_the_validator_catches_a_subscriber_level_whose_parent_is_not_a_billing_provider(interchange: str) -> None:
    def edit(segments: list[Segment]) -> None:
        segments[segments.index(["HL", "3", "1", "22", "0"])][2] = "2"

    assert_reported(problems_after(interchange, edit), "the parent of a 2000B subscriber must be")


def test_the_validator_catches_a_wrong_child_flag(interchange: str) -> None:
    def edit(segments: list[Segment]) -> None:
        segments[segments.index(["HL", "2", "1", "22", "0"])][4] = "1"

    assert_reported(problems_after(interchange, edit), "HL04 is '1' but the level has no children")


def test_the_validator_catches_a_tooth_outside_the_ada_universal_set(interchange: str) -> None:
    def edit(segments: list[Segment]) -> None:
        first(segments, "TOO")[2] = "33"

    assert_reported(problems_after(interchange, edit), "tooth '33' is not an ADA Universal designation")


def test_the_validator_catches_a_surface_that_is_not_a_tooth_surface(interchange: str) -> None:
    def edit(segments: list[Segment]) -> None:
        next(s for s in segments if s[0] == "TOO" and len(s) > 3)[3] = "D:X"

    assert_reported(problems_after(interchange, edit), "surfaces 'X' are not among")


def test_the_validator_catches_several_teeth_on_a_line_with_quantity_above_one(interchange: str) -> None:
    def edit(segments: list[Segment]) -> None:
        bitewings = next(s for s in segments if s[0] == "SV3" and s[1] == "AD:D0272")
        bitewings.extend(["", "", "", "2"])

    assert_reported(problems_after(interchange, edit), "4 TOO segments on a line with SV306 quantity 2")


def test_the_validator_catches_a_line_without_ref_6r(interchange: str) -> None:
    def edit(segments: list[Segment]) -> None:
        segments.remove(["REF", "6R", "CAP-3F2A-2"])

    assert_reported(problems_after(interchange, edit), "has no line item control number (REF*6R)")


def test_the_validator_catches_a_duplicate_ref_6r_in_one_transaction_set(interchange: str) -> None:
    def edit(segments: list[Segment]) -> None:
        segments[segments.index(["REF", "6R", "SGL-8C41-1"])][2] = "CAP-3F2A-1"

    assert_reported(problems_after(interchange, edit), "REF*6R 'CAP-3F2A-1' is used by 2 lines")


def test_the_validator_catches_an_npi_that_fails_the_check_digit(interchange: str) -> None:
    def edit(segments: list[Segment]) -> None:
        first(segments, "NM1", "85")[9] = "1234567890"

    assert_reported(problems_after(interchange, edit), "NM1*85 NPI '1234567890' fails the check digit")


def test_the_validator_catches_a_taxonomy_code_of_the_wrong_shape(interchange: str) -> None:
    def edit(segments: list[Segment]) -> None:
        first(segments, "PRV")[3] = "1223E0200"

    assert_reported(problems_after(interchange, edit), "taxonomy '1223E0200' is not 10 characters ending in X")


def test_the_validator_catches_a_gs08_that_is_not_the_837d_guide(interchange: str) -> None:
    def edit(segments: list[Segment]) -> None:
        first(segments, "GS")[8] = "005010X222A1"

    problems = problems_after(interchange, edit)
    assert_reported(problems, "GS08 is '005010X222A1'")
    assert_reported(problems, "does not match GS08")


@pytest.mark.parametrize(
    ("trailer", "index", "fragment"),
    [
        ("IEA", 2, "IEA02 '000000043' does not match ISA13"),
        ("GE", 2, "GE02 '8' does not match GS06"),
        ("SE", 2, "SE02 '0003' does not match ST02"),
    ],
)
def test_the_validator_catches_a_trailer_whose_control_number_differs_from_its_header(
    interchange: str, trailer: str, index: int, fragment: str
) -> None:
    replacement = {"IEA": "000000043", "GE": "8", "SE": "0003"}[trailer]

    def edit(segments: list[Segment]) -> None:
        first(segments, trailer)[index] = replacement

    assert_reported(problems_after(interchange, edit), fragment)


def test_the_validator_catches_trailer_counts_that_disagree_with_the_contents(interchange: str) -> None:
    def edit(segments: list[Segment]) -> None:
        first(segments, "GE")[1] = "1"
        first(segments, "IEA")[1] = "2"

    problems = problems_after(interchange, edit)
    assert_reported(problems, "GE01 is '1' but the group holds 2 transaction sets")
    assert_reported(problems, "IEA01 is '2' but the interchange holds 1 functional groups")


def test_the_validator_catches_an_isa_that_is_not_fixed_width(interchange: str) -> None:
    text = interchange.replace("NORTHSIDE01    ", "NORTHSIDE01", 1)
    problems = validate_837d(text)
    assert_reported(problems, "the ISA segment is 102 characters long")
    assert_reported(problems, "ISA06 is 11 characters wide")


def test_the_validator_catches_a_claim_frequency_that_is_not_dental(interchange: str) -> None:
    def edit(segments: list[Segment]) -> None:
        first(segments, "CLM")[5] = "11:A:3"

    problems = problems_after(interchange, edit)
    assert_reported(problems, "CLM05-2 must be B")
    assert_reported(problems, "CLM05-3 '3' is not a dental claim frequency")


def test_the_validator_catches_a_procedure_that_is_not_a_cdt_code(interchange: str) -> None:
    def edit(segments: list[Segment]) -> None:
        first(segments, "SV3")[1] = "AD:99213"

    assert_reported(problems_after(interchange, edit), "SV301 code '99213' is not a CDT code")


def test_the_validator_catches_service_lines_numbered_out_of_sequence(interchange: str) -> None:
    def edit(segments: list[Segment]) -> None:
        segments[segments.index(["LX", "2"])][1] = "3"

    assert_reported(problems_after(interchange, edit), "LX should be 2")


def test_the_validator_catches_a_missing_payer_name(interchange: str) -> None:
    def edit(segments: list[Segment]) -> None:
        segments.remove(first(segments, "NM1", "PR"))

    assert_reported(problems_after(interchange, edit), "the payer name (NM1*PR) is missing")


def test_the_validator_catches_a_claim_with_no_service_date(interchange: str) -> None:
    capture_dates = [["DTP", "472", "D8", "20250310"]]

    def edit(segments: list[Segment]) -> None:
        # Drop the capture claim's claim-level date and its first line's date.
        start = segments.index(first(segments, "CLM"))
        del segments[start + 1]
        line_date = next(i for i in range(start, len(segments)) if segments[i] in capture_dates)
        del segments[line_date]

    assert_reported(problems_after(interchange, edit), "a service date (DTP*472) is needed")


def test_the_validator_catches_a_segment_outside_the_envelope(interchange: str) -> None:
    text = interchange.replace("~GE*", "~LX*1~GE*", 1)
    assert_reported(validate_837d(text), "(LX) is outside a transaction set")


def test_the_validator_reports_text_that_is_not_an_interchange() -> None:
    assert validate_837d("GS*HC~") == ["the interchange does not start with an ISA segment"]


# -- property: whatever the engine produces, the interchange is valid ------------------------------


def test_random_claims_built_from_the_dataclasses_always_make_a_valid_interchange() -> None:
    hypothesis = pytest.importorskip("hypothesis")
    st = pytest.importorskip("hypothesis.strategies")
    from referral.dental import PERMANENT_TEETH, PRIMARY_TEETH, SURFACES
    from referral.validation import npi_with_check_digit

    teeth = st.sampled_from(PERMANENT_TEETH + PRIMARY_TEETH + ("51", "82", "AS", "TS"))
    # Names mix ordinary letters with the characters X12 reserves, accents and punctuation.
    names = st.builds(
        lambda head, tail: head + tail,
        st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", min_size=1, max_size=20),
        st.text("*~:^ '-.éñ&#\t", max_size=8),
    )
    npis = st.from_regex(r"[1-2][0-9]{8}", fullmatch=True).map(npi_with_check_digit)
    addresses = st.builds(
        Address,
        names,
        names,
        st.sampled_from(["WI", "IL", "CA"]),
        st.from_regex(r"[0-9]{9}", fullmatch=True),
        st.none() | names,
    )
    organizations = st.builds(
        OrganizationFacts,
        st.uuids().map(str),
        names,
        npis,
        st.from_regex(r"[0-9]{2}-[0-9]{7}", fullmatch=True),
        addresses,
    )
    providers = st.builds(
        ProviderFacts,
        st.uuids().map(str),
        st.just("org"),
        names,
        names,
        npis,
        st.sampled_from(["1223G0001X", "1223E0200X", "124Q00000X", "1223P0221X"]),
    )
    patients = st.builds(
        PatientFacts,
        st.uuids().map(str),
        names,
        names,
        st.dates(date(1920, 1, 1), date(2024, 12, 31)),
        st.sampled_from("FMU"),
        st.just("WI"),
        addresses,
    )
    subscribers = st.builds(
        SubscriberFacts,
        names,
        names,
        st.none() | st.dates(date(1920, 1, 1), date(2010, 12, 31)),
        st.none() | st.sampled_from("FMU"),
        st.none() | addresses,
    )
    coverages = st.builds(
        CoverageFacts,
        st.from_regex(r"[A-Z0-9]{5}", fullmatch=True),
        names,
        st.from_regex(r"[A-Z0-9]{6,12}", fullmatch=True),
        st.none() | st.from_regex(r"[A-Z0-9-]{1,10}", fullmatch=True),
        st.just("self"),
    ) | st.builds(
        CoverageFacts,
        st.from_regex(r"[A-Z0-9]{5}", fullmatch=True),
        names,
        st.from_regex(r"[A-Z0-9]{6,12}", fullmatch=True),
        st.none() | st.from_regex(r"[A-Z0-9-]{1,10}", fullmatch=True),
        st.sampled_from(["spouse", "child", "other"]),
        subscribers,
    )

    @st.composite
    def service_lines(draw: Any) -> dict[str, Any]:
        quantity = draw(st.integers(1, 9))
        site = draw(st.sampled_from(["none", "tooth", "teeth", "area"]))
        fields: dict[str, Any] = {
            "code": draw(st.from_regex(r"D[0-9]{4}", fullmatch=True)),
            "quantity": quantity,
            "fee": draw(st.decimals(min_value=0, max_value=5000, places=2)),
        }
        if site == "tooth":
            fields["tooth"] = draw(teeth)
            fields["surfaces"] = draw(
                st.none() | st.text(SURFACES, min_size=1, max_size=5).map(lambda s: "".join(dict.fromkeys(s)))
            )
        elif site == "teeth" and quantity == 1:
            fields["teeth"] = tuple(draw(st.lists(teeth, min_size=1, max_size=8, unique=True)))
        elif site == "area":
            fields["area"] = draw(st.sampled_from(["00", "01", "02", "10", "20", "30", "40"]))
        fields["place_of_service"] = draw(st.none() | st.sampled_from(["03", "11", "12"]))
        return fields

    attachments = st.builds(
        Attachment,
        st.sampled_from(["RB", "RR", "DG", "OZ"]),
        st.sampled_from(["EL", "FT", "BM"]),
        st.from_regex(r"[A-Z0-9]{2,30}", fullmatch=True),
    ) | st.builds(Attachment, st.sampled_from(["RB", "DG"]), st.just("AA"))
    # Billing may type separators and accents; the exporter carries what one NTE can hold.
    notes = st.just("") | st.text("AZaz09 .,'-*:^~\u00e9\u00f1", min_size=1, max_size=80).filter(basic_text)
    corrections = st.just(("1", None)) | st.tuples(
        st.sampled_from(["7", "8"]), st.from_regex(r"[A-Z0-9]{1,20}", fullmatch=True)
    )

    @st.composite
    def claims(draw: Any, serial: int, organizations_: list[OrganizationFacts]) -> Claim:
        drawn_lines = draw(st.lists(service_lines(), min_size=1, max_size=6))
        frequency, payer_claim_number = draw(corrections)
        return Claim(
            billing_organization=draw(st.sampled_from(organizations_)),
            role=draw(st.sampled_from(["capture", "interpretation", "single"])),
            rendering_provider=draw(providers),
            place_of_service=draw(st.sampled_from(["02", "03", "10", "11", "12"])),
            date_of_service=DOS,
            payer_profile=draw(st.sampled_from(["default", "medicaid-wi"])),
            lines=tuple(
                # Control numbers are unique across the interchange, as the engine makes them.
                ClaimLine(
                    number=n, date_of_service=DOS, control_number=f"L{serial}-{n}", explanation="", rule="", **fields
                )
                for n, fields in enumerate(drawn_lines, start=1)
            ),
            edits=(),
            patient=draw(patients),
            coverage=draw(coverages),
            referral_id=draw(st.uuids().map(str)),
            referring_provider=draw(st.none() | providers),
            frequency=frequency,
            payer_claim_number=payer_claim_number,
            narrative=draw(notes),
            attachments=tuple(draw(st.lists(attachments, max_size=3))),
        )

    @hypothesis.settings(max_examples=60, deadline=None)
    @hypothesis.given(st.data(), st.lists(organizations, min_size=1, max_size=3), st.integers(1, 5))
    def check(data: Any, organizations_: list[OrganizationFacts], count: int) -> None:
        generated = [data.draw(claims(serial, organizations_)) for serial in range(count)]
        text = export(generated)
        assert validate_837d(text) == [], text

    check()
