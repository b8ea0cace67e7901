"""The referral state machine, in one place.

    draft ──submit──▶ routed ──accept──▶ accepted ──sign report──▶ reported ──close──▶ closed
                        │ decline: next eligible reader, or unassigned
    routed/accepted ──retake request──▶ retake_requested ──submit (with retakes)──▶ accepted
    unassigned ──submit──▶ routed (when a reader has become available)
    any state before reported ──cancel──▶ cancelled

Every change is one conditional UPDATE on the status the caller saw, so of any number of concurrent
requests exactly one succeeds and the others get 409. The change, its event row, its audit row and its
outbox events commit together.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from referral.config import DEFAULT_RESPONSE_HOURS
from referral.db import utcnow
from referral.errors import Conflict, Forbidden, ValidationFailed
from referral.models import Image, Organization, Provider, Referral, ReferralDecline, ReferralEvent
from referral.models.enums import ConsentGivenBy, ConsentMethod, ImageKind, ReferralStatus, Specialty
from referral.observability import metrics
from referral.services import access, audit, clock, outbox, routing
from referral.services.actor import Actor
from referral.services.consent import check_giver

S = ReferralStatus

TRANSITIONS: dict[str, frozenset[ReferralStatus]] = {
    "submit": frozenset({S.DRAFT, S.UNASSIGNED, S.RETAKE_REQUESTED}),
    "accept": frozenset({S.ROUTED}),
    "decline": frozenset({S.ROUTED}),
    "request_retake": frozenset({S.ROUTED, S.ACCEPTED}),
    "cancel": frozenset({S.DRAFT, S.ROUTED, S.ACCEPTED, S.RETAKE_REQUESTED, S.UNASSIGNED}),
    "sign_report": frozenset({S.ACCEPTED}),
    "close": frozenset({S.REPORTED}),
}

# Specialties whose question is about a tooth's root and its surroundings: each named tooth needs a
# periapical, apex included (bitewings do not show it).
NEEDS_PERIAPICAL_PER_TOOTH = (Specialty.ENDODONTICS, Specialty.ORAL_SURGERY, Specialty.PERIODONTICS)


@dataclass(frozen=True)
class WorkflowSettings:
    response_hours: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_RESPONSE_HOURS))
    consent_required_states: frozenset[str] = frozenset()

    def due_at(self, urgency: str, start: datetime) -> datetime:
        return start + timedelta(hours=self.response_hours[urgency])


def _event_data(referral: Referral, **extra: Any) -> dict[str, Any]:
    """What integrations hear: ids and codes, never patient details."""
    data: dict[str, Any] = {
        "referral_id": str(referral.id),
        "status": referral.status.value,
        "organization_id": str(referral.organization_id),
        "assigned_provider_id": str(referral.assigned_provider_id) if referral.assigned_provider_id else None,
        "specialty": referral.specialty.value,
        "urgency": referral.urgency.value,
        "due_at": referral.due_at.isoformat(),
    }
    data.update(extra)
    return data


def _organization_of(session: Session, provider_id: uuid.UUID | None) -> uuid.UUID | None:
    if provider_id is None:
        return None
    provider = session.get(Provider, provider_id)
    return provider.organization_id if provider else None


def _move(
    session: Session,
    referral: Referral,
    action: str,
    to: ReferralStatus,
    actor: Actor,
    *,
    values: dict[str, Any] | None = None,
    reason: str | None = None,
    provider_id: uuid.UUID | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    """Change the status from the one just read to ``to``, or fail with 409 if it moved meanwhile."""
    current = referral.status
    if current not in TRANSITIONS[action]:
        raise Conflict(f"A referral that is {current.value} cannot be {_PAST[action]}")
    now = utcnow()
    result = session.execute(
        sa.update(Referral)
        .where(Referral.id == referral.id, Referral.status == current,
               Referral.assigned_provider_id.is_(None) if referral.assigned_provider_id is None
               else Referral.assigned_provider_id == referral.assigned_provider_id)
        .values(status=to, updated_at=now, **(values or {}))
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise Conflict("The referral was changed by someone else meanwhile; reload it and try again")
    session.refresh(referral)
    session.add(ReferralEvent(referral_id=referral.id, at=now, action=action, from_status=current.value,
                              to_status=to.value, actor_user_id=actor.user_id, provider_id=provider_id,
                              reason=reason, details=details))
    audit.record(session, actor, f"referral.{action}", object_type="referral", object_id=referral.id,
                 organization_id=referral.organization_id, referral_id=referral.id,
                 details={"from": current.value, "to": to.value, **({"provider_id": str(provider_id)}
                                                                    if provider_id else {})})


_PAST = {
    "submit": "submitted", "accept": "accepted", "decline": "declined", "request_retake": "sent back for a retake",
    "cancel": "cancelled", "sign_report": "reported", "close": "closed",
}


def _require_assigned_reader(actor: Actor, referral: Referral) -> None:
    if actor.role not in routing.READER_ROLES or actor.provider_id is None \
            or actor.provider_id != referral.assigned_provider_id:
        raise Forbidden("Only the reader this referral is assigned to can do this")


# -- before it leaves ------------------------------------------------------------------------------


def missing_views(referral: Referral, images: list[Image]) -> list[str]:
    if referral.specialty not in NEEDS_PERIAPICAL_PER_TOOTH:
        return []
    covered = {tooth for image in images if image.kind == ImageKind.PERIAPICAL for tooth in image.teeth}
    return [tooth for tooth in referral.teeth if tooth not in covered]


def consent_required(session: Session, referral: Referral, settings: WorkflowSettings) -> bool:
    organization = session.get(Organization, referral.organization_id)
    org_requires = organization.requires_teledentistry_consent if organization else True
    return org_requires or referral.patient.state in settings.consent_required_states


def _still_needed(teeth: list[str]) -> str:
    """'A periapical of tooth 30 is still needed', or for several: 'Periapicals of teeth 3, 19 and 30 are ...'."""
    if len(teeth) == 1:
        return f"A periapical of tooth {teeth[0]} is still needed"
    return f"Periapicals of teeth {', '.join(teeth[:-1])} and {teeth[-1]} are still needed"


def _check_ready(session: Session, referral: Referral, settings: WorkflowSettings) -> None:
    images = referral.images
    if not images:
        raise ValidationFailed("Add at least one image before sending the referral",
                               {"images": ["No images uploaded."]})
    missing = missing_views(referral, images)
    if missing:
        raise ValidationFailed(
            f"{_still_needed(missing)} before sending: a {referral.specialty.value.replace('_', ' ')} referral "
            "needs a periapical of every tooth named",
            {"images": [f"A periapical of tooth {tooth} is still needed." for tooth in missing],
             "missing_teeth": missing},
        )
    if consent_required(session, referral, settings) and referral.consent_given_by is None:
        raise ValidationFailed("Record the patient's teledentistry consent before sending the referral",
                               {"consent": ["Teledentistry consent is required."]})


def _retakes_missing(session: Session, referral: Referral) -> list[str]:
    request = session.scalars(
        sa.select(ReferralEvent).where(ReferralEvent.referral_id == referral.id,
                                       ReferralEvent.action == "request_retake")
        .order_by(ReferralEvent.id.desc()).limit(1)
    ).first()
    wanted = [uuid.UUID(i) for i in ((request.details or {}).get("image_ids", []) if request else [])]
    retaken = {image.retake_of_id for image in referral.images if image.retake_of_id}
    return [str(i) for i in wanted if i not in retaken]


# -- actions ---------------------------------------------------------------------------------------


def submit(session: Session, actor: Actor, referral_id: uuid.UUID, settings: WorkflowSettings) -> Referral:
    referral = access.get_referral(session, actor, referral_id)
    access.require_referring_side(actor, referral)
    if referral.status not in TRANSITIONS["submit"]:
        raise Conflict(f"A referral that is {referral.status.value} cannot be submitted")
    _check_ready(session, referral, settings)
    now = utcnow()

    if referral.status == S.RETAKE_REQUESTED:
        missing = _retakes_missing(session, referral)
        if missing:
            raise ValidationFailed("Upload a retake (retake_of) of every image the reader asked for",
                                   {"retake_of": [f"No retake of image {i}." for i in missing]})
        # The reader already took the case: it goes back to them, accepted.
        _move(session, referral, "submit", S.ACCEPTED, actor, provider_id=referral.assigned_provider_id,
              details={"resubmitted": True})
        _mark_images_sent(session, referral, now)
        _notify(session, referral, "referral.resubmitted")
        session.commit()
        return referral

    reader = _pick_reader(session, referral)
    values: dict[str, Any] = {"assigned_provider_id": reader.id if reader else None}
    if referral.submitted_at is None:
        # The response clock starts when the case is sent, not when the draft was opened.
        values["submitted_at"] = now
        values["due_at"] = settings.due_at(referral.urgency.value, now)
    if reader is None:
        _move(session, referral, "submit", S.UNASSIGNED, actor, values=values,
              reason="no eligible reader")
        _notify(session, referral, "referral.unassigned")
    else:
        _move(session, referral, "submit", S.ROUTED, actor, values=values, provider_id=reader.id)
        _notify(session, referral, "referral.routed")
    _mark_images_sent(session, referral, now)
    session.commit()
    metrics.record_routing("submit", reader.id if reader else None, referral.target_provider_id)
    return referral


def _mark_images_sent(session: Session, referral: Referral, now: datetime) -> None:
    """From now on the reader relies on what the case's images say: they can no longer be fixed or removed.
    Called once the referral's row is held by the status change, in the order image fixes take locks too."""
    session.execute(sa.update(Image).where(Image.referral_id == referral.id, Image.sent_at.is_(None))
                    .values(sent_at=now).execution_options(synchronize_session=False))


