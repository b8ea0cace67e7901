"""Typed SQLAlchemy models, one module per aggregate."""

from referral.models.audit import AuditEvent
from referral.models.claims import Claim, ClaimEdit, ClaimExport, ClaimLine, FeeScheduleEntry
from referral.models.idempotency import IdempotencyRecord
from referral.models.images import Image
from referral.models.maintenance import MaintenanceRun
from referral.models.organizations import Organization, Provider
from referral.models.outbox import DeliveryStatus, EmailNotification, OutboxEvent, Webhook, WebhookDelivery
from referral.models.patients import Patient
from referral.models.referrals import Referral, ReferralDecline, ReferralEvent
from referral.models.reports import DiagnosticQuality, Report, ReportAddendum, ReportStatus
from referral.models.uploads import PendingUpload, PendingUploadStatus
from referral.models.users import ApiToken, User
from referral.models.web import SignInAttempt, WebSession

__all__ = [
    "ApiToken",
    "AuditEvent",
    "Claim",
    "ClaimEdit",
    "ClaimExport",
    "ClaimLine",
    "DeliveryStatus",
    "DiagnosticQuality",
    "EmailNotification",
    "FeeScheduleEntry",
    "IdempotencyRecord",
    "Image",
    "MaintenanceRun",
    "Organization",
    "OutboxEvent",
    "Patient",
    "PendingUpload",
    "PendingUploadStatus",
    "Provider",
    "Referral",
    "ReferralDecline",
    "ReferralEvent",
    "Report",
    "ReportAddendum",
    "ReportStatus",
    "SignInAttempt",
    "User",
    "WebSession",
    "Webhook",
    "WebhookDelivery",
]
