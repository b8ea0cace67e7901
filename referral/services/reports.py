"""Interpretation reports: drafted by the assigned reader, signed once, corrected only by signed addenda."""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session, joinedload

from referral.db import utcnow
from referral.errors import Conflict, Forbidden, NotFound, ValidationFailed
from referral.models import Referral, Report, ReportAddendum
from referral.models.enums import ReferralStatus
from referral.models.reports import DiagnosticQuality, ReportStatus
from referral.services import access, audit, case_reads, claims, workflow
from referral.services.actor import Actor

FINDING_FIELDS = ("crown", "roots", "pdl_space", "lamina_dura", "periapical_area", "bone_levels", "other")
# A reader may draft while the case is theirs, including while waiting for a retake.
_DRAFTABLE = (ReferralStatus.ACCEPTED, ReferralStatus.RETAKE_REQUESTED)


def _reader_of(session: Session, actor: Actor, referral_id: uuid.UUID) -> Referral:
    referral = access.get_referral(session, actor, referral_id)
    if actor.role not in access.READER_ROLES or actor.provider_id is None \
            or actor.provider_id != referral.assigned_provider_id:
        raise Forbidden("Only the reader this referral is assigned to can write its report")
    return referral


def canonical_content(report: Report, referral: Referral, signed_at: datetime) -> bytes:
    """The signed content as bytes: the same report always hashes the same."""
    document = {
        "referral_id": str(referral.id),
        "reader_provider_id": str(report.reader_provider_id),
        "findings": report.findings,
        "impression": report.impression,
        "recommendation": report.recommendation,
        "evaluation_performed": report.evaluation_performed,
        "signed_at": signed_at.isoformat(),
    }
    if report.answer is not None:  # reports signed before the question existed keep their hash
        document["answer"] = report.answer
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def draft(session: Session, actor: Actor, referral_id: uuid.UUID, data: dict[str, Any]) -> Report:
    referral = _reader_of(session, actor, referral_id)
    report = referral.interpretation
    if report is not None and report.status == ReportStatus.SIGNED:
        raise Conflict("The report is signed and cannot change; add an addendum instead")
    if referral.status not in _DRAFTABLE:
        raise Conflict(f"A report can be drafted once the case is accepted; it is {referral.status.value}")
    own_images = {image.id for image in referral.images}
    findings = data.get("findings", [])
    seen: set[uuid.UUID] = set()
    errors: list[str] = []
    for finding in findings:
        image_id = finding["image_id"]
        if image_id not in own_images:
            errors.append(f"{image_id} is not an image of this referral.")
        elif image_id in seen:
            errors.append(f"{image_id} has more than one finding.")
        seen.add(image_id)
    if errors:
        raise ValidationFailed("Every finding must be about a different image of this referral",
                               {"findings": errors})
    stored_findings = [
        {"image_id": str(f["image_id"]), **{k: f.get(k) for k in FINDING_FIELDS},
         "diagnostic_quality": f.get("diagnostic_quality", DiagnosticQuality.ADEQUATE.value)}
        for f in findings
    ]
    now = utcnow()
    if report is None:
        _, user_id = access.membership(actor)
        report = Report(referral_id=referral.id, reader_provider_id=referral.assigned_provider_id,
                        drafted_by_user_id=user_id, created_at=now)
        session.add(report)
    report.findings = stored_findings
    report.impression = data.get("impression")
    report.recommendation = data.get("recommendation")
    report.answer = data.get("answer")
    report.evaluation_performed = bool(data.get("evaluation_performed", False))
    report.updated_at = now
    session.flush()
    audit.record(session, actor, "report.draft", object_type="report", object_id=report.id,
                 organization_id=referral.organization_id, referral_id=referral.id)
    session.commit()
    session.refresh(referral)
    return report


