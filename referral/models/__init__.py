"""Typed SQLAlchemy models, one module per aggregate."""

from referral.models.audit import AuditEvent
from referral.models.claim_attachments import ClaimAttachment
from referral.models.claims import (
    CLAIM_STATUSES,
    Acknowledgement,
    Claim,
    ClaimBatch,
    ClaimEdit,
    ClaimEvent,
    ClaimExport,
    ClaimLine,
    FeeScheduleEntry,
    Remittance,
    RemittanceClaim,
    RemittanceLine,
)
from referral.models.dicom import DicomDevice
from referral.models.emergency import AdminNotice, EmergencyAccess
from referral.models.idempotency import IdempotencyRecord
from referral.models.images import Image
from referral.models.link_requests import ProviderLinkRequest
from referral.models.maintenance import MaintenanceRun
from referral.models.messages import CaseMessage, CaseRead, NotificationPreference
from referral.models.organizations import Organization, Provider
from referral.models.outbox import DeliveryStatus, EmailNotification, OutboxEvent, Webhook, WebhookDelivery
from referral.models.patients import Patient
from referral.models.phrases import ReaderPhrase
from referral.models.referrals import Referral, ReferralDecline, ReferralEvent
from referral.models.reports import DiagnosticQuality, Report, ReportAddendum, ReportStatus
from referral.models.tus import TusUpload, TusUploadStatus
from referral.models.uploads import PendingUpload, PendingUploadStatus
from referral.models.users import ApiToken, User
from referral.models.web import MfaRecoveryCode, PasswordLink, SignInAttempt, UserMfa, WebSession

__all__ = [
    "CLAIM_STATUSES",
    "Acknowledgement",
    "AdminNotice",
    "ApiToken",
    "AuditEvent",
    "CaseMessage",
    "CaseRead",
    "Claim",
    "ClaimAttachment",
    "ClaimBatch",
    "ClaimEdit",
    "ClaimEvent",
    "ClaimExport",
    "ClaimLine",
    "DeliveryStatus",
    "DiagnosticQuality",
    "DicomDevice",
    "EmailNotification",
    "EmergencyAccess",
    "FeeScheduleEntry",
    "IdempotencyRecord",
    "Image",
    "MaintenanceRun",
    "MfaRecoveryCode",
    "NotificationPreference",
    "Organization",
    "OutboxEvent",
    "PasswordLink",
    "Patient",
    "PendingUpload",
    "PendingUploadStatus",
    "Provider",
    "ProviderLinkRequest",
    "ReaderPhrase",
    "Referral",
    "ReferralDecline",
    "ReferralEvent",
    "Remittance",
    "RemittanceClaim",
    "RemittanceLine",
    "Report",
    "ReportAddendum",
    "ReportStatus",
    "SignInAttempt",
    "TusUpload",
    "TusUploadStatus",
    "User",
    "UserMfa",
    "WebSession",
    "Webhook",
    "WebhookDelivery",
]
