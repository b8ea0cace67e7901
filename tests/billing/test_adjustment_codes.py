"""Adjustment codes in a clerk's words: every code the research names is known, each leads to one next step, and
the remark codes make a generic reason specific."""

from __future__ import annotations

from pathlib import Path

import pytest

from referral.billing.adjustment_codes import ACTIONS, CARC, GROUP_CODES, RARC, CodeAdvice, advise, carc, rarc

# The codes claims-lifecycle.md §4 lists for a dental practice billing imaging and teledentistry.
LIFECYCLE_CARC = frozenset(
    {"1", "2", "3", "4", "16", "18", "45", "96", "97", "119", "B5", "B7", "B15", "B20", "170", "185", "204", "234",
     "236", "250", "251", "252"}
)
LIFECYCLE_RARC = frozenset(
    {"N29", "M127", "N435", "N640", "M86", "M80", "M15", "N19", "N20", "N130", "N381", "N425", "N95", "N37", "N39",
     "N290", "MA130"}
)


def test_every_code_of_the_research_has_an_explanation_and_a_next_step() -> None:
    assert set(CARC) >= LIFECYCLE_CARC
    assert set(RARC) >= LIFECYCLE_RARC
    assert set(GROUP_CODES) == {"CO", "PR", "PI", "OA"}


@pytest.mark.parametrize("advice", [*CARC.values(), *RARC.values()], ids=lambda advice: advice.code)
def test_each_explanation_is_short_our_own_and_leads_to_one_known_action(advice: CodeAdvice) -> None:
    assert advice.action in ACTIONS
    assert 10 <= len(advice.meaning) <= 90
    # The official lists write "Claim/service", "attachment/other documentation"; our words do not.
    assert "/" not in advice.meaning
    assert not advice.meaning[0].isupper()  # read inside a sentence: "contractual; <meaning>; remark ..."
    if advice.action == "fix_field":
        assert advice.field
        assert advice.field in advice.next_step


@pytest.mark.parametrize(
    ("group", "reason", "remarks", "action", "fragment"),
    [
        ("CO", "252", ["N29"], "send_attachment", "attachment package"),
        ("CO", "250", [], "send_attachment", "attachment package"),
        ("CO", "16", ["N29"], "send_attachment", "attachment package"),
        ("CO", "97", ["M15"], "review_history", "claim history"),
        ("CO", "119", ["N640"], "review_history", "claim history"),
        ("CO", "B15", ["N20"], "review_history", "claim history"),
        ("CO", "18", [], "review_history", "duplicate"),
        ("CO", "16", ["N37"], "fix_field", "correct the tooth number"),
        ("CO", "16", ["N290"], "fix_field", "correct the rendering provider NPI"),
        ("CO", "16", ["MA130"], "resubmit", "new original claim"),
        ("CO", "140", [], "fix_field", "correct the member id and patient name"),
        ("CO", "45", [], "none", "write off"),
        ("PR", "1", [], "bill_patient", "bill the patient"),
        ("PR", "45", [], "bill_patient", "bill the patient"),
        ("CO", "96", ["N130"], "check_coverage", "plan benefits"),
        ("PR", "96", ["N130"], "bill_patient", "bill the patient"),
        ("CO", "B7", ["N95"], "check_provider", "credentialing"),
        ("CO", "22", [], "other_payer", "coordination of benefits"),
        ("CO", "29", [], "appeal", "appeal"),
        ("CO", "A1", ["N29"], "send_attachment", "attachment package"),
        ("CO", "A1", [], "review", "remark codes"),
    ],
)
def test_the_advice_names_the_next_step(
    group: str, reason: str, remarks: list[str], action: str, fragment: str
) -> None:
    advice = advise(group, reason, remarks)

    assert advice.action == action
    assert fragment in advice.next_step
    assert advice.is_problem == (action not in ("none", "bill_patient"))


def test_the_explanation_says_who_carries_it_why_and_what_each_remark_adds() -> None:
    advice = advise("CO", "252", ["N29", "M127"])

    assert advice.explanation == (
        "contractual: the practice absorbs it and may not bill the patient; a document (images, report or notes) is "
        "needed to pay this; remark N29: documentation is missing; remark M127: the patient record is missing"
    )


def test_a_missing_information_denial_names_the_field_to_fix() -> None:
    assert advise("CO", "16", ["N37"]).field == "tooth number"
    assert advise("CO", "181").field == "procedure code or service date"


def test_a_patient_share_the_payer_puts_on_the_practice_is_read_before_anyone_is_billed() -> None:
    assert advise("CO", "1").action == "review"


def test_unknown_codes_still_get_an_answer_pointing_at_the_master_list() -> None:
    assert carc("999").action == "review"
    assert "look it up" in carc("999").meaning
    assert "look it up" in rarc("ZZ99").meaning
    assert advise("OA", "999", ["ZZ99"]).action == "review"


def test_the_documented_code_tables_say_what_the_code_says() -> None:
    text = (Path(__file__).parents[2] / "docs" / "claims-lifecycle.md").read_text(encoding="utf-8")

    for table, kind in ((CARC, "CARC"), (RARC, "RARC")):
        for advice in table.values():
            field = f" ({advice.field})" if advice.field else ""
            assert f"| {advice.code} | {advice.meaning} | `{advice.action}`{field} |" in text, (kind, advice.code)
    for group, meaning in GROUP_CODES.items():
        assert f"| {group} | {meaning} |" in text
    for action, step in ACTIONS.items():
        assert f"| `{action}` | {step} |" in text