def sign(session: Session, actor: Actor, referral_id: uuid.UUID) -> Report:
    referral = _reader_of(session, actor, referral_id)
    report = referral.interpretation
    if report is None:
        raise Conflict("Draft the report before signing it")
    if report.status == ReportStatus.SIGNED:
        raise Conflict("The report is already signed")
    if referral.status != ReferralStatus.ACCEPTED:
        raise Conflict(f"A report can be signed while the case is accepted; it is {referral.status.value}")
    missing = sorted(str(image.id) for image in referral.images
                     if str(image.id) not in {f["image_id"] for f in report.findings})
    if missing:
        raise ValidationFailed("Give findings for every image before signing",
                               {"findings": [f"No finding for image {i}." for i in missing]})
    if not report.impression:
        raise ValidationFailed("Give an impression before signing", {"impression": ["Required to sign."]})
    now = utcnow()
    report.status = ReportStatus.SIGNED
    report.signed_at = now
    report.signed_by_user_id = actor.user_id
    report.content_sha256 = hashlib.sha256(canonical_content(report, referral, now)).hexdigest()
    workflow.sign_report(session, actor, referral, report)
    session.flush()
    session.refresh(referral)
    claims.regenerate(session, actor, referral)
    session.commit()
    return report


def add_addendum(session: Session, actor: Actor, referral_id: uuid.UUID, text: str) -> ReportAddendum:
    referral = _reader_of(session, actor, referral_id)
    report = referral.interpretation
    if report is None or report.status != ReportStatus.SIGNED:
        raise Conflict("Addenda are added to a signed report; edit the draft instead")
    _, user_id = access.membership(actor)
    provider_id = referral.assigned_provider_id
    now = utcnow()
    digest = hashlib.sha256(json.dumps(
        {"report_id": str(report.id), "report_sha256": report.content_sha256, "text": text,
         "signed_at": now.isoformat(), "provider_id": str(provider_id)},
        sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()).hexdigest()
    addendum = ReportAddendum(report_id=report.id, text=text, provider_id=provider_id,
                              signed_by_user_id=user_id, signed_at=now, content_sha256=digest)
    session.add(addendum)
    session.flush()
    # An addendum may change what is billable; claims follow, and stay put when nothing changed.
    claims.regenerate(session, actor, referral)
    audit.record(session, actor, "report.addendum", object_type="report", object_id=report.id,
                 organization_id=referral.organization_id, referral_id=referral.id,
                 details={"addendum_id": str(addendum.id)})
    session.commit()
    return addendum


def read(session: Session, actor: Actor, referral_id: uuid.UUID) -> tuple[Referral, Report]:
    """The report for both sides; a draft only for its reader. The case, its report and the report's addenda are
    loaded in two SELECTs whose first carries the access check (``access.load_case``), then the audit row and
    one COMMIT."""
    referral = access.load_case(session, actor, referral_id,
                                joinedload(Referral.interpretation).selectinload(Report.addenda))
    report = referral.interpretation
    is_reader = actor.provider_id is not None and actor.provider_id == referral.assigned_provider_id
    if report is None or (report.status == ReportStatus.DRAFT and not is_reader):
        raise NotFound("No report for this referral yet")
    audit.record(session, actor, "report.read", object_type="report", object_id=report.id,
                 organization_id=referral.organization_id, referral_id=referral.id)
    session.commit()
    return referral, report


def read_report(session: Session, actor: Actor, referral_id: uuid.UUID) -> Report:
    """``read``'s report, for the API's answer (``ReportSchema`` reads its columns and addenda). On PostgreSQL the
    access check, the report with its addenda and the audit row are one statement (``case_reads``) and what comes
    back stands in for the ORM objects; a report that statement does not find (no case the actor sees through their
    practice or assignment, no report, another's draft), and every report on SQLite, is read by ``read``, which
    refuses or flags it as it always has."""
    if session.get_bind().dialect.name == "postgresql":
        report = case_reads.read_visible_report(session, actor, referral_id)
        if report is not None:
            session.commit()
            return report
    return read(session, actor, referral_id)[1]


def nondiagnostic_images(report: Report) -> list[str]:
    """Images the reader judged not of diagnostic quality: not billable, and candidates for a retake."""
    return [f["image_id"] for f in report.findings if f.get("diagnostic_quality") == DiagnosticQuality.NONDIAGNOSTIC]
