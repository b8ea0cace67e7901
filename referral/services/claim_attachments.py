"""Claim attachment packages: the control number each claim's documentation goes under, kept so that the 837D's
PWK and the PDF sent to the payer always name the same one."""

from __future__ import annotations

from dataclasses import replace

import sqlalchemy as sa
from sqlalchemy.orm import Session

from referral.billing import model as bm
from referral.billing.amend import attachment_control_number, with_attachment_control_number
from referral.billing.profiles import PayerProfile, ProfileError, get_profile
from referral.models import Claim, ClaimAttachment
from referral.services.actor import Actor


def _profile(claim: Claim) -> PayerProfile:
    try:
        return get_profile(claim.payer_profile)
    except ProfileError:
        return get_profile("default")


def required_attachments(claim: Claim) -> tuple[bm.Attachment, ...]:
    """One attachment per report type the claim's payer profile asks for, naming the lines it supports (an 837D
    has PWK at claim level only); without control numbers."""
    profile = _profile(claim)
    by_type: dict[str, list[int]] = {}
    for line in claim.lines:
        report_type = profile.attachment_for(line.code)
        if report_type is not None:
            by_type.setdefault(report_type, []).append(line.number)
    return tuple(bm.Attachment(report_type, profile.attachment_transmission, None, tuple(numbers))
                 for report_type, numbers in by_type.items())


def current_package(session: Session, claim: Claim) -> ClaimAttachment | None:
    return session.scalars(sa.select(ClaimAttachment).where(ClaimAttachment.claim_id == claim.id)
                           .order_by(ClaimAttachment.revision.desc()).limit(1)).first()


def ensure_package(session: Session, actor: Actor, claim: Claim) -> ClaimAttachment:
    """The claim's package for its current generation, numbered on first use; added to the caller's transaction.

    The revision counts every package of the practice on the referral (corrections are claims of their own), so
    the control number, made from referral, practice and revision, is never issued twice."""
    package = current_package(session, claim)
    if package is not None and package.claim_generation == claim.generation:
        return package
    latest = session.scalar(
        sa.select(sa.func.max(ClaimAttachment.revision))
        .join(Claim, Claim.id == ClaimAttachment.claim_id)
        .where(Claim.referral_id == claim.referral_id,
               Claim.billing_organization_id == claim.billing_organization_id)
    ) or 0
    revision = latest + 1
    package = ClaimAttachment(
        claim_id=claim.id, revision=revision, claim_generation=claim.generation,
        control_number=attachment_control_number(str(claim.referral_id), str(claim.billing_organization_id),
                                                 revision),
        created_by_user_id=actor.user_id,
    )
    session.add(package)
    session.flush()
    return package


def with_package(session: Session, actor: Actor, claim: Claim, model: bm.Claim) -> bm.Claim:
    """``model`` with the PWK its payer wants, each naming the stored package's control number."""
    attachments = required_attachments(claim)
    if not attachments:
        return replace(model, attachments=())
    package = ensure_package(session, actor, claim)
    return with_attachment_control_number(replace(model, attachments=attachments), package.control_number)
