"""What the DICOM listener does with the database and the image store: which devices may associate, the
modality worklist a device sees, and filing a received instance into its referral by accession number.

Nothing here speaks the network protocol (``referral.dicom_net`` does); each entry point is one transaction.
A device acts for its practice on behalf of the administrator who registered it: that user is the uploader of
the images it sends, and every audit row names the device in its details and its AE title as the user agent.
"""

from __future__ import annotations

import fnmatch
import logging
import socket
import unicodedata
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, joinedload

from referral.db import new_id, utcnow
from referral.errors import DomainError, ServiceUnavailable, UnsupportedMediaType, ValidationFailed
from referral.imaging.dicom import INTRAORAL_SOP_CLASSES, DicomInfo
from referral.models import DicomDevice, Image, Organization, Patient, Provider, Referral
from referral.models.enums import ImageKind, Sex
from referral.services import audit, intake
from referral.services.actor import Actor
from referral.timezones import zone as zone_info
from storage import Storage, StorageError, StorageUnavailable

log = logging.getLogger(__name__)

# Referrals waiting for images: the ones a device's worklist shows and its images may be filed into.
WAITING_FOR_IMAGES = intake.UPLOADABLE_STATUSES
WORKLIST_MODALITY = "IO"


@dataclass(frozen=True)
class Peer:
    """A device whose association was accepted: who it is and where it called from."""

    device_id: uuid.UUID
    organization_id: uuid.UUID
    ae_title: str
    address: str
    acting_user_id: uuid.UUID

    @property
    def actor(self) -> Actor:
        return Actor(user_id=self.acting_user_id, organization_id=self.organization_id, role=None,
                     ip_address=self.address, user_agent=f"DICOM AE {self.ae_title}")


def _anonymous_actor(address: str, ae_title: str) -> Actor:
    return Actor(user_id=None, organization_id=None, role=None, ip_address=address,
                 user_agent=f"DICOM AE {ae_title}")


def _host_matches(registered: str, address: str) -> bool:
    if registered == address:
        return True
    try:
        resolved = {info[4][0] for info in socket.getaddrinfo(registered, None)}
    except OSError:
        return False
    return address in resolved


def authorize_association(session: Session, calling_ae_title: str, called_ae_title: str, address: str,
                          our_ae_title: str) -> Peer | None:
    """The device a requested association comes from, or None when it must be rejected: an AE title no practice
    registered, or a registered one calling from another host, or a call to another AE title than ours.
    Audited either way (the AE titles and address only)."""
    calling = calling_ae_title.strip()
    device = session.scalar(sa.select(DicomDevice).where(DicomDevice.ae_title == calling))
    reason = None
    if called_ae_title.strip() != our_ae_title:
        reason = "called_ae_title_not_ours"
    elif device is None:
        reason = "calling_ae_title_not_registered"
    elif device.host is not None and not _host_matches(device.host, address):
        reason = "host_not_registered"
    if reason is not None or device is None:
        audit.record(session, _anonymous_actor(address, calling), "dicom.associate", object_type="dicom_device",
                     object_id=device.id if device else None,
                     organization_id=device.organization_id if device else None, outcome="denied",
                     details={"reason": reason, "calling_ae_title": calling[:16],
                              "called_ae_title": called_ae_title.strip()[:16]})
        session.commit()
        return None
    peer = Peer(device_id=device.id, organization_id=device.organization_id, ae_title=device.ae_title,
                address=address, acting_user_id=device.created_by_user_id)
    audit.record(session, peer.actor, "dicom.associate", object_type="dicom_device", object_id=device.id,
                 organization_id=device.organization_id, details={"device_id": str(device.id)})
    session.commit()
    return peer


def record_association_end(session: Session, peer: Peer, how: str, counts: dict[str, int]) -> None:
    """An accepted association ended (released or aborted), with what was asked of it."""
    audit.record(session, peer.actor, f"dicom.{how}", object_type="dicom_device", object_id=peer.device_id,
                 organization_id=peer.organization_id, details={"device_id": str(peer.device_id), **counts})
    session.commit()


# ---- Modality worklist -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DateRange:
    start: date | None
    end: date | None

    def contains(self, value: date | None) -> bool:
        if value is None:
            return False
        return (self.start is None or value >= self.start) and (self.end is None or value <= self.end)


@dataclass(frozen=True)
class WorklistQuery:
    """The matching keys a device sent, already parsed; None (or empty) matches everything."""

    patient_name: str | None = None  # DICOM PN pattern, ``*`` and ``?`` wildcards, components split by ``^``
    patient_id: str | None = None
    accession_number: str | None = None
    birth_date: DateRange | None = None
    sex: str | None = None
    modality: str | None = None
    scheduled_date: DateRange | None = None
    scheduled_station_ae_title: str | None = None