def _pick_reader(session: Session, referral: Referral) -> Provider | None:
    target_id = referral.target_provider_id
    if target_id is not None:
        target = session.get(Provider, target_id)
        if target is not None:
            reasons = routing.why_ineligible(session, referral, target)
            if not reasons:
                return target
            # A named reader who declined is simply skipped; any other mismatch is the sender's to fix.
            if reasons != ("declined this referral",):
                raise ValidationFailed(
                    "The named reader cannot take this referral: " + "; ".join(reasons),
                    {"target_provider_id": list(reasons)},
                )
    return routing.choose_reader(session, referral)


def accept(session: Session, actor: Actor, referral_id: uuid.UUID) -> Referral:
    referral = access.get_referral(session, actor, referral_id)
    _require_assigned_reader(actor, referral)
    _move(session, referral, "accept", S.ACCEPTED, actor, values={"accepted_at": utcnow()},
          provider_id=actor.provider_id)
    _notify(session, referral, "referral.accepted")
    session.commit()
    return referral


def decline(session: Session, actor: Actor, referral_id: uuid.UUID, reason: str) -> Referral:
    referral = access.get_referral(session, actor, referral_id)
    _require_assigned_reader(actor, referral)
    declining = referral.assigned_provider_id
    if referral.status not in TRANSITIONS["decline"]:
        raise Conflict(f"A referral that is {referral.status.value} cannot be declined")
    session.add(ReferralDecline(referral_id=referral.id, provider_id=declining, reason=reason))
    session.flush()
    next_reader = routing.choose_reader(session, referral)
    if next_reader is None:
        _move(session, referral, "decline", S.UNASSIGNED, actor, values={"assigned_provider_id": None},
              reason=reason, provider_id=declining)
    else:
        _move(session, referral, "decline", S.ROUTED, actor, values={"assigned_provider_id": next_reader.id},
              reason=reason, provider_id=declining, details={"routed_to": str(next_reader.id)})
    _notify(session, referral, "referral.declined", extra_orgs=[_organization_of(session, declining)],
            declined_by_provider_id=str(declining))
    _notify(session, referral, "referral.unassigned" if next_reader is None else "referral.routed")
    session.commit()
    metrics.record_routing("decline", next_reader.id if next_reader else None, None)
    return referral


