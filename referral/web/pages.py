"""The pages of each role: the capturing office, the reader and the billing office.

Pages are rendered on the server from the same services the API uses, with the same access rules.
What a page changes, it changes by calling the JSON API from ``static/app.js`` with the session cookie
and the session's CSRF token, so a form gets exactly the API's validation messages.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable
from datetime import date
from typing import Any

import sqlalchemy as sa
from flask import abort, g, redirect, request, url_for
from flask.typing import ResponseReturnValue
from sqlalchemy.orm import Session, joinedload

from referral import timezones
from referral.billing import catalogue
from referral.db import utcnow
from referral.errors import DomainError, ValidationFailed
from referral.http.context import db_session, settings, workflow_settings
from referral.models import CLAIM_STATUSES, AdminNotice, Claim, Organization, Patient, Provider, Referral, User
from referral.models.enums import (
    CAPTURE_ONLY_SPECIALTIES,
    ConsentGivenBy,
    ConsentMethod,
    ImageKind,
    Mode,
    Question,
    ReferralStatus,
    RestorabilityDecider,
    Role,
    Scope,
    Specialty,
    Urgency,
)
from referral.models.reports import DiagnosticQuality, ReportStatus
from referral.services import access, notifications, phrases, web_auth
from referral.services import claims as claims_service
from referral.services import denials as denials_service
from referral.services import link_requests as link_requests_service
from referral.services import messages as messages_service
from referral.services import notices as notices_service
from referral.services import turnaround as turnaround_service
from referral.services.actor import Actor
from referral.services.claim_lifecycle import NARRATIVE_EDITABLE, STATUS_WORDS
from referral.services.referrals import AWAITING_RESPONSE, is_overdue, list_referrals, read_referral
from referral.services.workflow import TRANSITIONS, consent_required, missing_views
from referral.validation import CAPTURE_PLACES_OF_SERVICE
from referral.web import _page, _to_login, viewer_zone, web
from referral.web.fixes import fix_links

LIST_LIMIT = 50
OFFICE_ROLES = (Role.STAFF, Role.DENTIST, Role.ORG_ADMIN)
FINDING_FIELDS = (
    ("crown", "Crown"),
    ("roots", "Roots and canals"),
    ("pdl_space", "PDL space"),
    ("lamina_dura", "Lamina dura"),
    ("periapical_area", "Periapical area"),
    ("bone_levels", "Bone levels"),
    ("other", "Other findings"),
)
# A photo shows the crown and the soft tissue; the radiographic fields (roots, PDL, lamina dura, apex, bone) do not
# apply to it, so its findings ask only for these.
PHOTO_FINDING_FIELDS = (
    ("crown", "Crown (as seen)"),
    ("other", "Soft tissue and other findings"),
)
PHOTO_KINDS = frozenset({ImageKind.PHOTO_INTRAORAL, ImageKind.PHOTO_EXTRAORAL})
WITHIN_NORMAL_LIMITS = "Within normal limits"
QUESTION_LABELS = {Question.DIAGNOSIS.value: "Diagnosis", Question.TREATMENT_PLAN.value: "Treatment plan",
                   Question.RESTORABILITY.value: "Restorability"}
DECIDER_LABELS = {RestorabilityDecider.REFERRING_DENTIST.value: "I decide (the reader advises)",
                  RestorabilityDecider.READER.value: "The reader decides"}
KIND_LABELS = {
    ImageKind.PERIAPICAL: "Periapical radiograph",
    ImageKind.BITEWING: "Bitewing radiograph",
    ImageKind.OCCLUSAL: "Occlusal radiograph",
    ImageKind.PANORAMIC: "Panoramic radiograph",
    ImageKind.CEPHALOMETRIC: "Cephalometric radiograph",
    ImageKind.EXTRAORAL_POSTERIOR: "Extraoral posterior radiograph",
    ImageKind.COMPLETE_SERIES: "Complete series",
    ImageKind.PHOTO_INTRAORAL: "Intraoral photo",
    ImageKind.PHOTO_EXTRAORAL: "Extraoral photo",
}
# Universal numbering, laid out as the mouth faces the reader: upper right to upper left, then lower.
PERMANENT_UPPER = [str(n) for n in range(1, 17)]
PERMANENT_LOWER = [str(n) for n in range(32, 16, -1)]
PRIMARY_UPPER = list("ABCDEFGHIJ")
PRIMARY_LOWER = list("TSRQPONMLK")


def _signed_in() -> tuple[User, Actor] | None:
    row = g.get("web_session")
    if row is None:
        return None
    user = db_session().get(User, row.user_id)
    if user is None:
        return None
    return user, web_auth.actor_for(user, request.remote_addr, request.user_agent.string or None)


PageView = Callable[..., ResponseReturnValue]


def signed_in_page(view: PageView) -> PageView:
    """The page for a signed-in user (passed as ``user`` and ``actor``); anyone else goes to sign in.
    A refusal from a service (404 across organizations, 403 for a role) becomes an error page."""

    @functools.wraps(view)
    def wrapper(**kwargs: Any) -> ResponseReturnValue:
        who = _signed_in()
        if who is None:
            return _to_login(g.get("session_ended"), request.full_path.rstrip("?") if request.method == "GET" else None)
        user, actor = who
        try:
            return view(user=user, actor=actor, **kwargs)
        except DomainError as exc:
            return _error_page(exc)

    return wrapper


@web.app_template_global("patient_name")
def patient_name(patient: Any) -> str:
    """Last, First; a deleted patient's record no longer has a name to show."""
    if patient is None or patient.is_deleted:
        return "Patient record deleted"
    return f"{patient.last_name}, {patient.first_name}"


