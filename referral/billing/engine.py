"""Turn the facts of one referral visit into claims, one per billing organization, each line with its reason.

The split decision (PRODUCT.md billing rule 1) is made per image: the practice that captured an image bills the
capture, the practice that read it bills the reading, and a practice that did both bills the code that includes
both. Edits never change what was billed; they say what a payer will object to, and a hold keeps the claim back.
"""

from __future__ import annotations

import calendar
import hashlib
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import date
from decimal import Decimal

from referral.billing.catalogue import CAPTURE_ONLY, CATALOGUE, UnknownCode, procedure
from referral.billing.model import (
    Claim,
    ClaimLine,
    Edit,
    ImageFacts,
    OrganizationFacts,
    PriorLine,
    ProviderFacts,
    VisitFacts,
)
from referral.billing.profiles import PayerProfile, load_profile

__all__ = ["KINDS", "check_claim", "generate_claims"]

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
_SERIES_CODES = frozenset({"D0210", "D0709"})
_PA_BW_READ = frozenset({"D0220", "D0230", "D0270", "D0272", "D0273", "D0274", "D0277"})
_PA_BW_CAPTURE = frozenset({"D0707", "D0708"})
_PERIAPICAL_CODES = frozenset({"D0220", "D0230", "D0707"})
_PHOTO_CODES = frozenset({"D0350", "D0703"})
_TELEDENTISTRY_CODES = frozenset({"D9995", "D9996"})
_MODES = {"asynchronous": "D9996", "synchronous": "D9995"}
# ADA claims carry at most 32 teeth on one line (billing-rules §10 rule 20).
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
    """Location of a quantity-1 line covering ``images``: several teeth may share such a line (rule 20)."""
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


