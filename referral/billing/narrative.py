"""The claim note (837D loop 2300 NTE*ADD): a short narrative a payer's reviewer reads before asking for records.

An NTE02 holds 1 to 80 characters, and whether an 837D may repeat the NTE is not settled (claims-lifecycle.md §2),
so the default narrative is written to fit one segment. It is built from clauses in reading order, each with a
priority and plainer wordings: by order of importance, each clause goes in with its plainest wording and then its
more detailed ones, as long as the whole fits. A clause that cannot fit at all is left out whole, so the text never
ends mid-word. The text is reduced to the X12 basic character set,
upper-cased, so that nothing is lost or altered on its way into the 837D. Attachment numbers stay out of it: they
travel in PWK.

What the narrative says (claims-lifecycle.md §2 "What to say"):

* capture claim: capture only and not read here, what was taken and by whom, when, and to whom it went;
* reading claim: the teledentistry mode, what was read, that it was captured elsewhere (where and when), when the
  report was signed and to whom it went;
* one practice that took and read: the teledentistry mode, where and by whom the images were taken, who read them
  and when the report was signed, or, without teledentistry, the clinical reason.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date

from referral.billing.catalogue import CAPTURE_ONLY, CATALOGUE
from referral.billing.model import Claim, ImageFacts, ProviderFacts, VisitFacts
from referral.billing.x12_text import basic_text

__all__ = ["NARRATIVE_LIMIT", "NarrativeError", "default_narrative", "normalize_narrative", "place_in_words"]

NARRATIVE_LIMIT = 80  # NTE02, element 352

# CMS place-of-service codes the product meets, in our words.
_PLACES = {
    "02": "telehealth, patient not at home",
    "03": "school",
    "04": "homeless shelter",
    "10": "telehealth, patient at home",
    "11": "office",
    "12": "home",
    "15": "mobile unit",
    "31": "skilled nursing facility",
    "32": "nursing facility",
    "50": "federally qualified health center",
    "71": "public health clinic",
    "72": "rural health clinic",
    "99": "other place",
}
_SHORT_KINDS = {
    "periapical": "PA",
    "bitewing": "BW",
    "occlusal": "OCCLUSAL",
    "extraoral_posterior": "EXTRAORAL",
    "panoramic": "PANO",
    "cephalometric": "CEPH",
    "cbct_limited": "CBCT",
    "complete_series": "FMX",
    "photo_intraoral": "PHOTO",
    "photo_extraoral": "PHOTO",
}
_DENTIST_DEGREES = ("DDS", "DMD")


class NarrativeError(ValueError):
    """A narrative that cannot go into an 837D claim note; the message says why, never the text itself."""


def place_in_words(code: str) -> str:
    return _PLACES.get(code, f"place of service {code}")


def normalize_narrative(text: str) -> str:
    """A narrative billing staff wrote, as the 837D will carry it; NarrativeError when it cannot be carried.

    The text is not shortened: a narrative cut mid-sentence says something its writer did not mean.
    """
    cleaned = basic_text(text)
    if not cleaned:
        raise NarrativeError("the narrative has no letters or digits an 837D claim note can carry")
    if len(cleaned) > NARRATIVE_LIMIT:
        raise NarrativeError(
            f"the narrative is {len(cleaned)} characters once written for the 837D; a claim note holds at most "
            f"{NARRATIVE_LIMIT}, so shorten it by {len(cleaned) - NARRATIVE_LIMIT}"
        )
    return cleaned


# -- fitting ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Clause:
    priority: float  # of the plainest wording; 0 is the most essential
    variants: tuple[str, ...]  # most detailed first, the plainest last; never empty once built
    joiner: str  # what separates it from the clause before it
    detail: float  # priority of the more detailed wordings


def _clause(priority: float, *variants: str, joiner: str = "; ", detail: float | None = None) -> _Clause:
    cleaned = tuple(dict.fromkeys(text for text in (basic_text(v) for v in variants) if text))
    return _Clause(priority, cleaned, joiner, priority + 0.5 if detail is None else detail)


def _join(clauses: Sequence[_Clause], chosen: dict[int, str]) -> str:
    text = ""
    for index, clause in enumerate(clauses):
        if index in chosen:
            text += (clause.joiner if text else "") + chosen[index]
    return text


def _fit(clauses: Sequence[_Clause], limit: int = NARRATIVE_LIMIT) -> str:
    """As many facts and as much detail as fit, in order of importance.

    A clause first goes in with its plainest wording at its priority; its more detailed wordings are tried, most
    detailed first, at the clause's detail priority. So the detail of an essential clause can win over the mere
    presence of a minor one, and a long wording of an essential fact need not crowd out other facts.
    """
    steps: list[tuple[float, int, int]] = []
    for index, clause in enumerate(clauses):
        last = len(clause.variants) - 1
        steps.append((clause.priority, index, last))
        steps += [(clause.detail, index, variant) for variant in range(last)]
    chosen: dict[int, int] = {}  # clause index -> index of its wording

    def text(choice: dict[int, int]) -> str:
        return _join(clauses, {index: clauses[index].variants[variant] for index, variant in choice.items()})

    for _, index, variant in sorted(steps):
        present = chosen.get(index)
        if present is None and variant != len(clauses[index].variants) - 1:
            continue  # a clause's detail only once it is in
        if present is not None and present <= variant:
            continue  # already as detailed
        trial = {**chosen, index: variant}
        if len(text(trial)) <= limit:
            chosen = trial
    return text(chosen)


# -- words -----------------------------------------------------------------------------------------------------------


def _day(value: date) -> str:
    return value.strftime("%m/%d/%y")


def _days(values: Iterable[date]) -> str:
    ordered = sorted(set(values))
    if not ordered:
        return ""
    return _day(ordered[0]) if len(ordered) == 1 else f"{_day(ordered[0])}-{_day(ordered[-1])}"


def _person(provider: ProviderFacts | None) -> str:
    if provider is None:
        return ""
    credentials = (provider.credentials or "").replace(",", " ").split()
    initial = provider.first_name.strip()[:1]
    name = f"{initial} {provider.last_name}".strip()
    if any(degree in (c.upper() for c in credentials) for degree in _DENTIST_DEGREES):
        return f"DR {name}"
    return f"{credentials[0]} {name}" if credentials else name


def _tooth_order(tooth: str) -> tuple[int, int, str]:
    return (0, int(tooth), "") if tooth.isdigit() else (1, 0, tooth)


def _teeth(images: Iterable[ImageFacts]) -> str:
    """Teeth as the example claims write them: runs of permanent teeth as ranges (2-4), the rest listed."""
    teeth = sorted({tooth for image in images for tooth in image.teeth}, key=_tooth_order)
    parts: list[str] = []
    run: list[int] = []

    def flush() -> None:
        if run:
            parts.append(str(run[0]) if len(run) == 1 else f"{run[0]}-{run[-1]}")
            run.clear()

    for tooth in teeth:
        if tooth.isdigit() and int(tooth) <= 32 and (not run or int(tooth) == run[-1] + 1):
            run.append(int(tooth))
            continue
        flush()
        if tooth.isdigit() and int(tooth) <= 32:
            run.append(int(tooth))
        else:
            parts.append(tooth)
    flush()
    if not parts:
        return ""
    return ("TOOTH " if len(teeth) == 1 else "TEETH ") + ",".join(parts)


def _summary(images: Sequence[ImageFacts]) -> str:
    """3 PA 2 BW 4 PHOTO: images by kind in the order first seen; a complete series counts once."""
    counts: dict[str, int] = {}
    series: set[str] = set()
    for image in images:
        short = _SHORT_KINDS.get(image.kind, image.kind.replace("_", " ").upper())
        if image.kind == "complete_series" or (image.series_id and image.kind in ("periapical", "bitewing")):
            key = image.series_id or f"{image.capturing_organization_id}:{image.captured_on}"
            if key in series:
                continue
            series.add(key)
            short = "FMX"
        counts[short] = counts.get(short, 0) + 1
    return " ".join(f"{count} {short}" for short, count in counts.items())


def _billed_images(claim: Claim, visit: VisitFacts, codes: frozenset[str] | None = None) -> list[ImageFacts]:
    ids = {image_id for line in claim.lines if codes is None or line.code in codes for image_id in line.image_ids}
    return [image for image in visit.images if image.id in ids]


def _capturer(images: Sequence[ImageFacts], visit: VisitFacts) -> ProviderFacts | None:
    people = {provider.id: provider for provider in visit.capturing_providers}
    return next((people[i.capturing_provider_id] for i in images if i.capturing_provider_id in people), None)


def _mode(claim: Claim) -> tuple[str, str] | None:
    codes = {line.code for line in claim.lines}
    if "D9996" in codes:
        return "ASYNC STORE-AND-FORWARD TELEDENTISTRY", "ASYNC TELEDENT"
    if "D9995" in codes:
        return "LIVE VIDEO TELEDENTISTRY", "LIVE TELEDENT"
    return None


# -- per role --------------------------------------------------------------------------------------------------------


def _capture_clauses(claim: Claim, visit: VisitFacts) -> list[_Clause]:
    images = _billed_images(claim, visit)
    summary, teeth = _summary(images), _teeth(images)
    reader = _person(visit.reader_provider)
    org_name = visit.reader_organization.name if visit.reader_organization else ""
    capture_only = any(
        CATALOGUE[line.code].category == CAPTURE_ONLY for line in claim.lines if line.code in CATALOGUE
    )
    if not capture_only:
        # This office took and read its images itself, and also sent them out (billing-rules Example 5).
        return [
            _clause(0, "TAKEN AND READ HERE"),
            _clause(1, visit.reason or ""),
            _clause(2, f"{summary} {teeth}", summary, detail=3),
            _clause(2, f"COPY SENT TO {reader} FOR A SECOND READING", f"COPY SENT TO {reader}", detail=5)
            if reader
            else _clause(9, ""),
        ]
    taken_on = _days(image.captured_on for image in images)
    capturer = _capturer(images, visit)
    if reader:
        sent = _clause(2, f"SENT TO {reader}, {org_name}", f"SENT TO {reader}", detail=6)
    else:
        sent = _clause(2, f"SENT TO {org_name}" if org_name else "")
    return [
        _clause(0, "CAPTURE ONLY"),
        # Implied by "capture only", so said only where the room allows.
        _clause(7, "NOT READ HERE", joiner=", "),
        _clause(1, f"{summary} {teeth}", summary, detail=1.5),
        _clause(3, f"BY {_person(capturer)}" if capturer else "", joiner=" "),
        _clause(4, f"ON {taken_on}" if taken_on else "", joiner=" "),
        sent,
        _clause(5, f"ON {_day(visit.sent_on)}" if visit.sent_on else "", joiner=" "),
        _clause(6, f"FOR {visit.reason}" if visit.reason else ""),
    ]


def _reading_clauses(claim: Claim, visit: VisitFacts) -> list[_Clause]:
    images = _billed_images(claim, visit, frozenset({"D0391"}))
    summary, teeth = _summary(images), _teeth(images)
    mode = _mode(claim)
    captured_by = visit.capturing_organization
    taken_on = _days(image.captured_on for image in images)
    signed = visit.report_signed_at.date() if visit.report_signed_at else None
    return [
        _clause(0, *mode, detail=8) if mode else _clause(9, ""),
        _clause(1, f"READ {summary} {teeth}", f"READ {summary}", detail=4) if summary else _clause(9, ""),
        _clause(
            0,
            f"CAPTURED {taken_on} AT {captured_by.name} NPI {captured_by.npi}",
            f"CAPTURED {taken_on} AT {captured_by.name}",
            f"CAPTURED {taken_on} ELSEWHERE",
            "CAPTURED ELSEWHERE",
            detail=2,
        )
        if images
        else _clause(9, ""),
        _clause(1, f"REPORT SIGNED {_day(signed)}" if signed else ""),
        _clause(6, f"TO {_person(claim.referring_provider)}" if claim.referring_provider else "", joiner=" "),
    ]


def _single_clauses(claim: Claim, visit: VisitFacts) -> list[_Clause]:
    images = _billed_images(claim, visit)
    summary, teeth = _summary(images), _teeth(images)
    mode = _mode(claim)
    if mode is None:
        # Taken and read in the office, no teledentistry: the clinical reason is what a reviewer needs.
        return [
            _clause(0, visit.reason or ""),
            _clause(1, "TAKEN AND READ HERE"),
            _clause(2, f"{summary} {teeth}", summary, detail=3),
        ]
    capturer = _capturer(images, visit)
    site = _PLACES.get(visit.place_of_service, "")
    taken_on = _days(image.captured_on for image in images)
    signed = visit.report_signed_at.date() if visit.report_signed_at else None
    reader = _person(visit.reader_provider)
    if summary and site:
        taken = _clause(
            1, f"{summary} {teeth} TAKEN AT {site}", f"{summary} TAKEN AT {site}", f"{summary} TAKEN", detail=2
        )
    else:
        taken = _clause(1, f"{summary} {teeth}", summary, detail=2)
    return [
        _clause(0, *mode, detail=8),
        taken,
        _clause(4, f"BY {_person(capturer)}" if capturer else "", joiner=" "),
        _clause(3, f"ON {taken_on}" if taken_on else "", joiner=" "),
        _clause(1, f"READ REMOTELY BY {reader}", "READ REMOTELY", detail=5) if reader else _clause(1, "READ REMOTELY"),
        _clause(1, f"REPORT SIGNED {_day(signed)}" if signed else "", joiner=", "),
        _clause(6, f"FOR {visit.reason}" if visit.reason else ""),
    ]


def default_narrative(claim: Claim, visit: VisitFacts) -> str:
    """The claim note the engine proposes for ``claim``; billing staff may replace it before export.

    At most NARRATIVE_LIMIT characters of the X12 basic character set without separators. Empty when the facts give
    nothing to say (a claim without lines), and the 837D then carries no NTE.
    """
    if not claim.lines:
        return ""
    if claim.role == "capture":
        clauses = _capture_clauses(claim, visit)
    elif claim.role == "interpretation":
        clauses = _reading_clauses(claim, visit)
    else:
        clauses = _single_clauses(claim, visit)
    return _fit([clause for clause in clauses if clause.variants])