def _label(value: str) -> str:
    return value.replace("_", " ")


def _provider_names(session: Session, ids: set[uuid.UUID | None]) -> dict[uuid.UUID, str]:
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    return {p.id: p.display_name for p in session.scalars(sa.select(Provider).where(Provider.id.in_(wanted)))}


def _error_page(exc: DomainError) -> tuple[str, int]:
    status = exc.status_code if 400 <= exc.status_code < 500 else 500
    titles = {403: "Not allowed", 404: "Not found", 409: "Not possible now"}
    return _page("error.html", status, title=titles.get(status, "Request refused"), message=str(exc))


# -- start page by role ------------------------------------------------------------------------------


@web.get("/")
@signed_in_page
def index(user: User, actor: Actor) -> ResponseReturnValue:
    role = Role(user.role)
    session = db_session()
    if role in OFFICE_ROLES and user.organization_id is not None:
        return _office_home(session, actor)
    if role == Role.SPECIALIST and user.provider_id is not None:
        return _reader_home(session, actor)
    if role == Role.BILLING and user.organization_id is not None:
        return _billing_home(session, actor)
    if role == Role.ADMIN:
        return redirect(url_for("web.admin_home"), code=303)
    return _page("home.html", view="none")


def _load_patients(session: Session, referrals: list[Referral]) -> None:
    """One query for the patients of a listed page; ``referral.patient`` then comes from the session's
    identity map instead of one query per row."""
    ids = {r.patient_id for r in referrals}
    if ids:
        list(session.scalars(sa.select(Patient).where(Patient.id.in_(ids))))


def _status_filter(allowed: list[str]) -> list[str] | None:
    wanted = request.args.get("status", "")
    return [wanted] if wanted in allowed else None


