"""Turn the facts of one referral visit into claims, one per billing organization, each line with its reason.

The split decision (docs/billing.md, "Who bills what") is made per image: the practice that captured an image bills the
capture, the practice that read it bills the reading, and a practice that did both bills the code that includes
both. Edits never change what was billed; they say what a payer will object to, and a hold keeps the claim back.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from decimal import Decimal

from referral.billing.edits import check_claim
from referral.billing.model import (
    DATE_BASES,
    Attachment,
    Claim,
    ClaimLine,
    Edit,
    ImageFacts,
    OrganizationFacts,
    ProviderFacts,
    VisitFacts,
)
from referral.billing.narrative import default_narrative, place_in_words
from referral.billing.profiles import ATTACHMENT_REPORT_TYPES, PayerProfile, load_profile

__all__ = ["KINDS", "generate_claims"]

PERIAPICAL = "periapical"
BITEWING = "bitewing"
COMPLETE_SERIES = "complete_series"
PHOTO_KINDS = frozenset({"photo_intraoral", "photo_extraoral"})
# Kinds billed one code per image, as (capture only, capture and reading).
_PER_IMAGE_CODES: dict[str, tuple[str, str]] = {
    "occlusal": ("D0706", "D0240"),
    "extraoral_posterior": ("D0705", "D0251"),
    "panoramic": ("D0701", "D0330"),
    "cephalometric": ("D0702", "D0340"),
    "cbct_limited": ("D0380", "D0364"),
}
# Also the order in which lines appear on a claim: the broadest imaging first, as a clerk reads a ledger.
RADIOGRAPH_KINDS: tuple[str, ...] = (COMPLETE_SERIES, PERIAPICAL, BITEWING, *_PER_IMAGE_CODES)
KINDS = frozenset(RADIOGRAPH_KINDS) | PHOTO_KINDS

_KIND_WORDS = {
    COMPLETE_SERIES: "complete-series image",
    PERIAPICAL: "periapical",
    BITEWING: "bitewing",
    "occlusal": "occlusal film",
    "extraoral_posterior": "extraoral posterior film",
    "panoramic": "panoramic film",
    "cephalometric": "cephalometric film",
    "cbct_limited": "small-field cone beam CT",
    "photo_intraoral": "photo",
    "photo_extraoral": "photo",
}

_BITEWING_GROUPS = {1: "D0270", 2: "D0272", 3: "D0273", 4: "D0274", 7: "D0277", 8: "D0277"}
_MODES = {"asynchronous": "D9996", "synchronous": "D9995"}
# ADA claims carry at most 32 teeth on one line (docs/billing.md, "Teeth, areas and surfaces").
_MAX_TEETH_ON_LINE = 32


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


# -- which images can be billed -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Triage:
    billable: tuple[ImageFacts, ...]
    left_out: dict[str, str]  # image id -> why it is not billed
    unknown_kind: tuple[ImageFacts, ...]


def _triage(images: Sequence[ImageFacts]) -> _Triage:
    """Bill each view once: a retake replaces its original, and a nondiagnostic image is no billable image.

    The billed image of a view is the first diagnostic one in capture order (the original, or the retake that
    replaced a failed original), so a view is never lost just because its first exposure failed.
    """
    unknown = tuple(image for image in images if image.kind not in KINDS)
    known = [image for image in images if image.kind in KINDS]
    by_id = {image.id: image for image in known}

    def root_of(image: ImageFacts) -> str:
        seen = {image.id}
        current = image
        while current.retake_of is not None:
            if current.retake_of not in by_id or current.retake_of in seen:
                return current.retake_of
            seen.add(current.retake_of)
            current = by_id[current.retake_of]
        return current.id

    views: dict[str, list[ImageFacts]] = defaultdict(list)
    for image in known:
        views[root_of(image)].append(image)

    billable: list[ImageFacts] = []
    left_out: dict[str, str] = {}
    for root, members in views.items():
        if root not in by_id:
            for image in members:
                left_out[image.id] = f"retake of image {root}, which is not part of this case"
            continue
        chosen = next((image for image in members if not image.nondiagnostic), None)
        for image in members:
            if image is chosen:
                billable.append(image)
            elif image.nondiagnostic:
                left_out[image.id] = "not of diagnostic quality"
            else:
                left_out[image.id] = f"retake of image {image.retake_of}; a view is billed once"
    order = {image.id: index for index, image in enumerate(images)}
    billable.sort(key=lambda image: order[image.id])
    return _Triage(tuple(billable), left_out, unknown)


def _in_series(image: ImageFacts) -> bool:
    # A series id on a periapical or bitewing says it was taken as part of a complete series.
    return image.kind == COMPLETE_SERIES or (image.series_id is not None and image.kind in (PERIAPICAL, BITEWING))


def _series_key(image: ImageFacts) -> str:
    return image.series_id or f"{image.capturing_organization_id}:{image.captured_on.isoformat()}"


# -- where a line points in the mouth -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Where:
    tooth: str | None = None
    teeth: tuple[str, ...] = ()
    area: str | None = None


def _where_one_line(images: Iterable[ImageFacts]) -> _Where:
    """Location of a quantity-1 line covering ``images``: several teeth may share such a line (docs/billing.md)."""
    teeth: list[str] = []
    areas: list[str] = []
    for image in images:
        teeth.extend(tooth for tooth in image.teeth if tooth not in teeth)
        if image.area and image.area not in areas:
            areas.append(image.area)
    if len(teeth) == 1:
        return _Where(tooth=teeth[0])
    if len(teeth) > _MAX_TEETH_ON_LINE:
        return _Where(area="00")
    if teeth:
        return _Where(teeth=tuple(teeth))
    return _Where(area=areas[0]) if len(areas) == 1 else _Where()


def _group_by_where(
    images: Iterable[ImageFacts], site_of: Callable[[ImageFacts], str | None] | None = None
) -> list[tuple[_Where, list[ImageFacts]]]:
    """Images that may share one line with quantity > 1: same single tooth, or same area without teeth.

    An image naming several teeth gets a line of its own, because several teeth on a line need quantity 1. With
    ``site_of``, images taken at different places of service never share a line either: a line has one place.
    """
    groups: dict[tuple[str, ...], tuple[_Where, list[ImageFacts]]] = {}
    for image in images:
        if len(image.teeth) > 1:
            key: tuple[str, ...] = ("image", image.id)
            where = _where_one_line([image])
        elif image.teeth:
            key, where = ("tooth", image.teeth[0]), _Where(tooth=image.teeth[0])
        elif image.area:
            key, where = ("area", image.area), _Where(area=image.area)
        else:
            key, where = ("nowhere",), _Where()
        if site_of is not None:
            key = (*key, "site", site_of(image) or "")
        groups.setdefault(key, (where, []))[1].append(image)
    return list(groups.values())


# -- line drafts ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Draft:
    code: str
    quantity: int
    day: date
    rule: str
    explanation: str
    where: _Where
    images: tuple[ImageFacts, ...]
    basis: str = "capture"  # what ``day`` is (model.DATE_BASES)
    # Where the line was performed; None: where its images were taken (capture lines) or the claim's place.
    place: str | None = None


def _no_site(_image: ImageFacts) -> str | None:
    return None


@dataclass(frozen=True)
class _Context:
    """What explanations need to say about who did what, and where each image was taken."""

    reader_name: str | None
    capture_only: bool
    # This practice read its own images although another practice reads them too (docs/billing.md, example 5).
    also_read_elsewhere: bool
    site_of: Callable[[ImageFacts], str | None] = field(default=_no_site)


def _by_day(images: Iterable[ImageFacts]) -> dict[date, list[ImageFacts]]:
    days: dict[date, list[ImageFacts]] = defaultdict(list)
    for image in images:
        days[image.captured_on].append(image)
    return dict(sorted(days.items()))


def _who_did_it(ctx: _Context) -> str:
    if ctx.capture_only:
        return f"Split billing: this practice took the images and {ctx.reader_name} reads them, so only the capture"
    if ctx.also_read_elsewhere:
        return (
            f"This practice took and read the images itself ({ctx.reader_name} reads them again and bills its own "
            "reading), so the code that includes the reading"
        )
    return "Taken and read by this practice, so the code that includes the reading"


def _per_image_drafts(
    images: Sequence[ImageFacts],
    code: str,
    rule: str,
    ctx: _Context,
    what: str,
    unit: str = "one unit per image",
) -> list[_Draft]:
    drafts = []
    for day, todays in _by_day(images).items():
        for where, group in _group_by_where(todays, ctx.site_of):
            explanation = f"{_who_did_it(ctx)} is billed: {_plural(len(group), what)} on {day}, {unit}."
            drafts.append(_Draft(code, len(group), day, rule, explanation, where, tuple(group)))
    return drafts


def _periapical_drafts(images: Sequence[ImageFacts], ctx: _Context) -> list[_Draft]:
    if ctx.capture_only:
        # The capture-only code has no first/additional split (docs/billing.md, "Capture only").
        return _per_image_drafts(images, "D0707", "capture-only.periapical", ctx, "periapical")
    drafts = []
    for day, todays in _by_day(images).items():
        first, rest = todays[0], todays[1:]
        drafts.append(
            _Draft(
                "D0220",
                1,
                day,
                "capture-and-reading.periapical-first",
                f"{_who_did_it(ctx)} is billed: the first periapical of {day} takes the first-periapical code, "
                "once per date.",
                _where_one_line([first]),
                (first,),
            )
        )
        for where, group in _group_by_where(rest, ctx.site_of):
            drafts.append(
                _Draft(
                    "D0230",
                    len(group),
                    day,
                    "capture-and-reading.periapical-additional",
                    f"{_who_did_it(ctx)} is billed: each periapical after the first on {day} takes the "
                    "each-additional code, which goes with the first-periapical line.",
                    where,
                    tuple(group),
                )
            )
    return drafts


def _bitewing_drafts(images: Sequence[ImageFacts], ctx: _Context) -> tuple[list[_Draft], list[Edit]]:
    if ctx.capture_only:
        # Capture-only bitewings are per image; the group codes include a reading (docs/billing.md, "Capture only").
        return _per_image_drafts(images, "D0708", "capture-only.bitewing", ctx, "bitewing"), []
    drafts, notes = [], []
    for day, todays in _by_day(images).items():
        count = len(todays)
        code = _BITEWING_GROUPS.get(count) or ("D0274" if count < 7 else "D0277")
        explanation = f"{_who_did_it(ctx)} is billed: {count} bitewings on {day} are one group code for that count."
        if count not in _BITEWING_GROUPS:
            covered = 4 if code == "D0274" else 8
            # No CDT group code counts 5-6 (or more than 8) bitewings and group codes must not be stacked on one
            # date, so bill the largest set actually covered and leave the rest unbilled rather than overbill.
            explanation = (
                f"{_who_did_it(ctx)} is billed: {count} bitewings on {day}; no group code exists for that count, "
                f"so the set is billed as the group of {covered}."
            )
            notes.append(
                f"{count} bitewings on {day}: no code counts {count}; billed as {code} (a set of {covered}) and the "
                f"other {count - covered} are not billed separately. Change the line if the plan says otherwise."
            )
        drafts.append(
            _Draft(code, 1, day, "capture-and-reading.bitewings", explanation, _where_one_line(todays), tuple(todays))
        )
    edits = [Edit("bitewing-count", "warning", note) for note in notes]
    return drafts, edits


def _series_drafts(images: Sequence[ImageFacts], ctx: _Context) -> list[_Draft]:
    series: dict[str, list[ImageFacts]] = defaultdict(list)
    for image in images:
        series[_series_key(image)].append(image)
    if ctx.capture_only:
        code, rule = "D0709", "capture-only.complete-series"
    else:
        code, rule = "D0210", "capture-and-reading.complete-series"
    drafts = []
    for members in series.values():
        day = min(image.captured_on for image in members)
        explanation = (
            f"{_who_did_it(ctx)} is billed: a complete series ({_plural(len(members), 'image')}) taken on {day} "
            "is billed once per series, never image by image."
        )
        drafts.append(_Draft(code, 1, day, rule, explanation, _Where(), tuple(members)))
    return drafts


def _photo_drafts(images: Sequence[ImageFacts], ctx: _Context, profile: PayerProfile) -> list[_Draft]:
    code, rule = ("D0703", "capture-only.photos") if ctx.capture_only else ("D0350", "capture-and-reading.photos")
    if profile.photo_unit == "image":
        return _per_image_drafts(images, code, rule, ctx, "photo", "one unit per photo, as this payer counts them")
    drafts = []
    for day, todays in _by_day(images).items():
        explanation = (
            f"{_who_did_it(ctx)} is billed: {_plural(len(todays), 'photo')} on {day} make one line with quantity 1, "
            "however many were taken (photos are billed per visit)."
        )
        drafts.append(_Draft(code, 1, day, rule, explanation, _where_one_line(todays), tuple(todays)))
    return drafts


def _imaging_drafts(
    images: Sequence[ImageFacts], ctx: _Context, profile: PayerProfile
) -> tuple[list[_Draft], list[Edit]]:
    series = [image for image in images if _in_series(image)]
    single = [image for image in images if not _in_series(image)]
    drafts = _series_drafts(series, ctx)
    drafts += _periapical_drafts([image for image in single if image.kind == PERIAPICAL], ctx)
    bitewings, edits = _bitewing_drafts([image for image in single if image.kind == BITEWING], ctx)
    drafts += bitewings
    for kind, (capture_code, full_code) in _PER_IMAGE_CODES.items():
        of_kind = [image for image in single if image.kind == kind]
        code = capture_code if ctx.capture_only else full_code
        rule = f"{'capture-only' if ctx.capture_only else 'capture-and-reading'}.{kind.replace('_', '-')}"
        drafts += _per_image_drafts(of_kind, code, rule, ctx, _KIND_WORDS[kind])
    drafts += _photo_drafts([image for image in single if image.kind in PHOTO_KINDS], ctx, profile)
    return drafts, edits


def _kinds_in_words(images: Sequence[ImageFacts]) -> str:
    counts: dict[str, int] = defaultdict(int)
    for image in images:
        counts[_KIND_WORDS[image.kind]] += 1
    return ", ".join(_plural(count, word) for word, count in counts.items())


def _reading_drafts(
    images: Sequence[ImageFacts], day: date, profile: PayerProfile, names: dict[str, str]
) -> list[_Draft]:
    """D0391 for radiographs captured by other practices, read here with a signed report."""
    if not images:
        return []

    def captured_by(group: Sequence[ImageFacts]) -> str:
        return ", ".join(dict.fromkeys(names.get(i.capturing_organization_id, "another practice") for i in group))

    if profile.d0391_unit == "report":
        explanation = (
            f"Reading with a signed report of images taken by {captured_by(images)}, a different practice: the reading "
            f"code, once per report ({_kinds_in_words(images)} read; the payer counts it per report)."
        )
        return [
            _Draft(
                "D0391",
                1,
                day,
                "reading.per-report",
                explanation,
                _where_one_line(images),
                tuple(images),
                basis="reading",
            )
        ]
    # A complete series read is one line for all its images rather than one line per tooth it shows.
    located: dict[tuple[str, ...], tuple[_Where, list[ImageFacts]]] = {}
    loose = []
    for image in images:
        if _in_series(image):
            located.setdefault(("series", _series_key(image)), (_Where(area="00"), []))[1].append(image)
        else:
            loose.append(image)
    # Kind by kind, so each line's explanation names one kind of film and a reviewer can match it to the report.
    groups = list(located.values())
    for kind in RADIOGRAPH_KINDS:
        groups += _group_by_where([image for image in loose if image.kind == kind])
    drafts = []
    for where, group in groups:
        explanation = (
            f"Reading with a signed report of {_kinds_in_words(group)} taken by {captured_by(group)}, a different "
            "practice: the reading code, one unit per radiograph read."
        )
        drafts.append(
            _Draft("D0391", len(group), day, "reading.per-image", explanation, where, tuple(group), basis="reading")
        )
    return drafts


# -- claims ---------------------------------------------------------------------------------------------------------


def _control_number(referral_id: str, organization_id: str, line_number: int) -> str:
    # Ids may be long or hold punctuation; REF*6R takes at most 30 characters and a digest keeps it stable.
    digest = hashlib.sha256(f"{referral_id}\x1f{organization_id}".encode()).hexdigest()[:16].upper()
    return f"{digest}L{line_number:03d}"


def _left_out_edit(images: Sequence[ImageFacts], triage: _Triage) -> list[Edit]:
    reasons = [f"{image.id} ({triage.left_out[image.id]})" for image in images if image.id in triage.left_out]
    if not reasons:
        return []
    message = "Not billed: " + "; ".join(reasons) + ". Retakes and nondiagnostic images are not billable lines."
    return [Edit("not-billable-images", "warning", message)]


def _unknown_kind_edit(images: Sequence[ImageFacts]) -> list[Edit]:
    if not images:
        return []
    listed = "; ".join(f"{image.id} (kind {image.kind!r})" for image in images)
    return [
        Edit(
            "unknown-image-kind",
            "hold",
            f"The engine does not know how to bill {listed}; correct the image kind so it can be billed or left out "
            "on purpose.",
        )
    ]


@dataclass(frozen=True)
class _Plan:
    org: OrganizationFacts
    role: str
    rendering: ProviderFacts
    place_of_service: str
    referring: ProviderFacts | None
    capture_only: bool  # this practice's own images get capture-only codes
    reads_others: bool  # D0391 for radiographs captured by other practices
    teledentistry: bool
    evaluation: str | None  # "reader", "capturing" or None


def _site_function(visit: VisitFacts, profile: PayerProfile) -> Callable[[ImageFacts], str | None]:
    """Where an image was taken, as a place-of-service code; None when nobody told us.

    A payer that fixes the capturing claim's place (profile places_of_service.capture) gets it on every capture line.
    An image that names no site was taken at the visit's site if the visit's capturing practice took it; an image
    another practice took (the reader's own films) has no known site and follows its claim.
    """
    override = profile.places_of_service.capture

    def site_of(image: ImageFacts) -> str | None:
        if override is not None:
            return override
        if image.place_of_service:
            return image.place_of_service
        if image.capturing_organization_id == visit.capturing_organization.id:
            return visit.place_of_service
        return None

    return site_of


def _teledentistry_draft(visit: VisitFacts, plan: _Plan, imaging: Sequence[_Draft], signed_on: date) -> _Draft:
    """D9995/D9996 dated with the procedures it accompanies on its own claim.

    On the reader's claim those are the reading and the evaluation, dated when the report was signed. On the claim
    of a practice that took and read its own images they are the visit's imaging lines, dated when the images were
    taken: the report's signing day would leave the code alone on a date of its own (PRODUCT.md billing rule 4).
    """
    code = _MODES[visit.mode]
    how = "Store-and-forward" if code == "D9996" else "Live-video"
    visit_days = sorted({draft.day for draft in imaging}) if plan.role == "single" else []
    if visit_days:
        day, basis = visit_days[0], "visit"
        beside = "the visit's imaging taken and read by this practice"
    else:
        day, basis = signed_on, "reading"
        beside = "the reading and any evaluation"
    explanation = (
        f"{how} teledentistry: reported once per patient per date by the dentist who diagnoses and plans "
        f"treatment, beside the procedures it supports ({beside})."
    )
    return _Draft(code, 1, day, f"teledentistry.{visit.mode}", explanation, _Where(), (), basis=basis, place=None)


def _line_explanation(draft: _Draft, place: str | None, claim_place: str, attachment: str | None) -> str:
    parts = [draft.explanation, f"Dated {draft.day}: {DATE_BASES[draft.basis]}."]
    if place is not None:
        parts.append(
            f"Performed at place of service {place} ({place_in_words(place)}), not the claim's {claim_place} "
            f"({place_in_words(claim_place)}), so the line carries its own place."
        )
    if attachment is not None:
        parts.append(
            f"The payer wants documentation with this line: {ATTACHMENT_REPORT_TYPES[attachment]} (PWK {attachment})."
        )
    return " ".join(parts)


def _attachments(lines: Sequence[ClaimLine], profile: PayerProfile) -> tuple[Attachment, ...]:
    """One claim-level attachment per report type, naming the lines it supports (an 837D has PWK only in 2300)."""
    by_type: dict[str, list[int]] = {}
    for line in lines:
        if line.attachment is not None:
            by_type.setdefault(line.attachment, []).append(line.number)
    return tuple(
        Attachment(report_type, profile.attachment_transmission, None, tuple(numbers))
        for report_type, numbers in by_type.items()
    )


def _build_claim(visit: VisitFacts, profile: PayerProfile, triage: _Triage, plan: _Plan) -> Claim | None:
    org = plan.org
    names = {visit.capturing_organization.id: visit.capturing_organization.name}
    if visit.reader_organization is not None:
        names[visit.reader_organization.id] = visit.reader_organization.name
    signed_on = visit.report_signed_at.date() if visit.report_signed_at else None
    reader_name = visit.reader_organization.name if visit.reader_organization else None
    site_of = _site_function(visit, profile)
    ctx = _Context(reader_name, plan.capture_only, plan.role == "capture" and not plan.capture_only, site_of)

    own = [image for image in triage.billable if image.capturing_organization_id == org.id]
    others = [
        image
        for image in triage.billable
        if image.capturing_organization_id != org.id and image.kind not in PHOTO_KINDS
    ]
    considered = [
        image
        for image in visit.images
        if image.capturing_organization_id == org.id or (plan.reads_others and image.kind not in PHOTO_KINDS)
    ]

    imaging, edits = _imaging_drafts(own, ctx, profile)
    # A capture line was performed where its first image was taken (per-image lines never mix places).
    imaging = [replace(draft, place=site_of(draft.images[0])) if draft.images else draft for draft in imaging]
    drafts: list[_Draft] = []
    if plan.evaluation is not None:
        drafts += _evaluation_drafts(visit, profile, plan, signed_on, site_of)
    drafts += imaging
    if plan.reads_others and signed_on is not None:
        drafts += _reading_drafts(others, signed_on, profile, names)
    if plan.teledentistry and signed_on is not None:
        drafts.append(_teledentistry_draft(visit, plan, imaging, signed_on))
    if not drafts:
        return None

    lines = []
    for number, draft in enumerate(drafts, start=1):
        place = draft.place if draft.place is not None and draft.place != plan.place_of_service else None
        attachment = profile.attachment_for(draft.code)
        lines.append(
            ClaimLine(
                number=number,
                code=draft.code,
                quantity=draft.quantity,
                fee=org.fee_schedule.get(draft.code, Decimal("0")),
                date_of_service=draft.day,
                control_number=_control_number(visit.referral_id, org.id, number),
                explanation=_line_explanation(draft, place, plan.place_of_service, attachment),
                rule=draft.rule,
                tooth=draft.where.tooth,
                teeth=draft.where.teeth,
                area=draft.where.area,
                image_ids=tuple(image.id for image in draft.images),
                place_of_service=place,
                date_basis=draft.basis,
                attachment=attachment,
            )
        )
    claim = Claim(
        billing_organization=org,
        role=plan.role,
        rendering_provider=plan.rendering,
        place_of_service=plan.place_of_service,
        date_of_service=min(line.date_of_service for line in lines),
        payer_profile=profile.id,
        lines=tuple(lines),
        edits=(),
        patient=visit.patient,
        coverage=visit.coverage,
        referral_id=visit.referral_id,
        referring_provider=plan.referring,
        frequency=visit.claim_frequency,
        attachments=_attachments(lines, profile),
    )
    unknown = [image for image in triage.unknown_kind if image in considered]
    build_edits = _left_out_edit(considered, triage) + _unknown_kind_edit(unknown) + edits
    return replace(
        claim,
        edits=(*build_edits, *check_claim(claim, visit, profile)),
        narrative=default_narrative(claim, visit),
    )


def _evaluation_drafts(
    visit: VisitFacts,
    profile: PayerProfile,
    plan: _Plan,
    signed_on: date | None,
    site_of: Callable[[ImageFacts], str | None],
) -> list[_Draft]:
    code = profile.evaluation_code
    if plan.evaluation == "reader" and signed_on is not None:
        reader = visit.reader_provider
        who = f"{reader.first_name} {reader.last_name}" if reader else "the reader"
        explanation = (
            f"The signed report records an evaluation by {who}; billed with the payer's evaluation code for "
            "teledentistry, and only because an evaluation was performed."
        )
        return [_Draft(code, 1, signed_on, "evaluation.reader", explanation, _Where(), (), basis="reading")]
    own = [image for image in visit.images if image.capturing_organization_id == plan.org.id]
    if plan.evaluation != "capturing" or not own:
        return []
    first = min(own, key=lambda image: image.captured_on)
    explanation = (
        f"The capturing dentist examined the patient on {first.captured_on}; billed with the payer's evaluation code."
    )
    # The examination happened in person where the patient was, whatever the claim's own place.
    return [
        _Draft(
            code,
            1,
            first.captured_on,
            "evaluation.capturing-office",
            explanation,
            _Where(),
            (),
            basis="visit",
            place=site_of(first) or visit.place_of_service,
        )
    ]


def _check_facts(visit: VisitFacts) -> None:
    if visit.mode not in _MODES:
        raise ValueError(f"visit mode must be asynchronous or synchronous, not {visit.mode!r}")
    if (visit.reader_organization is None) != (visit.reader_provider is None):
        raise ValueError("a reader needs both an organization and a provider")
    if (
        visit.reader_provider is not None
        and visit.reader_organization is not None
        and visit.reader_provider.organization_id != visit.reader_organization.id
    ):
        raise ValueError("the reading provider does not belong to the reading organization")
    if visit.report_signed_at is not None and visit.reader_provider is None:
        raise ValueError("a signed report needs the reader who signed it")


def _teledentistry_pos(visit: VisitFacts, profile: PayerProfile) -> str:
    places = profile.places_of_service
    return places.teledentistry_at_home if visit.patient_at_home else places.teledentistry


def generate_claims(visit: VisitFacts, profile: PayerProfile | None = None) -> list[Claim]:
    """Claims for ``visit``, capture claim first. Without a profile, the coverage's payer id chooses one."""
    _check_facts(visit)
    if profile is None:
        profile = load_profile(visit.coverage.payer_id if visit.coverage else None)
    triage = _triage(visit.images)
    capturing = visit.capturing_organization
    reader_org, reader = visit.reader_organization, visit.reader_provider
    signed = visit.report_signed_at is not None
    capture_pos = profile.places_of_service.capture or visit.place_of_service
    plans: list[_Plan] = []

    if reader_org is None or reader is None:
        # Nobody read the case through us: only an office that read its own images has anything whole to bill.
        if visit.capturing_office_interpreted:
            plans.append(
                _Plan(
                    org=capturing,
                    role="single",
                    rendering=visit.referring_provider,
                    place_of_service=capture_pos,
                    referring=None,
                    capture_only=False,
                    reads_others=False,
                    teledentistry=False,
                    evaluation="capturing" if visit.capturing_office_evaluation else None,
                )
            )
    elif reader_org.id == capturing.id:
        # One practice captured and read: the code that includes the reading needs the reading to exist.
        if signed:
            evaluation = "reader" if visit.evaluation_performed else None
            if evaluation is None and visit.capturing_office_evaluation:
                evaluation = "capturing"
            plans.append(
                _Plan(
                    org=capturing,
                    role="single",
                    rendering=reader,
                    place_of_service=_teledentistry_pos(visit, profile),
                    referring=visit.referring_provider if visit.referring_provider.id != reader.id else None,
                    capture_only=False,
                    reads_others=True,
                    teledentistry=True,
                    evaluation=evaluation,
                )
            )
    else:
        plans.append(
            _Plan(
                org=capturing,
                role="capture",
                rendering=visit.referring_provider,
                place_of_service=capture_pos,
                referring=None,
                # docs/billing.md, example 5: an office that read its own images bills the full codes all the same.
                capture_only=not visit.capturing_office_interpreted,
                reads_others=False,
                teledentistry=False,
                evaluation="capturing" if visit.capturing_office_evaluation else None,
            )
        )
        if signed:
            plans.append(
                _Plan(
                    org=reader_org,
                    role="interpretation",
                    rendering=reader,
                    place_of_service=_teledentistry_pos(visit, profile),
                    referring=visit.referring_provider,
                    capture_only=False,
                    reads_others=True,
                    teledentistry=True,
                    evaluation="reader" if visit.evaluation_performed else None,
                )
            )
    claims = (_build_claim(visit, profile, triage, plan) for plan in plans)
    return [claim for claim in claims if claim is not None]