@dataclass(frozen=True)
class WorklistItem:
    referral_id: uuid.UUID
    accession_number: str
    study_instance_uid: str
    patient_id: str
    patient_family_name: str
    patient_given_name: str
    patient_birth_date: date
    patient_sex: str
    scheduled_at: datetime  # in the practice's time zone
    procedure_description: str
    status: str
    teeth: list[str] = field(default_factory=list)


def _fold(value: str) -> str:
    """Names match without regard to case or accents, as people type them at a sensor."""
    decomposed = unicodedata.normalize("NFKD", value)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).casefold()


def _pattern_matches(pattern: str, value: str) -> bool:
    pattern = pattern.strip()
    if not pattern or pattern == "*":
        return True
    folded = _fold(pattern)
    # fnmatch knows [...] classes, which DICOM does not: escape them so that they match themselves.
    folded = folded.replace("[", "[[]")
    return fnmatch.fnmatchcase(_fold(value), folded)


def _name_matches(pattern: str, family: str, given: str) -> bool:
    """DICOM PN matching: the pattern's components (family^given^...) each match the name's, a component left
    out matching anything; a pattern without ``^`` may also match the whole name as ``family^given``."""
    alphabetic = pattern.split("=")[0]
    components = alphabetic.split("^")
    if len(components) == 1:
        whole = f"{family}^{given}"
        return _pattern_matches(components[0], family) or _pattern_matches(components[0], whole)
    family_pattern, given_pattern = components[0], components[1]
    return _pattern_matches(family_pattern or "*", family) and _pattern_matches(given_pattern or "*", given)


def _describe(referral: Referral) -> str:
    teeth = ", ".join(referral.teeth or [])
    prefix = f"Teeth {teeth}: " if teeth else ""
    # Requested Procedure Description is an LO value: 64 characters at most.
    return (prefix + " ".join(referral.reason.split()))[:64]


def worklist(session: Session, peer: Peer, query: WorklistQuery) -> list[WorklistItem]:
    """The practice's referrals waiting for images that match ``query``. Audited with the count only."""
    items: list[WorklistItem] = []
    station_ok = not query.scheduled_station_ae_title or _pattern_matches(query.scheduled_station_ae_title,
                                                                           peer.ae_title)
    modality_ok = not query.modality or _pattern_matches(query.modality, WORKLIST_MODALITY)
    if station_ok and modality_ok:
        org = session.get(Organization, peer.organization_id)
        zone = zone_info(org.time_zone) if org is not None else None
        statement = (
            sa.select(Referral).join(Patient, Patient.id == Referral.patient_id)
            .where(Referral.organization_id == peer.organization_id, Referral.status.in_(WAITING_FOR_IMAGES),
                   Patient.deleted_at.is_(None))
            .options(joinedload(Referral.patient)).order_by(Referral.created_at, Referral.id)
        )
        if query.accession_number and "*" not in query.accession_number and "?" not in query.accession_number:
            statement = statement.where(Referral.accession_number == query.accession_number.strip())
        for referral in session.scalars(statement).unique():
            patient = referral.patient
            scheduled = referral.created_at.astimezone(zone) if zone else referral.created_at
            item = WorklistItem(
                referral_id=referral.id, accession_number=referral.accession_number,
                study_instance_uid=referral.study_instance_uid, patient_id=str(patient.id),
                patient_family_name=patient.last_name, patient_given_name=patient.first_name,
                patient_birth_date=patient.birth_date, patient_sex=patient.sex.value,
                scheduled_at=scheduled, procedure_description=_describe(referral), status=referral.status.value,
                teeth=list(referral.teeth or []))
            if _worklist_item_matches(item, query):
                items.append(item)
    audit.record(session, peer.actor, "dicom.worklist", object_type="referral", object_id=None,
                 organization_id=peer.organization_id,
                 details={"device_id": str(peer.device_id), "count": len(items)})
    session.commit()
    return items


def _worklist_item_matches(item: WorklistItem, query: WorklistQuery) -> bool:
    checks = (
        not query.patient_name or _name_matches(query.patient_name, item.patient_family_name,
                                                item.patient_given_name),
        not query.patient_id or _pattern_matches(query.patient_id, item.patient_id),
        not query.accession_number or _pattern_matches(query.accession_number, item.accession_number),
        query.birth_date is None or query.birth_date.contains(item.patient_birth_date),
        not query.sex or _pattern_matches(query.sex, item.patient_sex),
        query.scheduled_date is None or query.scheduled_date.contains(item.scheduled_at.date()),
    )
    return all(checks)


# ---- Storage -----------------------------------------------------------------------------------------------