def _office_home(session: Session, actor: Actor) -> tuple[str, int]:
    statuses = ReferralStatus.values()
    chosen = _status_filter(statuses)
    referrals, next_cursor = list_referrals(session, actor, view="sent", statuses=chosen,
                                            cursor=request.args.get("cursor") or None, limit=LIST_LIMIT)
    _load_patients(session, referrals)
    readers = _provider_names(session, {r.assigned_provider_id for r in referrals})
    news = notifications.attention(session, actor, {r.id for r in referrals})
    return _page("office_home.html", referrals=referrals, readers=readers, now=utcnow(), news=news,
                 awaiting=AWAITING_RESPONSE, statuses=statuses, chosen=chosen[0] if chosen else "",
                 next_cursor=next_cursor, label=_label)


def _reader_home(session: Session, actor: Actor) -> tuple[str, int]:
    open_statuses = [s.value for s in (ReferralStatus.ROUTED, ReferralStatus.ACCEPTED,
                                       ReferralStatus.RETAKE_REQUESTED)]
    show_all = request.args.get("show") == "all"
    q = request.args.get("q", "").strip()
    try:
        referrals, next_cursor = list_referrals(session, actor, view="inbox",
                                                statuses=None if show_all else open_statuses,
                                                cursor=request.args.get("cursor") or None, limit=LIST_LIMIT, q=q)
    except ValidationFailed as exc:
        # A search that cannot be run (refused before anything was read): the page says why, beside the box.
        problem = "; ".join((exc.errors or {}).get("q", [])) or exc.message
        return _page("reader_home.html", 422, referrals=[], practices={}, now=utcnow(), overdue=0, news={},
                     awaiting=AWAITING_RESPONSE, show_all=show_all, next_cursor=None, label=_label, q=q[:200],
                     search_error=problem, ages={}, time_left={})
    _load_patients(session, referrals)
    practices = {o.id: o.name for o in session.scalars(
        sa.select(Organization).where(Organization.id.in_({r.organization_id for r in referrals})))}
    now = utcnow()
    overdue = sum(1 for r in referrals if is_overdue(r, now))
    news = notifications.attention(session, actor, {r.id for r in referrals})
    today = timezones.local(now, viewer_zone()).date()
    ages = {r.id: _age(r.patient, today) for r in referrals}
    time_left = {r.id: _time_left(r, now) for r in referrals}
    return _page("reader_home.html", referrals=referrals, practices=practices, now=now, overdue=overdue, news=news,
                 awaiting=AWAITING_RESPONSE, show_all=show_all, next_cursor=next_cursor, label=_label, q=q,
                 search_error=None, ages=ages, time_left=time_left)


def _age(patient: Any, today: date) -> str:
    """The patient's age as a reader says it: years, or months under two; nothing for a deleted record."""
    if patient is None or patient.is_deleted or patient.birth_date is None:
        return ""
    born = patient.birth_date
    months = (today.year - born.year) * 12 + today.month - born.month - (1 if today.day < born.day else 0)
    if months < 0:
        return ""
    return f"{months} mo" if months < 24 else f"{months // 12} y"


def _time_left(referral: Referral, now: Any) -> dict[str, Any] | None:
    """How long until the case's response is due (or how long it is overdue), for cases still awaiting one."""
    if referral.status not in AWAITING_RESPONSE:
        return None
    seconds = int((referral.due_at - now).total_seconds())
    late = seconds < 0
    minutes = abs(seconds) // 60
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    if days:
        text = f"{days} d {hours} h"
    elif hours:
        text = f"{hours} h {minutes} min"
    else:
        text = f"{minutes} min"
    return {"late": late, "text": f"{text} overdue" if late else f"{text} left",
            "soon": not late and seconds < 4 * 3600}


def _billing_home(session: Session, actor: Actor) -> tuple[str, int]:
    chosen = _status_filter(list(CLAIM_STATUSES))
    claims, next_cursor = claims_service.list_claims(session, actor, statuses=chosen, referral_id=None,
                                                     cursor=request.args.get("cursor") or None, limit=LIST_LIMIT)
    grouped = session.execute(
        sa.select(Claim.status, sa.func.count()).where(Claim.billing_organization_id == actor.organization_id)
        .group_by(Claim.status))
    counts: dict[str, int] = {str(row[0]): int(row[1]) for row in grouped}
    patients = _claim_patients(session, claims)
    return _page("billing_home.html", claims=claims, counts=counts, chosen=chosen[0] if chosen else "",
                 patients=patients, next_cursor=next_cursor, statuses=CLAIM_STATUSES, words=STATUS_WORDS)