def request_retake(session: Session, actor: Actor, referral_id: uuid.UUID, image_ids: list[uuid.UUID],
                   reason: str) -> Referral:
    referral = access.get_referral(session, actor, referral_id)
    _require_assigned_reader(actor, referral)
    own = {image.id for image in referral.images}
    strangers = [str(i) for i in image_ids if i not in own]
    if strangers:
        raise ValidationFailed("image_ids must be images of this referral",
                               {"image_ids": [f"{i} is not an image of this referral." for i in strangers]})
    values: dict[str, Any] = {}
    if referral.accepted_at is None:
        # Asking for a retake is taking the case: it comes back to this reader, accepted.
        values["accepted_at"] = utcnow()
    _move(session, referral, "request_retake", S.RETAKE_REQUESTED, actor, values=values, reason=reason,
          provider_id=actor.provider_id, details={"image_ids": [str(i) for i in image_ids]})
    _notify(session, referral, "referral.retake_requested", image_ids=[str(i) for i in image_ids])
    session.commit()
    return referral


def cancel(session: Session, actor: Actor, referral_id: uuid.UUID, reason: str | None) -> Referral:
    referral = access.get_referral(session, actor, referral_id)
    access.require_referring_side(actor, referral)
    reader = referral.assigned_provider_id
    _move(session, referral, "cancel", S.CANCELLED, actor, reason=reason, provider_id=reader)
    _notify(session, referral, "referral.cancelled", extra_orgs=[_organization_of(session, reader)])
    session.commit()
    return referral