class StoreRefused(Exception):
    """A received instance that is not filed; ``status`` is the C-STORE status to answer with."""

    def __init__(self, status: int, reason: str, comment: str) -> None:
        super().__init__(comment)
        self.status = status
        self.reason = reason
        self.comment = comment


# C-STORE failure statuses. C000-CFFF is "cannot understand" in the standard; the low byte says why, so that an
# operator reading a sensor's log can tell the cases apart (docs/dicom-network.md lists them).
STATUS_SUCCESS = 0x0000
STATUS_OUT_OF_RESOURCES = 0xA700
STATUS_NO_REFERRAL = 0xC210
STATUS_CASE_CLOSED = 0xC211
STATUS_PATIENT_MISMATCH = 0xC212
STATUS_REFUSED_FILE = 0xC213
STATUS_PROCESSING_FAILURE = 0xC214
STATUS_NO_ACCESSION = 0xC215


@dataclass(frozen=True)
class Received:
    """One instance as the listener received it: spooled, hashed and counted, with the header keys it needs."""

    upload: intake.Upload
    accession_number: str | None
    sop_instance_uid: str | None
    sop_class_uid: str | None


@dataclass(frozen=True)
class Filed:
    image_id: uuid.UUID
    duplicate: bool


_DESCRIPTIVE_KINDS = (
    ("bitewing", ImageKind.BITEWING), ("bite wing", ImageKind.BITEWING), ("occlusal", ImageKind.OCCLUSAL),
    ("cephalo", ImageKind.CEPHALOMETRIC), ("ceph", ImageKind.CEPHALOMETRIC), ("panoram", ImageKind.PANORAMIC),
    ("periapical", ImageKind.PERIAPICAL), ("extraoral", ImageKind.PHOTO_EXTRAORAL),
)
VL_PHOTOGRAPHIC = "1.2.840.10008.5.1.4.1.1.77.1.4"


def kind_for(dicom: DicomInfo, description: str | None) -> ImageKind:
    """The image kind from the SOP class and modality, unless the dataset's own descriptions name another:
    intra-oral radiographs are periapicals, panoramic and other extra-oral X-rays panoramics, photographs
    intra-oral photos."""
    text = (description or "").casefold()
    if dicom.sop_class_uid == VL_PHOTOGRAPHIC or (dicom.modality in ("XC", "VL", "OT") and not dicom.is_radiograph):
        return ImageKind.PHOTO_EXTRAORAL if "extraoral" in text or "extra-oral" in text else ImageKind.PHOTO_INTRAORAL
    for word, kind in _DESCRIPTIVE_KINDS:
        if word in text and not kind.is_photo:
            return kind
    if dicom.sop_class_uid in INTRAORAL_SOP_CLASSES or dicom.modality == "IO":
        return ImageKind.PERIAPICAL
    if dicom.modality in ("PX", "DX", "CR"):
        return ImageKind.PANORAMIC
    return ImageKind.PERIAPICAL


def _known_provider(session: Session, organization_id: uuid.UUID, operator: str | None) -> Provider | None:
    """The practice's provider the file names as its operator (``Family^Given``), when exactly one fits."""
    if not operator:
        return None
    parts = operator.split("=")[0].split("^")
    family, given = _fold(parts[0].strip()), _fold(parts[1].strip()) if len(parts) > 1 else ""
    if not family:
        return None
    providers = session.scalars(sa.select(Provider).where(Provider.organization_id == organization_id)).all()
    fits = [p for p in providers if _fold(p.last_name) == family
            and (not given or _fold(p.first_name).startswith(given) or given.startswith(_fold(p.first_name)))]
    return fits[0] if len(fits) == 1 else None


def _duplicate(session: Session, referral_id: uuid.UUID, sop_instance_uid: str | None) -> Image | None:
    if not sop_instance_uid:
        return None
    return session.scalar(sa.select(Image).where(Image.referral_id == referral_id,
                                                 Image.sop_instance_uid == sop_instance_uid))


def file_received(session: Session, store: Storage, peer: Peer, received: Received, *,
                  description: str | None = None) -> Filed:
    """File one received instance into the open referral of the device's practice its accession number names,
    through the same checks and writes as an upload (object, renditions, then row, in one transaction). Raises
    StoreRefused, with nothing stored, when it cannot be filed. The same SOP Instance UID sent again into the
    same referral is answered as filed, with the first image and nothing stored a second time."""
    try:
        filed = _file_received(session, store, peer, received, description)
        session.commit()
        return filed
    except IntegrityError:
        # The same instance arrived twice at once: the other copy was filed first.
        session.rollback()
        existing = _existing_copy(session, peer, received)
        if existing is None:
            raise
        filed = _record_duplicate(session, peer, existing)
        session.commit()
        return filed
    except (StorageError, StorageUnavailable, ServiceUnavailable):
        refused = StoreRefused(STATUS_OUT_OF_RESOURCES, "store_unavailable",
                               "The image store is unavailable; nothing was kept, send the image again")
    except StoreRefused as exc:
        refused = exc
    session.rollback()
    audit.record(session, peer.actor, "dicom.store", object_type="image", object_id=None,
                 organization_id=peer.organization_id, outcome="denied",
                 details={"device_id": str(peer.device_id), "reason": refused.reason,
                          "status": f"0x{refused.status:04X}"})
    session.commit()
    raise refused