def _claim_patients(session: Session, claims: list[Claim]) -> dict[uuid.UUID, str]:
    referral_ids = {c.referral_id for c in claims}
    if not referral_ids:
        return {}
    rows = session.scalars(sa.select(Referral).where(Referral.id.in_(referral_ids))
                           .options(joinedload(Referral.patient)))
    return {r.id: patient_name(r.patient) for r in rows}


# -- the capturing office ----------------------------------------------------------------------------


def _own_providers(session: Session, organization_id: uuid.UUID) -> list[Provider]:
    return list(session.scalars(sa.select(Provider).where(Provider.organization_id == organization_id)
                                .order_by(Provider.last_name, Provider.first_name)))


def _reader_directory(session: Session) -> list[dict[str, Any]]:
    """Providers who read referrals here (they have an active reader sign-in) and are taking cases."""
    rows = session.execute(
        sa.select(Provider, Organization.name)
        .join(Organization, Organization.id == Provider.organization_id)
        .where(Provider.accepting_referrals.is_(True),
               Provider.id.in_(sa.select(User.provider_id).where(User.active.is_(True),
                                                                 User.role.in_(list(access.READER_ROLES)))))
        .order_by(Provider.specialty, Provider.last_name)
    ).all()
    return [{"id": p.id, "name": p.display_name, "specialty": p.specialty.value, "practice": org,
             "states": ", ".join(p.license_states or [])} for p, org in rows]


@web.get("/referrals/new")
@signed_in_page
def new_referral(user: User, actor: Actor) -> ResponseReturnValue:
    if Role(user.role) not in OFFICE_ROLES or user.organization_id is None:
        return _page("error.html", 403, title="Not allowed", message="Only a capturing office creates referrals.")
    session = db_session()
    providers = _own_providers(session, user.organization_id)
    # A hygienist or an assistant refers under a dentist of the practice, the referring provider on claims.
    mine = next((p for p in providers if p.id == user.provider_id), None)
    dentists = [p for p in providers if p.specialty not in CAPTURE_ONLY_SPECIALTIES]
    referring = mine.id if mine is not None and mine.specialty not in CAPTURE_ONLY_SPECIALTIES else (
        dentists[0].id if dentists else user.provider_id)
    return _page(
        "referral_new.html", providers=providers, me=referring, readers=_reader_directory(session),
        specialties=[s for s in Specialty.values() if s not in ("general", "hygiene", "assistant")] + ["general"],
        urgencies=Urgency.values(), modes=Mode.values(), scopes=Scope.values(),
        places=CAPTURE_PLACES_OF_SERVICE, given_by=ConsentGivenBy.values(), methods=ConsentMethod.values(),
        chart=_chart(), label=_label, sexes=["F", "M", "U"], questions=list(QUESTION_LABELS.items()),
        deciders=list(DECIDER_LABELS.items()),
        zone_name=viewer_zone(), consent_default=_wall_clock(utcnow(), viewer_zone()),
    )


def _chart() -> dict[str, list[str]]:
    return {"permanent_upper": PERMANENT_UPPER, "permanent_lower": PERMANENT_LOWER,
            "primary_upper": PRIMARY_UPPER, "primary_lower": PRIMARY_LOWER}


