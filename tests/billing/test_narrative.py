"""The claim narrative (NTE*ADD): what the default says for each kind of claim, that it always fits one NTE02 of
80 characters of the X12 basic character set, and how a narrative written by billing staff is checked."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from referral.billing.engine import generate_claims
from referral.billing.model import Claim, VisitFacts
from referral.billing.narrative import NARRATIVE_LIMIT, NarrativeError, default_narrative, normalize_narrative
from referral.billing.x12_text import BASIC_CHARACTERS
from tests.support.billing import ALDER, BIRCH, ENDODONTIST, HYGIENIST, REMOTE_DENTIST, by_role, image, visit
from tests.support.billing_strategies import visits


def _claims(facts: VisitFacts) -> dict[str, Claim]:
    return by_role(generate_claims(facts))


def test_the_capture_claim_says_capture_only_what_by_whom_when_and_where_it_went() -> None:
    capture = _claims(visit(image("pa-3", "periapical", "3")))["capture"]

    assert capture.narrative == "CAPTURE ONLY; 1 PA TOOTH 3 BY RDH H LEE ON 03/10/25; SENT TO DR E LAKE"


def test_the_readers_claim_says_the_mode_what_was_read_that_it_was_captured_elsewhere_and_when_signed() -> None:
    reading = _claims(visit(image("pa-3", "periapical", "3")))["interpretation"]

    assert reading.narrative == "ASYNC TELEDENT; READ 1 PA; CAPTURED 03/10/25 ELSEWHERE; REPORT SIGNED 03/11/25"


def test_a_live_consult_names_live_video_teledentistry() -> None:
    reading = _claims(visit(image("pa-14", "periapical", "14"), mode="synchronous"))["interpretation"]

    assert reading.narrative.startswith("LIVE TELEDENT; READ 1 PA")


def test_one_practice_that_took_and_read_remotely_says_where_the_images_were_taken_and_that_they_were_read() -> None:
    facts = visit(
        image("bw-1", "bitewing"),
        image("pa-14", "periapical", "14"),
        reader=REMOTE_DENTIST,
        reader_org=ALDER,
        place_of_service="03",
    )

    single = generate_claims(facts)[0]

    assert single.narrative == "ASYNC TELEDENT; 1 BW 1 PA TAKEN AT SCHOOL; READ REMOTELY, REPORT SIGNED 03/11/25"


def test_an_office_that_took_and_read_its_own_films_gives_the_clinical_reason_first() -> None:
    facts = visit(
        image("pa-30", "periapical", "30"),
        image("pa-29", "periapical", "29"),
        image("pa-31", "periapical", "31"),
        reader=None,
        office_read=True,
        reason="Fractured cusp, #30",
    )

    single = generate_claims(facts)[0]

    assert single.narrative == "FRACTURED CUSP, 30; TAKEN AND READ HERE; 3 PA TEETH 29-31"


def test_an_office_that_read_its_film_and_sent_it_for_a_second_reading_says_so() -> None:
    capture = _claims(visit(image("pa-19", "periapical", "19"), office_read=True))["capture"]

    assert capture.narrative == "TAKEN AND READ HERE; 1 PA TOOTH 19; COPY SENT TO DR E LAKE FOR A SECOND READING"


def test_the_worked_example_of_claims_lifecycle_reads_like_its_note() -> None:
    maple = replace(ALDER, name="Maple Family Dental")
    patel = replace(ENDODONTIST, first_name="Kiran", last_name="Patel")
    lee = replace(HYGIENIST, first_name="Jo", last_name="Lee")
    facts = visit(
        *(image(f"pa-{tooth}", "periapical", tooth, on=date(2026, 4, 15), org=maple) for tooth in ("2", "3", "4")),
        capturing=maple,
        reader=patel,
        capturing_providers=(lee,),
    )

    capture = _claims(facts)["capture"]

    assert capture.narrative == "CAPTURE ONLY; 3 PA TEETH 2-4 BY RDH J LEE ON 04/15/26; SENT TO DR K PATEL"


def test_teeth_are_written_as_ranges_of_neighbours_and_lists_of_the_rest() -> None:
    teeth = ("2", "3", "4", "14", "A", "B", "51")
    # Nobody named as capturer, which leaves room for the teeth.
    facts = visit(*(image(f"pa-{tooth}", "periapical", tooth) for tooth in teeth), capturing_providers=())

    capture = _claims(facts)["capture"]

    assert capture.narrative == "CAPTURE ONLY; 7 PA TEETH 2-4,14,51,A,B ON 03/10/25; SENT TO DR E LAKE"


def test_the_most_essential_words_survive_long_names_and_nothing_is_cut_mid_word() -> None:
    long_org = replace(
        BIRCH, name="The Very Long Named Regional Endodontic And Oral Radiology Associates Of Springfield"
    )
    long_reader = replace(ENDODONTIST, last_name="Vandenberghe-Oppenheimer-Castellanos")
    facts = visit(
        *(image(f"pa-{n}", "periapical", str(n)) for n in (1, 3, 5, 7, 9, 11, 13, 15, 17, 19)),
        reader=long_reader,
        reader_org=long_org,
        reason="Swelling and pain in several quadrants reported by the school nurse",
    )

    claims = _claims(facts)

    for claim in claims.values():
        assert 0 < len(claim.narrative) <= NARRATIVE_LIMIT
    assert claims["capture"].narrative.startswith("CAPTURE ONLY")
    assert claims["interpretation"].narrative.startswith("ASYNC TELEDENT")
    # Clauses are whole or absent: the reader's long name is either all there or not at all.
    narrative = claims["capture"].narrative
    assert ("VANDENBERGHE" in narrative) == ("VANDENBERGHE-OPPENHEIMER-CASTELLANOS" in narrative)


@settings(max_examples=150, deadline=None, database=None)
@given(visits(), st.text(max_size=120), st.sampled_from(["", "Jo", "Zoë*Ann:^~"]))
def test_every_default_narrative_fits_one_nte02_in_the_basic_character_set(
    facts: VisitFacts, reason: str, first_name: str
) -> None:
    facts = replace(
        facts, reason=reason or None, capturing_providers=(replace(HYGIENIST, first_name=first_name or "H"),)
    )
    for claim in generate_claims(facts):
        assert claim.narrative
        assert len(claim.narrative) <= NARRATIVE_LIMIT
        assert set(claim.narrative) <= BASIC_CHARACTERS
        assert claim.narrative == claim.narrative.strip()
        assert "  " not in claim.narrative
        assert default_narrative(claim, facts) == claim.narrative  # the same facts say the same thing


def test_a_claim_without_lines_has_nothing_to_say() -> None:
    capture = _claims(visit(image("pa-3", "periapical", "3")))["capture"]

    assert default_narrative(replace(capture, lines=()), visit()) == ""


# -- narratives written by billing staff -----------------------------------------------------------------------------


def test_an_edited_narrative_is_upper_cased_and_loses_the_separators_and_other_characters_x12_cannot_carry() -> None:
    assert normalize_narrative("  Pt. seen at school: 3 PA's *read* by Dr. Lake ~ see report^ ") == (
        "PT. SEEN AT SCHOOL 3 PA'S READ BY DR. LAKE SEE REPORT"
    )
    assert normalize_narrative("Zoë's tooth #3 — 100% capture only") == "ZOE'S TOOTH 3 100 CAPTURE ONLY"


def test_an_edited_narrative_of_exactly_80_characters_is_kept_whole() -> None:
    text = "A" * NARRATIVE_LIMIT

    assert normalize_narrative(text) == text


def test_an_edited_narrative_longer_than_80_characters_is_refused_with_how_much_to_cut_and_not_the_text() -> None:
    with pytest.raises(NarrativeError, match=r"81 characters.*shorten it by 1") as raised:
        normalize_narrative("B" * 81)
    assert "BBB" not in str(raised.value)  # narratives are patient data and errors get logged


@pytest.mark.parametrize("text", ["", "   ", "~*:^", "\u00a9\u00ae"])
def test_an_edited_narrative_with_nothing_an_837d_can_carry_is_refused(text: str) -> None:
    with pytest.raises(NarrativeError, match="no letters or digits"):
        normalize_narrative(text)