def sign_report(session: Session, actor: Actor, referral: Referral, report: Any) -> None:
    """The case becomes reported with its signed report; the caller commits both together."""
    _require_assigned_reader(actor, referral)
    _move(session, referral, "sign_report", S.REPORTED, actor, provider_id=actor.provider_id,
          details={"report_id": str(report.id), "content_sha256": report.content_sha256})
    _notify(session, referral, "report.signed", report_id=str(report.id))


def record_consent(session: Session, actor: Actor, referral_id: uuid.UUID, data: dict[str, Any]) -> Referral:
    referral = access.get_referral(session, actor, referral_id)
    access.require_referring_side(actor, referral)
    if referral.status in (S.REPORTED, S.CLOSED, S.CANCELLED):
        raise Conflict(f"Consent cannot be changed on a referral that is {referral.status.value}")
    check_giver(referral.patient, data["given_by"], data["given_at"])
    referral.consent_given_by = ConsentGivenBy(data["given_by"])
    referral.consent_method = ConsentMethod(data["method"])
    referral.consent_given_at = clock.practice_moment(
        data["given_at"], clock.practice_zone(session, referral.organization_id), "given_at", "The time of consent")
    audit.record(session, actor, "referral.consent", object_type="referral", object_id=referral.id,
                 organization_id=referral.organization_id, referral_id=referral.id,
                 details={"given_by": data["given_by"], "method": data["method"]})
    session.commit()
    return referral


def _notify(session: Session, referral: Referral, event_type: str, *,
            extra_orgs: list[uuid.UUID | None] | None = None, **extra: Any) -> None:
    organizations = [referral.organization_id, _organization_of(session, referral.assigned_provider_id),
                     *(extra_orgs or [])]
    outbox.enqueue(session, organization_ids=[o for o in organizations if o is not None], event_type=event_type,
                   data=_event_data(referral, **extra))