@web.get("/referrals/<uuid:referral_id>")
@signed_in_page
def referral_page(user: User, actor: Actor, referral_id: uuid.UUID) -> ResponseReturnValue:
    session = db_session()
    referral = read_referral(session, actor, referral_id)
    role = Role(user.role)
    is_reader = actor.provider_id is not None and actor.provider_id == referral.assigned_provider_id
    is_sender = role in OFFICE_ROLES and actor.organization_id == referral.organization_id
    # Emergency access: the case is shown to read, with no action on it (docs/security.md, Emergency access).
    emergency = not (is_reader or is_sender) and access.emergency_grant(session, actor, referral.id) is not None
    if not (is_reader or is_sender or emergency):
        abort(404)
    images = [i for i in referral.images if not i.is_deleted]
    report = referral.interpretation
    if report is not None and report.status == ReportStatus.DRAFT and not is_reader:
        report = None
    status = referral.status
    findings = {f["image_id"]: f for f in (report.findings if report is not None else [])}
    names = _provider_names(session, {referral.assigned_provider_id, referral.target_provider_id,
                                      referral.referring_provider_id}
                            | {e.provider_id for e in referral.events})
    can = {
        "upload": is_sender and status in (ReferralStatus.DRAFT, ReferralStatus.RETAKE_REQUESTED,
                                           ReferralStatus.UNASSIGNED),
        "send": is_sender and status in TRANSITIONS["submit"],
        "cancel": is_sender and status in TRANSITIONS["cancel"],
        "accept": is_reader and status in TRANSITIONS["accept"],
        "decline": is_reader and status in TRANSITIONS["decline"],
        "retake": is_reader and status in TRANSITIONS["request_retake"],
        "write": is_reader and status == ReferralStatus.ACCEPTED,
        "addendum": is_reader and report is not None and report.status == ReportStatus.SIGNED,
    }
    viewer_images = [
        {"id": str(i.id), "kind": i.kind.value, "label": _image_label(i), "preview_status": i.preview_status,
         "preview_url": url_for("images.ImagePreview", image_id=i.id) if i.has_renditions else None,
         "thumbnail_url": url_for("images.ImageThumbnail", image_id=i.id) if i.has_renditions else None,
         "quality_warnings": list(i.quality_warnings or [])}
        for i in images
    ]
    context: dict[str, Any] = {
        "referral": referral, "patient": referral.patient, "images": images, "viewer_images": viewer_images,
        "viewer_start": _start_image(referral, images, viewer_images),
        "fields_for": _finding_fields, "wnl": WITHIN_NORMAL_LIMITS, "phrases": [],
        "report": report, "findings": findings, "finding_fields": FINDING_FIELDS,
        "qualities": DiagnosticQuality.values(), "names": names, "can": can, "is_reader": is_reader,
        "is_sender": is_sender, "overdue": is_overdue(referral), "label": _label, "image_label": _image_label,
        "now": utcnow(), "question_labels": QUESTION_LABELS, "decider_labels": DECIDER_LABELS,
        "conversation": None, "signed_in_user_id": user.id,
        "message_max": messages_service.MAX_BODY, "emergency": emergency,
    }
    if can["write"] and actor.role in access.READER_ROLES:
        context["phrases"] = phrases.list_phrases(session, actor)
        context["phrase_max"] = phrases.MAX_TEXT
    if actor.role in messages_service.CONVERSATION_ROLES:
        context["conversation"] = messages_service.list_messages(session, actor, referral.id)
    # Images a DICOM device sent without naming a provider of the practice: the office says who took them.
    unconfirmed = [i for i in images if not i.captured_by_confirmed and not i.is_deleted]
    if is_sender and user.role in (Role.STAFF, Role.DENTIST) and unconfirmed:
        context.update(unconfirmed=unconfirmed, capturers=_own_providers(session, referral.organization_id))
    if can["upload"]:
        zone_name = viewer_zone()
        fixable = status in (ReferralStatus.DRAFT, ReferralStatus.RETAKE_REQUESTED)
        context.update(
            kinds=[(k.value, KIND_LABELS.get(k, _label(k.value))) for k in ImageKind],
            providers=_own_providers(session, referral.organization_id), me=user.provider_id,
            missing=missing_views(referral, images),
            consent_needed=consent_required(session, referral, workflow_settings()) and referral.consent is None,
            # The practice's wall clock, as a date-and-time field shows it; the server reads it back in that zone.
            captured_default=_wall_clock(utcnow(), zone_name), zone_name=zone_name,
            retake_targets=[i for i in images if i.retake_of_id is None],
            uploaded=[{"image": i, "label": _image_label(i), "notes": i.capture_notes,
                       "quality_warnings": list(i.quality_warnings or []),
                       "fixable": fixable and i.sent_at is None,
                       "captured_local": _wall_clock(i.captured_at, zone_name)} for i in images],
        )
    return _page("referral.html", **context)