def _group_by_where(images: Iterable[ImageFacts]) -> list[tuple[_Where, list[ImageFacts]]]:
    """Images that may share one line with quantity > 1: same single tooth, or same area without teeth.

    An image naming several teeth gets a line of its own, because several teeth on a line need quantity 1.
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


@dataclass(frozen=True)
class _Context:
    """What explanations need to say about who did what."""

    reader_name: str | None
    capture_only: bool
    # This practice read its own images although another practice reads them too (billing-rules Example 5).
    also_read_elsewhere: bool


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
        for where, group in _group_by_where(todays):
            explanation = f"{_who_did_it(ctx)} is billed: {_plural(len(group), what)} on {day}, {unit}."
            drafts.append(_Draft(code, len(group), day, rule, explanation, where, tuple(group)))
    return drafts


def _periapical_drafts(images: Sequence[ImageFacts], ctx: _Context) -> list[_Draft]:
    if ctx.capture_only:
        # The capture-only code has no first/additional split (billing-rules §10 rule 4).
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
        for where, group in _group_by_where(rest):
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
        # Capture-only bitewings are per image; the group codes include a reading (billing-rules §10 rule 17).
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
        return [_Draft("D0391", 1, day, "reading.per-report", explanation, _where_one_line(images), tuple(images))]
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
        drafts.append(_Draft("D0391", len(group), day, "reading.per-image", explanation, where, tuple(group)))
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


def _build_claim(visit: VisitFacts, profile: PayerProfile, triage: _Triage, plan: _Plan) -> Claim | None:
    org = plan.org
    names = {visit.capturing_organization.id: visit.capturing_organization.name}
    if visit.reader_organization is not None:
        names[visit.reader_organization.id] = visit.reader_organization.name
    signed_on = visit.report_signed_at.date() if visit.report_signed_at else None
    reader_name = visit.reader_organization.name if visit.reader_organization else None
    ctx = _Context(reader_name, plan.capture_only, plan.role == "capture" and not plan.capture_only)

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
    drafts: list[_Draft] = []
    if plan.evaluation is not None:
        drafts += _evaluation_drafts(visit, profile, plan, signed_on)
    drafts += imaging
    if plan.reads_others and signed_on is not None:
        drafts += _reading_drafts(others, signed_on, profile, names)
    if plan.teledentistry and signed_on is not None:
        code = _MODES[visit.mode]
        how = "Store-and-forward" if code == "D9996" else "Live-video"
        drafts.append(
            _Draft(
                code,
                1,
                signed_on,
                f"teledentistry.{visit.mode}",
                f"{how} teledentistry: reported once per patient per date by the dentist who diagnoses and plans "
                "treatment, beside the procedures it supports.",
                _Where(),
                (),
            )
        )
    if not drafts:
        return None

    lines = tuple(
        ClaimLine(
            number=number,
            code=draft.code,
            quantity=draft.quantity,
            fee=org.fee_schedule.get(draft.code, Decimal("0")),
            date_of_service=draft.day,
            control_number=_control_number(visit.referral_id, org.id, number),
            explanation=draft.explanation,
            rule=draft.rule,
            tooth=draft.where.tooth,
            teeth=draft.where.teeth,
            area=draft.where.area,
            image_ids=tuple(image.id for image in draft.images),
        )
        for number, draft in enumerate(drafts, start=1)
    )
    claim = Claim(
        billing_organization=org,
        role=plan.role,
        rendering_provider=plan.rendering,
        place_of_service=plan.place_of_service,
        date_of_service=min(line.date_of_service for line in lines),
        payer_profile=profile.id,
        lines=lines,
        edits=(),
        patient=visit.patient,
        coverage=visit.coverage,
        referral_id=visit.referral_id,
        referring_provider=plan.referring,
        frequency=visit.claim_frequency,
    )
    unknown = [image for image in triage.unknown_kind if image in considered]
    build_edits = _left_out_edit(considered, triage) + _unknown_kind_edit(unknown) + edits
    return replace(claim, edits=(*build_edits, *check_claim(claim, visit, profile)))


def _evaluation_drafts(visit: VisitFacts, profile: PayerProfile, plan: _Plan, signed_on: date | None) -> list[_Draft]:
    code = profile.evaluation_code
    if plan.evaluation == "reader" and signed_on is not None:
        reader = visit.reader_provider
        who = f"{reader.first_name} {reader.last_name}" if reader else "the reader"
        explanation = (
            f"The signed report records an evaluation by {who}; billed with the payer's evaluation code for "
            "teledentistry, and only because an evaluation was performed."
        )
        return [_Draft(code, 1, signed_on, "evaluation.reader", explanation, _Where(), ())]
    own_days = [image.captured_on for image in visit.images if image.capturing_organization_id == plan.org.id]
    if plan.evaluation != "capturing" or not own_days:
        return []
    day = min(own_days)
    explanation = f"The capturing dentist examined the patient on {day}; billed with the payer's evaluation code."
    return [_Draft(code, 1, day, "evaluation.capturing-office", explanation, _Where(), ())]


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
                # Billing-rules Example 5: an office that read its own images bills the full codes all the same.
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


# -- edits ----------------------------------------------------------------------------------------------------------


def _numbers(lines: Iterable[ClaimLine]) -> tuple[int, ...]:
    return tuple(sorted({line.number for line in lines}))


def _lines_by_day(lines: Iterable[ClaimLine]) -> dict[date, list[ClaimLine]]:
    days: dict[date, list[ClaimLine]] = defaultdict(list)
    for line in lines:
        days[line.date_of_service].append(line)
    return dict(sorted(days.items()))


def _months_before(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 - months
    year, month = divmod(index, 12)
    last = calendar.monthrange(year, month + 1)[1]
    return date(year, month + 1, min(day.day, last))


def _codes_in_words(lines: Iterable[ClaimLine]) -> str:
    return ", ".join(dict.fromkeys(line.code for line in lines))


def _check_validity(claim: Claim) -> list[Edit]:
    edits = []
    for line in claim.lines:
        try:
            known = procedure(line.code)
        except UnknownCode:
            edits.append(
                Edit(
                    "code-validity",
                    "hold",
                    f"{line.code} is not a code this engine knows; check it before sending.",
                    (line.number,),
                )
            )
            continue
        if known.is_valid_on(line.date_of_service):
            continue
        if known.valid_from is not None and line.date_of_service < known.valid_from:
            why = f"it can be reported only from {known.valid_from}"
        else:
            why = f"it was retired after {known.valid_to}"
        edits.append(
            Edit(
                "code-validity",
                "hold",
                f"{line.code} is not valid for a service on {line.date_of_service}: {why}. Payers return such lines.",
                (line.number,),
            )
        )
    return edits


def _check_recognised(claim: Claim, profile: PayerProfile) -> list[Edit]:
    refused = [line for line in claim.lines if not profile.recognises(line.code)]
    if not refused:
        return []
    codes = _codes_in_words(refused)
    if all(line.code in CATALOGUE and CATALOGUE[line.code].category == CAPTURE_ONLY for line in refused):
        message = (
            f"{profile.name} does not accept capture-only codes ({codes}). The lines are kept as performed; the "
            "office must check the plan's instructions for reporting image capture before sending."
        )
    else:
        message = f"{profile.name} does not recognise {codes}; check the plan's instructions before sending."
    return [Edit("payer-code-not-recognised", "hold", message, _numbers(refused))]


def _check_first_periapical(claim: Claim) -> list[Edit]:
    edits = []
    for day, lines in _lines_by_day(claim.lines).items():
        additional = [line for line in lines if line.code == "D0230"]
        if additional and not any(line.code == "D0220" for line in lines):
            edits.append(
                Edit(
                    "d0230-needs-d0220",
                    "hold",
                    f"D0230 on {day} has no D0220 that day: an additional periapical needs the first one billed.",
                    _numbers(additional),
                )
            )
    return edits


def _check_complete_series(claim: Claim, profile: PayerProfile) -> list[Edit]:
    if not profile.complete_series_exclusive:
        return []
    edits = []
    for day, lines in _lines_by_day(claim.lines).items():
        series = [line for line in lines if line.code in _SERIES_CODES]
        excluded = [line for line in lines if line.code in _PA_BW_READ | _PA_BW_CAPTURE]
        if series and excluded:
            edits.append(
                Edit(
                    "complete-series-exclusive",
                    "hold",
                    f"{_codes_in_words(series)} on {day} already includes that day's periapicals and bitewings; "
                    f"{_codes_in_words(excluded)} will not be paid beside it. Remove them or split the series.",
                    _numbers(excluded),
                )
            )
    return edits


def _check_rebundling(claim: Claim, profile: PayerProfile) -> list[Edit]:
    comparator = profile.rebundle_comparator
    if comparator is None:
        return []
    schedule = claim.billing_organization.fee_schedule
    edits = []
    for series_code, family in (("D0210", _PA_BW_READ), ("D0709", _PA_BW_CAPTURE)):
        threshold = schedule.get(series_code, Decimal("0"))
        if threshold <= 0:
            continue  # without a series fee there is nothing to compare against
        for day, lines in _lines_by_day(claim.lines).items():
            chosen = [line for line in lines if line.code in family]
            if not chosen or any(line.code in _SERIES_CODES for line in lines):
                continue
            total = sum((line.charge for line in chosen), Decimal("0"))
            if total > threshold or (comparator == ">=" and total == threshold):
                reached = "reach" if comparator == ">=" else "exceed"
                edits.append(
                    Edit(
                        "complete-series-fee",
                        "warning",
                        f"Periapicals and bitewings on {day} total {total}, which {reached}s the {series_code} fee "
                        f"of {threshold}: the payer may pay them as a complete series and start its frequency clock.",
                        _numbers(chosen),
                    )
                )
    return edits


def _check_periapical_location(claim: Claim, profile: PayerProfile) -> list[Edit]:
    missing = [
        line for line in claim.lines if line.code in _PERIAPICAL_CODES and not (line.tooth or line.teeth or line.area)
    ]
    if not missing:
        return []
    return [
        Edit(
            "periapical-location",
            profile.periapical_location,
            "Periapical lines without a tooth or area are the commonest avoidable denial; add the tooth or area "
            "to the images.",
            _numbers(missing),
        )
    ]


def _prior_lines(claim: Claim, visit: VisitFacts, codes: tuple[str, ...], same_organization: bool) -> list[PriorLine]:
    return [
        prior
        for prior in visit.prior_lines
        if prior.code in codes
        and (not same_organization or prior.billing_organization_id == claim.billing_organization.id)
    ]


def _check_daily_caps(claim: Claim, visit: VisitFacts, profile: PayerProfile) -> list[Edit]:
    edits = []
    for cap in profile.daily_caps:
        prior = _prior_lines(claim, visit, cap.codes, cap.same_organization)
        for day, lines in _lines_by_day(claim.lines).items():
            capped = [line for line in lines if line.code in cap.codes]
            if not capped:
                continue
            earlier = sum(p.quantity for p in prior if p.date_of_service == day)
            units = sum(line.quantity for line in capped) + earlier
            if units > cap.max_units:
                already = f", {earlier} of them on earlier claims" if earlier else ""
                edits.append(
                    Edit(
                        "daily-cap",
                        "hold",
                        f"{'/'.join(cap.codes)}: {units} units on {day}{already}; the payer allows {cap.max_units} "
                        f"per day ({cap.note or 'payer limit'}).",
                        _numbers(capped),
                    )
                )
    return edits


def _check_frequencies(claim: Claim, visit: VisitFacts, profile: PayerProfile) -> list[Edit]:
    edits = []
    for rule in profile.frequencies:
        bucket = [line for line in claim.lines if line.code in rule.codes]
        if not bucket:
            continue
        prior = _prior_lines(claim, visit, rule.codes, rule.same_organization)
        offending: list[ClaimLine] = []
        earlier: set[tuple[str, date]] = set()
        for day in sorted({line.date_of_service for line in bucket}):
            start = _months_before(day, rule.months)
            occasions = {line.date_of_service for line in bucket if start < line.date_of_service <= day}
            found = {(p.code, p.date_of_service) for p in prior if start < p.date_of_service <= day}
            occasions |= {seen for _, seen in found}
            if len(occasions) > rule.max_occasions:
                offending += [line for line in bucket if line.date_of_service == day]
                earlier |= found
        if offending:
            history = ", ".join(
                f"{code} on {seen}" for code, seen in sorted(earlier, key=lambda item: (item[1], item[0]))
            )
            edits.append(
                Edit(
                    "frequency",
                    "hold",
                    f"{'/'.join(rule.codes)}: the payer allows {rule.max_occasions} per {rule.months} months "
                    f"({rule.note or 'payer limit'}); "
                    + (f"earlier claims already have {history}." if history else "this claim alone exceeds it."),
                    _numbers(offending),
                )
            )
    return edits


def _check_photo_only(claim: Claim) -> list[Edit]:
    procedures = [line for line in claim.lines if line.code not in _TELEDENTISTRY_CODES]
    if procedures and all(line.code in _PHOTO_CODES for line in procedures):
        return [
            Edit(
                "photos-only",
                "warning",
                "Photos are the only procedure on this claim; payers often deny them without the exam or "
                "treatment they support. Add a narrative or bill them with that procedure.",
                _numbers(procedures),
            )
        ]
    return []


def _check_reading(claim: Claim, visit: VisitFacts) -> list[Edit]:
    readings = [line for line in claim.lines if line.code == "D0391"]
    if not readings:
        return []
    edits = []
    if visit.report_signed_at is None:
        edits.append(
            Edit(
                "d0391-needs-signed-report",
                "hold",
                "D0391 bills a reading with its written report, and the report is not signed yet.",
                _numbers(readings),
            )
        )
    captured_by = {image.id: image.capturing_organization_id for image in visit.images}
    own = [
        line
        for line in readings
        if any(captured_by.get(image_id) == claim.billing_organization.id for image_id in line.image_ids)
    ]
    if own:
        edits.append(
            Edit(
                "d0391-reader-captured",
                "hold",
                "D0391 is only for a reader not associated with the capture, and this practice captured the image; "
                "bill the code that includes the reading instead.",
                _numbers(own),
            )
        )
    return edits


def _check_teledentistry_alone(claim: Claim) -> list[Edit]:
    if claim.lines and all(line.code in _TELEDENTISTRY_CODES for line in claim.lines):
        return [
            Edit(
                "teledentistry-alone",
                "hold",
                f"{_codes_in_words(claim.lines)} is the only procedure on this claim; a teledentistry code is "
                "reported beside the procedures it supports (the reading or the evaluation).",
                _numbers(claim.lines),
            )
        ]
    return []


def check_claim(claim: Claim, visit: VisitFacts, profile: PayerProfile) -> tuple[Edit, ...]:
    """The payer edits for ``claim`` (its own ``edits`` are ignored); holds keep it from being sent."""
    return (
        *_check_validity(claim),
        *_check_recognised(claim, profile),
        *_check_reading(claim, visit),
        *_check_teledentistry_alone(claim),
        *_check_first_periapical(claim),
        *_check_complete_series(claim, profile),
        *_check_rebundling(claim, profile),
        *_check_periapical_location(claim, profile),
        *_check_daily_caps(claim, visit, profile),
        *_check_frequencies(claim, visit, profile),
        *_check_photo_only(claim),
    )