def _existing_copy(session: Session, peer: Peer, received: Received) -> Image | None:
    accession = (received.accession_number or "").strip()
    if not accession or not received.sop_instance_uid:
        return None
    return session.scalar(
        sa.select(Image).join(Referral, Referral.id == Image.referral_id)
        .where(Referral.organization_id == peer.organization_id, Referral.accession_number == accession,
               Image.sop_instance_uid == received.sop_instance_uid))


def _file_received(session: Session, store: Storage, peer: Peer, received: Received,
                   description: str | None) -> Filed:
    accession = (received.accession_number or "").strip()
    if not accession:
        raise StoreRefused(STATUS_NO_ACCESSION, "no_accession_number",
                           "The image has no accession number; choose the case from the worklist before sending")
    referral = session.scalar(
        sa.select(Referral).where(Referral.organization_id == peer.organization_id,
                                  Referral.accession_number == accession)
        .with_for_update(of=Referral))
    if referral is None:
        raise StoreRefused(STATUS_NO_REFERRAL, "no_matching_referral",
                           "No referral of this practice has that accession number")
    existing = _duplicate(session, referral.id, received.sop_instance_uid)
    if existing is not None:
        return _record_duplicate(session, peer, existing)
    if referral.status not in WAITING_FOR_IMAGES:
        raise StoreRefused(STATUS_CASE_CLOSED, "referral_not_open",
                           "That referral is not waiting for images (it was sent, closed or cancelled)")
    if referral.patient.is_deleted:
        raise StoreRefused(STATUS_CASE_CLOSED, "patient_deleted", "That referral's patient record was deleted")
    actor = peer.actor
    try:
        inspection = intake.inspect_upload(received.upload)
        dicom = inspection.dicom
        if dicom is None:
            raise StoreRefused(STATUS_REFUSED_FILE, "not_dicom", "The data set could not be read as DICOM")
        intake.check_patient_matches(dicom, referral.patient)
        kind = kind_for(dicom, description)
        provider = _known_provider(session, referral.organization_id, dicom.operators_name)
        fields: dict[str, Any] = {
            "kind": kind.value,
            "teeth": list(dicom.teeth) or list(referral.teeth or []),
            "reason": referral.reason[:1000],
            "captured_at": dicom.acquisition_datetime or utcnow(),
            "captured_by_provider_id": provider.id if provider else referral.referring_provider_id,
        }
        admission = intake.admit(session, actor, referral, fields, received.upload)
    except ValidationFailed as exc:
        if "different patient" in exc.message:
            raise StoreRefused(STATUS_PATIENT_MISMATCH, "patient_mismatch",
                               "The image names another patient than the referral's") from None
        raise StoreRefused(STATUS_REFUSED_FILE, "refused_file", _plain(exc)) from None
    except UnsupportedMediaType as exc:
        raise StoreRefused(STATUS_REFUSED_FILE, "unsupported_file", _plain(exc)) from None
    image_id = new_id()
    original = intake.put_object(session, store, intake.image_key(referral, image_id), received.upload.stream,
                                 content_type=admission.inspection.content_type, size=received.upload.size,
                                 sha256=received.upload.sha256)
    intake.file_image(session, store, actor, admission, image_id=image_id, original=original,
                      sop_instance_uid=received.sop_instance_uid, captured_by_confirmed=provider is not None,
                      audit_details={"via": "dicom", "device_id": str(peer.device_id)})
    return Filed(image_id=image_id, duplicate=False)


def _record_duplicate(session: Session, peer: Peer, existing: Image) -> Filed:
    audit.record(session, peer.actor, "dicom.store", object_type="image", object_id=existing.id,
                 organization_id=existing.organization_id, referral_id=existing.referral_id,
                 details={"device_id": str(peer.device_id), "duplicate": True})
    return Filed(image_id=existing.id, duplicate=True)


def _plain(exc: DomainError) -> str:
    # The intake's messages are written for people and name no patient; DICOM's comment field holds 64.
    return exc.message[:64]


def sex_code(value: str) -> str:
    return "O" if value == Sex.UNKNOWN.value else value