def _finding_fields(image: Any) -> tuple[tuple[str, str], ...]:
    """The findings asked for an image: a photo has no roots, PDL space, lamina dura, apex or bone to describe."""
    return PHOTO_FINDING_FIELDS if image.kind in PHOTO_KINDS else FINDING_FIELDS


def _start_image(referral: Referral, images: list[Any], viewer_images: list[dict[str, Any]]) -> str | None:
    """The image the viewer opens on: one of the first tooth the referral names (a radiograph before a photo),
    else the first image that can be shown."""
    shown = {v["id"] for v in viewer_images if v["preview_url"]}
    candidates = [i for i in images if str(i.id) in shown]
    if referral.teeth:
        first_tooth = referral.teeth[0]
        of_tooth = [i for i in candidates if first_tooth in (i.teeth or [])]
        of_tooth.sort(key=lambda i: i.kind in PHOTO_KINDS)
        if of_tooth:
            return str(of_tooth[0].id)
    return str(candidates[0].id) if candidates else None


def _wall_clock(moment: Any, zone_name: str | None) -> str:
    return str(timezones.wall_time(timezones.local(moment, zone_name)).strftime("%Y-%m-%dT%H:%M"))


def _image_label(image: Any) -> str:
    teeth = ", ".join(image.teeth or [])
    kind = KIND_LABELS.get(image.kind, _label(image.kind.value))
    where = f"teeth {teeth}" if teeth else (f"area {image.area}" if image.area else "")
    return f"{kind} · {where}" if where else kind


# -- the person's own settings ------------------------------------------------------------------------


@web.get("/settings/notifications")
@signed_in_page
def notification_settings(user: User, actor: Actor) -> ResponseReturnValue:
    preferences = notifications.get_preferences(db_session(), actor, email_enabled=settings().smtp_url is not None)
    return _page("notifications.html", preferences=preferences, kinds=notifications.EMAIL_KINDS)


@web.get("/notices")
@signed_in_page
def notices_page(user: User, actor: Actor) -> ResponseReturnValue:
    """An org admin's access notices: emergency access, new logins, role and provider-link changes."""
    session = db_session()
    rows = list(session.scalars(notices_service.list_notices(session, actor)
                                .order_by(AdminNotice.id.desc()).limit(200)))
    people = {u.id: u for u in session.scalars(sa.select(User).where(
        User.id.in_({r.subject_user_id for r in rows} | {r.actor_user_id for r in rows}),
        User.organization_id == actor.organization_id))}
    return _page("notices.html", notices=rows, people=people, labels=notices_service.LABELS)


@web.get("/link-requests")
@signed_in_page
def link_requests_page(user: User, actor: Actor) -> ResponseReturnValue:
    """A dentist's or specialist's requests to let another login read as their provider, with Confirm and Refuse
    (which call the API); after an answer, how the request ended (``?answered=<id>``, the person's own only)."""
    session = db_session()
    rows = link_requests_service.list_pending(session, actor)
    answered = None
    try:
        answered_id = uuid.UUID(request.args["answered"]) if request.args.get("answered") else None
    except ValueError:
        answered_id = None
    if answered_id is not None:
        answered = link_requests_service.get_visible(session, actor, answered_id)
    emails = link_requests_service.emails_of(session, rows + ([answered] if answered is not None else []))
    return _page("link_requests.html", requests=rows, answered=answered, emails=emails, me=user.id,
                 may_answer=link_requests_service.may_answer(actor), status_of=link_requests_service.status_of,
                 days=link_requests_service.LINK_REQUEST_DAYS, label=_label)


