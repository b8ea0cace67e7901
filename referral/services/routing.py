"""Which reader gets a case: specialty, licence in the patient's state, accepting referrals, able to
sign in, not the referring provider, never one who declined it; among those the least loaded, ties
broken by id.

One exception to "not the referring provider": the supervising dentist of record. When a hygienist or a dental
assistant of the practice captured every image of a general dentistry case, the practice's dentist who referred
it may read it: they get the case when it names them as its reader, or when no other reader of the practice could
take it.
A specialty referral to oneself is always refused (docs/api.md, "Routing")."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session

from referral.models import Image, Provider, Referral, ReferralDecline, User
from referral.models.enums import CAPTURE_ONLY_SPECIALTIES, ReferralStatus, Specialty
from referral.services import access

# Cases a reader still has to work on count towards their load.
OPEN_STATUSES = (ReferralStatus.ROUTED, ReferralStatus.ACCEPTED, ReferralStatus.RETAKE_REQUESTED)
READER_ROLES = access.READER_ROLES


@dataclass(frozen=True)
class Ineligible:
    provider_id: uuid.UUID
    reasons: tuple[str, ...]


def _decliners(session: Session, referral_id: uuid.UUID) -> set[uuid.UUID]:
    query = sa.select(ReferralDecline.provider_id).where(ReferralDecline.referral_id == referral_id)
    return set(session.scalars(query))


def _providers_with_reader_login(session: Session, provider_ids: list[uuid.UUID]) -> set[uuid.UUID]:
    if not provider_ids:
        return set()
    rows = session.scalars(
        sa.select(User.provider_id).where(User.provider_id.in_(provider_ids), User.active.is_(True),
                                          User.role.in_(READER_ROLES))
    )
    return {row for row in rows if row is not None}


def supervising_read(session: Session, referral: Referral, provider: Provider) -> bool:
    """Whether ``provider`` is the referring dentist of record reading a case their practice's hygienists or
    assistants captured.

    Only a general dentistry case qualifies (a specialty referral to oneself is no referral), only the referring
    provider's own practice, and only when every image still on the case was captured by a hygienist or an
    assistant of it. An assistant never reads: readers are matched on the referral's specialty, which is never
    "assistant"."""
    if provider.id != referral.referring_provider_id or provider.organization_id != referral.organization_id:
        return False
    if referral.specialty != Specialty.GENERAL or provider.specialty != Specialty.GENERAL:
        return False
    captured_by = set(session.scalars(
        sa.select(Image.captured_by_provider_id).where(Image.referral_id == referral.id, Image.deleted_at.is_(None))))
    if not captured_by:
        return False
    capturers = list(session.scalars(sa.select(Provider).where(Provider.id.in_(captured_by))))
    return len(capturers) == len(captured_by) and all(
        p.specialty in CAPTURE_ONLY_SPECIALTIES and p.organization_id == referral.organization_id for p in capturers)


def why_ineligible(session: Session, referral: Referral, provider: Provider) -> tuple[str, ...]:
    """Every reason ``provider`` cannot read ``referral``; empty when they can."""
    reasons = []
    if provider.specialty != referral.specialty:
        reasons.append(f"specialty is {provider.specialty.value}, the referral asks for {referral.specialty.value}")
    if referral.patient.state not in (provider.license_states or []):
        reasons.append(f"not licensed in {referral.patient.state}, the patient's state")
    if not provider.accepting_referrals:
        reasons.append("not accepting referrals")
    if provider.id in _decliners(session, referral.id):
        reasons.append("declined this referral")
    if provider.id == referral.referring_provider_id and not supervising_read(session, referral, provider):
        reasons.append("is the referring provider (a dentist reads their own referral only for a general dentistry "
                       "case that a hygienist or assistant of the practice captured)")
    if provider.id not in _providers_with_reader_login(session, [provider.id]):
        reasons.append("has no active dentist or specialist account to read with")
    return tuple(reasons)


def eligible_readers(session: Session, referral: Referral) -> list[Provider]:
    candidates = list(session.scalars(
        sa.select(Provider).where(Provider.specialty == referral.specialty, Provider.accepting_referrals.is_(True))
    ))
    declined = _decliners(session, referral.id)
    with_login = _providers_with_reader_login(session, [p.id for p in candidates])
    state = referral.patient.state
    return [p for p in candidates
            if state in (p.license_states or []) and p.id not in declined and p.id in with_login
            and p.id != referral.referring_provider_id]


def open_case_counts(session: Session, provider_ids: list[uuid.UUID]) -> dict[uuid.UUID, int]:
    if not provider_ids:
        return {}
    rows = session.execute(
        sa.select(Referral.assigned_provider_id, sa.func.count())
        .where(Referral.assigned_provider_id.in_(provider_ids), Referral.status.in_(OPEN_STATUSES))
        .group_by(Referral.assigned_provider_id)
    )
    return {provider_id: int(count) for provider_id, count in rows if provider_id is not None}


def _dentist_of_record(session: Session, referral: Referral) -> Provider | None:
    """The referring dentist, when they may read this case (supervising_read and every other check)."""
    referring = session.get(Provider, referral.referring_provider_id)
    if referring is None or why_ineligible(session, referral, referring):
        return None
    return referring


def choose_reader(session: Session, referral: Referral) -> Provider | None:
    """The least loaded eligible reader, or None when nobody can take the case.

    A case of the practice's supervising model goes to its dentist of record when no other reader of the
    practice could take it, rather than to a reader elsewhere."""
    readers = eligible_readers(session, referral)
    if not any(p.organization_id == referral.organization_id for p in readers):
        supervising = _dentist_of_record(session, referral)
        if supervising is not None:
            return supervising
    if not readers:
        return None
    loads = open_case_counts(session, [p.id for p in readers])
    return min(readers, key=lambda p: (loads.get(p.id, 0), p.id))
