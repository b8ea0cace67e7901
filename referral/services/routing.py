"""Which reader gets a case: specialty, licence in the patient's state, accepting referrals, able to
sign in, not the referring provider, never one who declined it; among those the least loaded, ties
broken by id."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session

from referral.models import Provider, Referral, ReferralDecline, User
from referral.models.enums import ReferralStatus
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
    if provider.id == referral.referring_provider_id:
        reasons.append("is the referring provider")
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


def choose_reader(session: Session, referral: Referral) -> Provider | None:
    """The least loaded eligible reader, or None when nobody can take the case."""
    readers = eligible_readers(session, referral)
    if not readers:
        return None
    loads = open_case_counts(session, [p.id for p in readers])
    return min(readers, key=lambda p: (loads.get(p.id, 0), p.id))