# -- organization admins -------------------------------------------------------------------------------

CHART_WIDTH = 640
CHART_LABEL = 200
CHART_ROW = 44


def _chart_rows(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Bars for the inline SVG chart: median hours to acceptance and to signed report, one row per reader."""
    longest = max([r["median_hours_to_report"] or 0 for r in rows] + [r["median_hours_to_accept"] or 0 for r in rows]
                  + [1.0])
    room = CHART_WIDTH - CHART_LABEL - 70
    bars = []
    for index, row in enumerate(rows):
        top = index * CHART_ROW + 6
        bars.append({"name": row["name"], "y": top,
                     "accept": row["median_hours_to_accept"], "report": row["median_hours_to_report"],
                     "accept_width": round(room * (row["median_hours_to_accept"] or 0) / longest, 1),
                     "report_width": round(room * (row["median_hours_to_report"] or 0) / longest, 1)})
    return {"bars": bars, "width": CHART_WIDTH, "label": CHART_LABEL, "height": len(rows) * CHART_ROW + 12}


@web.get("/reports/turnaround")
@signed_in_page
def turnaround_page(user: User, actor: Actor) -> ResponseReturnValue:
    if Role(user.role) != Role.ORG_ADMIN:
        return _page("error.html", 403, title="Not allowed", message="Turnaround is for organization admins.")
    chosen: dict[str, date | None] = {}
    for name in ("from", "to"):
        raw = request.args.get(name, "").strip()
        try:
            chosen[name] = date.fromisoformat(raw) if raw else None
        except ValueError:
            return _page("error.html", 422, title="Request refused", message=f"The '{name}' date is not a date.")
    figures = turnaround_service.turnaround(db_session(), actor, chosen["from"], chosen["to"])
    return _page("turnaround.html", figures=figures, chart=_chart_rows(figures["by_reader"]))


# -- billing -------------------------------------------------------------------------------------------


@web.get("/claims/<uuid:claim_id>")
@signed_in_page
def claim_page(user: User, actor: Actor, claim_id: uuid.UUID) -> ResponseReturnValue:
    session = db_session()
    claim = claims_service.get_claim(session, actor, claim_id)
    referral = session.get(Referral, claim.referral_id)
    names = _provider_names(session, {claim.rendering_provider_id, claim.referring_provider_id})
    labels = {line.code: catalogue.label(line.code) for line in claim.lines}
    can_export = actor.role in claims_service.BILLING_ROLES
    return _page("claim.html", claim=claim, referral=referral, names=names, labels=labels,
                 show_patient=claims_service.shows_patient(session, actor, claim),
                 can_export=can_export, words=STATUS_WORDS,
                 fixes=fix_links(claim, referral, can_set_up=actor.role in (Role.ORG_ADMIN, Role.ADMIN)),
                 can_edit_narrative=can_export and claim.status in NARRATIVE_EDITABLE)


@web.get("/denials")
@signed_in_page
def denials_page(user: User, actor: Actor) -> ResponseReturnValue:
    """Billing's worklist: each claim with denied or reduced lines, the reasons in plain words, the next step, and
    the ways out (attachment package, corrected or void claim, appeal packet)."""
    items = denials_service.list_denials(db_session(), actor)
    by_claim: dict[uuid.UUID, list[denials_service.Denial]] = {}
    for item in items:
        by_claim.setdefault(item.claim.id, []).append(item)
    return _page("denials.html", groups=list(by_claim.values()), words=STATUS_WORDS)
