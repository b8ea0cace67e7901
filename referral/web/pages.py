"""The pages of each role: the capturing office, the reader and the billing office.

Pages are rendered on the server from the same services the API uses, with the same access rules.
What a page changes, it changes by calling the JSON API from ``static/app.js`` with the session cookie
and the session's CSRF token, so a form gets exactly the API's validation messages.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from flask import abort, g, request, url_for
from flask.typing import ResponseReturnValue
from sqlalchemy.orm import Session, joinedload

from referral.api.context import db_session, workflow_settings
from referral.billing import catalogue
from referral.db import utcnow
from referral.errors import DomainError
from referral.models import Claim, Organization, Patient, Provider, Referral, User
from referral.models.enums import (
    ConsentGivenBy,
    ConsentMethod,
    ImageKind,
    Mode,
    ReferralStatus,
    Role,
    Scope,
    Specialty,
    Urgency,
)
from referral.models.reports import DiagnosticQuality, ReportStatus
from referral.services import access, web_auth
from referral.services import claims as claims_service
from referral.services.actor import Actor
from referral.services.referrals import AWAITING_RESPONSE, is_overdue, list_referrals, read_referral
from referral.services.workflow import TRANSITIONS, consent_required, missing_views
from referral.validation import CAPTURE_PLACES_OF_SERVICE
from referral.web import _page, _to_login, web

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
            return _to_login(g.get("session_ended"))
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
    return _page("office_home.html", referrals=referrals, readers=readers, now=utcnow(),
                 awaiting=AWAITING_RESPONSE, statuses=statuses, chosen=chosen[0] if chosen else "",
                 next_cursor=next_cursor, label=_label)


def _reader_home(session: Session, actor: Actor) -> tuple[str, int]:
    open_statuses = [s.value for s in (ReferralStatus.ROUTED, ReferralStatus.ACCEPTED,
                                       ReferralStatus.RETAKE_REQUESTED)]
    show_all = request.args.get("show") == "all"
    referrals, next_cursor = list_referrals(session, actor, view="inbox",
                                            statuses=None if show_all else open_statuses,
                                            cursor=request.args.get("cursor") or None, limit=LIST_LIMIT)
    _load_patients(session, referrals)
    practices = {o.id: o.name for o in session.scalars(
        sa.select(Organization).where(Organization.id.in_({r.organization_id for r in referrals})))}
    now = utcnow()
    overdue = sum(1 for r in referrals if is_overdue(r, now))
    return _page("reader_home.html", referrals=referrals, practices=practices, now=now, overdue=overdue,
                 awaiting=AWAITING_RESPONSE, show_all=show_all, next_cursor=next_cursor, label=_label)


def _billing_home(session: Session, actor: Actor) -> tuple[str, int]:
    chosen = _status_filter(["ready", "hold"])
    claims, next_cursor = claims_service.list_claims(session, actor, statuses=chosen, referral_id=None,
                                                     cursor=request.args.get("cursor") or None, limit=LIST_LIMIT)
    grouped = session.execute(
        sa.select(Claim.status, sa.func.count()).where(Claim.billing_organization_id == actor.organization_id)
        .group_by(Claim.status))
    counts: dict[str, int] = {str(row[0]): int(row[1]) for row in grouped}
    patients = _claim_patients(session, claims)
    return _page("billing_home.html", claims=claims, counts=counts, chosen=chosen[0] if chosen else "",
                 patients=patients, next_cursor=next_cursor)


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
    # A hygienist refers under a dentist of the practice: the dentist is the referring provider on claims.
    mine = next((p for p in providers if p.id == user.provider_id), None)
    dentists = [p for p in providers if p.specialty != Specialty.HYGIENE]
    referring = mine.id if mine is not None and mine.specialty != Specialty.HYGIENE else (
        dentists[0].id if dentists else user.provider_id)
    return _page(
        "referral_new.html", providers=providers, me=referring, readers=_reader_directory(session),
        specialties=[s for s in Specialty.values() if s not in ("general", "hygiene")] + ["general"],
        urgencies=Urgency.values(), modes=Mode.values(), scopes=Scope.values(),
        places=CAPTURE_PLACES_OF_SERVICE, given_by=ConsentGivenBy.values(), methods=ConsentMethod.values(),
        chart=_chart(), label=_label, sexes=["F", "M", "U"],
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
    if not (is_reader or is_sender):
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
        {"id": str(i.id), "kind": i.kind.value, "label": _image_label(i),
         "preview_url": url_for("images.ImagePreview", image_id=i.id),
         "thumbnail_url": url_for("images.ImageThumbnail", image_id=i.id)}
        for i in images
    ]
    context: dict[str, Any] = {
        "referral": referral, "patient": referral.patient, "images": images, "viewer_images": viewer_images,
        "report": report, "findings": findings, "finding_fields": FINDING_FIELDS,
        "qualities": DiagnosticQuality.values(), "names": names, "can": can, "is_reader": is_reader,
        "is_sender": is_sender, "overdue": is_overdue(referral), "label": _label, "image_label": _image_label,
        "now": utcnow(),
    }
    if can["upload"]:
        context.update(
            kinds=[(k.value, KIND_LABELS.get(k, _label(k.value))) for k in ImageKind],
            providers=_own_providers(session, referral.organization_id), me=user.provider_id,
            missing=missing_views(referral, images),
            consent_needed=consent_required(session, referral, workflow_settings()) and referral.consent is None,
            captured_default=(utcnow() - timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M"),
            retake_targets=[i for i in images if i.retake_of_id is None],
        )
    return _page("referral.html", **context)


def _image_label(image: Any) -> str:
    teeth = ", ".join(image.teeth or [])
    kind = KIND_LABELS.get(image.kind, _label(image.kind.value))
    where = f"teeth {teeth}" if teeth else (f"area {image.area}" if image.area else "")
    return f"{kind} · {where}" if where else kind


# -- billing -------------------------------------------------------------------------------------------


@web.get("/claims/<uuid:claim_id>")
@signed_in_page
def claim_page(user: User, actor: Actor, claim_id: uuid.UUID) -> ResponseReturnValue:
    session = db_session()
    claim = claims_service.get_claim(session, actor, claim_id)
    referral = session.get(Referral, claim.referral_id)
    names = _provider_names(session, {claim.rendering_provider_id, claim.referring_provider_id})
    labels = {line.code: catalogue.label(line.code) for line in claim.lines}
    return _page("claim.html", claim=claim, referral=referral, names=names, labels=labels,
                 can_export=actor.role in claims_service.BILLING_ROLES)
