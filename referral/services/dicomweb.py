"""DICOMweb over the case's images: search (QIDO-RS), retrieve (WADO-RS) and store (STOW-RS).

What a DICOMweb client sees is exactly the DICOM images it may see as pictures through the JSON API: those of
referrals visible to the actor (the office's own; a reader's only while assigned), for roles that may see
image bytes. Billing and administrative roles find no studies, and a study, series or instance of a case the
actor may not see is not found, like one that does not exist. Photos and other non-DICOM images are not
served: they have no DICOM identity of their own. Deleted images are gone here too.

Studies are grouped by the Study Instance UID each file carries; the patient shown is the referral's patient
(its record, not the file's header). Every read is audited as a read of the images it returns.

Stored instances are filed by their Accession Number into an open referral of the sender's practice, through
the same checks as an upload (``intake.admit`` then ``intake.file_image``), one transaction per instance.
"""

from __future__ import annotations

import fnmatch
import logging
import re
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, BinaryIO, cast

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from referral import timezones
from referral.db import new_id, utcnow
from referral.errors import DomainError, NotFound, ServiceUnavailable, UnsupportedMediaType
from referral.imaging import dicom_json, frames
from referral.imaging.dicom import DicomInfo
from referral.imaging.inspect import DamagedImage, Inspection, UnsupportedImageType, inspect_image
from referral.imaging.sniff import ImageFormat
from referral.models import Image, Organization, Provider, Referral
from referral.services import access, audit, dicom_network, intake
from referral.services.actor import Actor
from storage import Storage, StorageError, StorageUnavailable

log = logging.getLogger(__name__)

_UID = re.compile(r"[0-9]+(\.[0-9]+)*")
_MAX_UID = 64
MAX_LIMIT = 1000
_SPOOL_IN_MEMORY = 8 * 1024 * 1024

# STOW-RS failure reasons (the C-STORE status codes).
PROCESSING_FAILURE = 0x0110
DUPLICATE_INSTANCE = 0x0111
SOP_CLASS_NOT_SUPPORTED = 0x0122
NOT_AUTHORIZED = 0x0124
OUT_OF_RESOURCES = 0xA700
STUDY_MISMATCH = 0xA900
CANNOT_UNDERSTAND = 0xC000


class BadQuery(DomainError):
    """A search parameter this server cannot read: 400."""


@dataclass(frozen=True)
class Instance:
    """A stored DICOM image as DICOMweb names it."""

    image: Image
    referral: Referral
    study_uid: str
    series_uid: str
    sop_uid: str
    header: DicomInfo

    @property
    def moment(self) -> datetime:
        """When it was taken, as a wall time without zone: the file's acquisition time when it has one (as the
        device's clock read), else the time the office gave, in UTC."""
        taken = self.header.acquisition_datetime
        if taken is None:
            return self.image.captured_at.astimezone(UTC).replace(tzinfo=None)
        return taken.replace(tzinfo=None)


def _uid(value: Any) -> str | None:
    return value if isinstance(value, str) and len(value) <= _MAX_UID and _UID.fullmatch(value) else None


def _instance(image: Image, referral: Referral) -> Instance | None:
    record = image.dicom or {}
    study, series, sop = (_uid(record.get(key)) for key in
                          ("study_instance_uid", "series_instance_uid", "sop_instance_uid"))
    if study is None or series is None or sop is None:
        return None
    return Instance(image=image, referral=referral, study_uid=study, series_uid=series, sop_uid=sop,
                    header=DicomInfo.from_record_dict(record))


def may_see_images(actor: Actor) -> bool:
    return actor.organization_id is not None and actor.role in access.IMAGE_VIEWER_ROLES


def visible_instances(session: Session, actor: Actor, *, study: str | None = None, series: str | None = None,
                      sop: str | None = None, studies: set[str] | None = None) -> list[Instance]:
    """The DICOM instances the actor may see, oldest first, one per SOP Instance UID; ``studies`` narrows to
    the studies of those UIDs."""
    if not may_see_images(actor):
        return []
    query = (sa.select(Image, Referral).join(Referral, Image.referral_id == Referral.id)
             .where(access.referral_visibility(actor), Image.deleted_at.is_(None),
                    Image.file_format == ImageFormat.DICOM.value)
             .order_by(Image.created_at, Image.id))
    for key, value in (("study_instance_uid", study), ("series_instance_uid", series), ("sop_instance_uid", sop)):
        if value is not None:
            query = query.where(Image.dicom[key].as_string() == value)
    if studies:
        query = query.where(Image.dicom["study_instance_uid"].as_string().in_(sorted(studies)))
    seen: set[str] = set()
    result: list[Instance] = []
    for image, referral in session.execute(query):
        instance = _instance(image, referral)
        if instance is None or instance.sop_uid in seen:
            continue
        seen.add(instance.sop_uid)
        result.append(instance)
    return result


# --- search (QIDO-RS) ------------------------------------------------------------------------------------------

STUDY, SERIES, INSTANCE = "study", "series", "instance"

# What each level answers by default; ``includefield`` adds the others it knows (or all of them).
_DEFAULT_FIELDS = {
    STUDY: ["00080005", "00080020", "00080030", "00080050", "00080061", "00080090", "00081190", "00100010",
            "00100020", "00100030", "00100040", "0020000D", "00200010", "00201206", "00201208"],
    SERIES: ["00080005", "00080060", "0008103E", "00081190", "0020000D", "0020000E", "00200011", "00201209"],
    INSTANCE: ["00080005", "00080016", "00080018", "00080060", "00081190", "0020000D", "0020000E", "00200013",
               "00280008", "00280010", "00280011"],
}
_EXTRA_FIELDS = {
    STUDY: ["00081030"],
    SERIES: ["00080021", "00080031"],
    INSTANCE: ["00080008", "00080022", "00080032", "00280100", "00280101", "00280004", "00280002", "00200060"],
}
# Attributes of the study that series and instance results carry as well when asked for.
_STUDY_FIELDS_BELOW = ["00080020", "00080030", "00080050", "00100010", "00100020", "00100030", "00100040",
                       "00081030"]

_MATCH_KEYS = {
    "0020000D": "StudyInstanceUID", "0020000E": "SeriesInstanceUID", "00080018": "SOPInstanceUID",
    "00080050": "AccessionNumber", "00100020": "PatientID", "00100010": "PatientName", "00080020": "StudyDate",
    "00080061": "ModalitiesInStudy", "00080060": "Modality", "00080016": "SOPClassUID",
}


@dataclass
class Query:
    level: str
    study: str | None = None
    series: str | None = None
    matches: dict[str, str] = field(default_factory=dict)  # tag -> value as sent
    include: set[str] = field(default_factory=set)
    include_all: bool = False
    limit: int | None = None
    offset: int = 0
    ignored: list[str] = field(default_factory=list)  # parameters read and not used (told in a warning)


def parse_query(level: str, params: Iterable[tuple[str, str]], *, study: str | None = None,
                series: str | None = None) -> Query:
    query = Query(level=level, study=study, series=series)
    for name, value in params:
        if name == "includefield":
            for item in (part.strip() for part in value.split(",")):
                if item == "all":
                    query.include_all = True
                elif item:
                    found = dicom_json.tag(item)
                    if found is None:
                        raise BadQuery(f"includefield names an attribute this server does not know: {item!r}")
                    query.include.add(found)
        elif name in ("limit", "offset"):
            if not value.isdigit() or (name == "limit" and not 1 <= int(value) <= MAX_LIMIT):
                bound = f"from 1 to {MAX_LIMIT}" if name == "limit" else "of 0 or more"
                raise BadQuery(f"{name} must be a whole number {bound}")
            setattr(query, name, int(value))
        elif name == "fuzzymatching":
            if value not in ("true", "false"):
                raise BadQuery("fuzzymatching must be true or false")
            if value == "true":
                query.ignored.append(name)
        else:
            found = dicom_json.tag(name)
            if found is None or found not in _MATCH_KEYS:
                query.ignored.append(name)
                continue
            if found == "00080020" and value:
                _date_range(value)  # refused now, not later
            query.matches[found] = value
    return query


def _date(text: str) -> date:
    try:
        if not re.fullmatch(r"[0-9]{8}", text.strip()):
            raise ValueError(text)
        return date.fromisoformat(text.strip())
    except ValueError:
        raise BadQuery(f"StudyDate must be YYYYMMDD or a range YYYYMMDD-YYYYMMDD, not {text!r}") from None


def _date_range(value: str) -> tuple[date | None, date | None]:
    if "-" not in value:
        day = _date(value)
        return day, day
    start, _, end = value.partition("-")
    if not start.strip() and not end.strip():
        raise BadQuery("StudyDate needs a date on at least one side of the dash")
    return (_date(start) if start.strip() else None, _date(end) if end.strip() else None)


def _wildcard(pattern: str, value: str | None, *, fold: bool = False) -> bool:
    if value is None:
        return False
    if fold:
        pattern, value = pattern.casefold(), value.casefold()
    escaped = pattern.replace("[", "[[]")
    return fnmatch.fnmatchcase(value, escaped)


def _uid_list(value: str) -> set[str]:
    return {part.strip() for part in re.split(r"[,\\]", value) if part.strip()}


def accession_number(referral: Referral, instances: Sequence[Instance]) -> str | None:
    """The referral's own accession number where it has one, else the first the files carry."""
    if referral.accession_number:
        return referral.accession_number
    return next((i.header.accession_number for i in instances if i.header.accession_number), None)


def _accession_numbers(instances: Sequence[Instance]) -> list[str]:
    """What a study is found by: the referral's accession number and any other the files carry."""
    numbers = [instances[0].referral.accession_number or ""]
    numbers.extend(i.header.accession_number for i in instances if i.header.accession_number)
    return [n for n in numbers if n]


def _patient_ids(instances: Sequence[Instance]) -> list[str]:
    """The ids a patient is found by: the referral's patient record, and what the files call the patient."""
    ids = [str(instances[0].referral.patient_id)]
    ids.extend(i.header.patient_id for i in instances if i.header.patient_id)
    return ids


def _study_date(instances: Sequence[Instance]) -> date:
    return min(i.moment for i in instances).date()


def _study_matches(query: Query, instances: Sequence[Instance]) -> bool:
    referral = instances[0].referral
    for tag_hex, value in query.matches.items():
        if not value:
            continue  # universal matching
        if tag_hex == "0020000D":
            if instances[0].study_uid not in _uid_list(value):
                return False
        elif tag_hex == "00080050":
            if not any(_wildcard(value, number) for number in _accession_numbers(instances)):
                return False
        elif tag_hex == "00100020":
            if not any(_wildcard(value, pid) for pid in _patient_ids(instances)):
                return False
        elif tag_hex == "00100010":
            patient = referral.patient
            if not _wildcard(value, f"{patient.last_name}^{patient.first_name}", fold=True):
                return False
        elif tag_hex == "00080020":
            start, end = _date_range(value)
            day = _study_date(instances)
            if (start is not None and day < start) or (end is not None and day > end):
                return False
        elif tag_hex == "00080061":
            wanted = {part.strip() for part in value.split(",")}
            if not wanted & {i.header.modality for i in instances}:
                return False
    return True


def _instance_matches(query: Query, instance: Instance) -> bool:
    for tag_hex, value in query.matches.items():
        if not value:
            continue
        if tag_hex == "0020000E" and instance.series_uid not in _uid_list(value):
            return False
        if tag_hex == "00080060" and query.level != STUDY and instance.header.modality != value.strip():
            return False
        if tag_hex == "00080018" and query.level == INSTANCE and instance.sop_uid not in _uid_list(value):
            return False
        if tag_hex == "00080016" and query.level == INSTANCE and instance.header.sop_class_uid != value.strip():
            return False
    return True


def _wanted(query: Query) -> set[str]:
    wanted = set(_DEFAULT_FIELDS[query.level]) | set(query.matches)
    if query.include_all:
        wanted |= set(_EXTRA_FIELDS[query.level])
        if query.level != STUDY:
            wanted |= set(_STUDY_FIELDS_BELOW)
    else:
        wanted |= query.include
    return wanted


def _study_attributes(instances: Sequence[Instance], base_url: str) -> dicom_json.JsonDataset:
    first = instances[0]
    referral, patient = first.referral, first.referral.patient
    earliest = min(instances, key=lambda i: i.moment).moment
    referring: Provider | None = referral.referring_provider
    series = {i.series_uid for i in instances}
    return {
        "00080005": dicom_json.attribute("CS", "ISO_IR 192"),
        "00080020": dicom_json.da(earliest.date()),
        "00080030": dicom_json.tm(earliest),
        "00080050": dicom_json.attribute("SH", accession_number(referral, instances)),
        "00080061": dicom_json.attribute("CS", *sorted({i.header.modality for i in instances if i.header.modality})),
        "00080090": (dicom_json.person_name(referring.last_name, referring.first_name) if referring is not None
                     else {"vr": "PN"}),
        "00081030": dicom_json.attribute("LO", f"{referral.specialty.value.replace('_', ' ').capitalize()} referral"),
        "00081190": dicom_json.attribute("UR", f"{base_url}/studies/{first.study_uid}"),
        "00100010": dicom_json.person_name(patient.last_name, patient.first_name),
        "00100020": dicom_json.attribute("LO", str(patient.id)),
        "00100030": dicom_json.da(patient.birth_date),
        "00100040": dicom_json.attribute("CS", {"F": "F", "M": "M"}.get(str(patient.sex.value).upper(), "O")),
        "0020000D": dicom_json.attribute("UI", first.study_uid),
        "00200010": dicom_json.attribute("SH", None),
        "00201206": dicom_json.attribute("IS", len(series)),
        "00201208": dicom_json.attribute("IS", len(instances)),
    }


def _series_attributes(instances: Sequence[Instance], base_url: str) -> dicom_json.JsonDataset:
    first = instances[0]
    earliest = min(instances, key=lambda i: i.moment).moment
    return {
        "00080021": dicom_json.da(earliest.date()),
        "00080031": dicom_json.tm(earliest),
        "00080060": dicom_json.attribute("CS", first.header.modality),
        "0008103E": dicom_json.attribute("LO", first.image.kind.value.replace("_", " ")),
        "00081190": dicom_json.attribute("UR", f"{base_url}/studies/{first.study_uid}/series/{first.series_uid}"),
        "0020000E": dicom_json.attribute("UI", first.series_uid),
        "00200011": dicom_json.attribute("IS", first.header.series_number),
        "00201209": dicom_json.attribute("IS", len(instances)),
    }


def _instance_attributes(instance: Instance, base_url: str) -> dicom_json.JsonDataset:
    header = instance.header
    return {
        "00080008": dicom_json.attribute("CS", "ORIGINAL", "PRIMARY"),
        "00080016": dicom_json.attribute("UI", header.sop_class_uid),
        "00080018": dicom_json.attribute("UI", instance.sop_uid),
        "00080022": dicom_json.da(instance.moment.date()),
        "00080032": dicom_json.tm(instance.moment),
        "00081190": dicom_json.attribute(
            "UR", f"{base_url}/studies/{instance.study_uid}/series/{instance.series_uid}/instances/{instance.sop_uid}"),
        "00200013": dicom_json.attribute("IS", header.instance_number),
        "00200060": dicom_json.attribute("CS", header.laterality),
        "00280002": dicom_json.attribute("US", header.samples_per_pixel),
        "00280004": dicom_json.attribute("CS", header.photometric),
        "00280008": dicom_json.attribute("IS", header.number_of_frames or 1),
        "00280010": dicom_json.attribute("US", header.rows),
        "00280011": dicom_json.attribute("US", header.columns),
        "00280100": dicom_json.attribute("US", header.bits_allocated),
        "00280101": dicom_json.attribute("US", header.bits_stored),
    }


def _group(instances: Iterable[Instance], key: Callable[[Instance], str]) -> dict[str, list[Instance]]:
    groups: dict[str, list[Instance]] = {}
    for instance in instances:
        groups.setdefault(key(instance), []).append(instance)
    return groups


def search(session: Session, actor: Actor, query: Query, base_url: str) -> list[dicom_json.JsonDataset]:
    """QIDO-RS: the matching studies, series or instances, in the order they were stored. An unknown study or
    series in the path finds nothing (an empty result), whoever owns it."""
    # A search by Study Instance UID reads only those studies' rows; the rest of the matching is done below.
    studies = _uid_list(query.matches["0020000D"]) if query.matches.get("0020000D") else None
    instances = visible_instances(session, actor, study=query.study, series=query.series, studies=studies)
    wanted = _wanted(query)
    results: list[tuple[dicom_json.JsonDataset, list[Instance]]] = []
    for study_instances in _group(instances, lambda i: i.study_uid).values():
        if not _study_matches(query, study_instances):
            continue
        study_attrs = _study_attributes(study_instances, base_url)
        below = [i for i in study_instances if _instance_matches(query, i)]
        if query.level == STUDY:
            if "00080060" in query.matches and query.matches["00080060"] and not any(
                    i.header.modality == query.matches["00080060"].strip() for i in study_instances):
                continue
            results.append((study_attrs, study_instances))
        elif query.level == SERIES:
            for series_instances in _group(below, lambda i: i.series_uid).values():
                results.append(({**study_attrs, **_series_attributes(series_instances, base_url)}, series_instances))
        else:
            for instance in below:
                series_instances = [i for i in study_instances if i.series_uid == instance.series_uid]
                attrs = {**study_attrs, **_series_attributes(series_instances, base_url),
                         **_instance_attributes(instance, base_url)}
                results.append((attrs, [instance]))
    page = results[query.offset:][: query.limit or MAX_LIMIT]
    _audit_reads(session, actor, "image.list", [i for _, group in page for i in group], {"via": "dicomweb.search"})
    session.commit()
    return [{tag_hex: value for tag_hex, value in sorted(attrs.items()) if tag_hex in wanted}
            for attrs, _ in page]


def _audit_reads(session: Session, actor: Actor, action: str, instances: Sequence[Instance],
                 details: dict[str, Any]) -> None:
    """One audit row per referral for a listing, naming how many of its images were returned."""
    if action == "image.list":
        for referral_id, group in _group(instances, lambda i: str(i.referral.id)).items():
            referral = group[0].referral
            audit.record(session, actor, action, object_type="referral", object_id=uuid.UUID(referral_id),
                         organization_id=referral.organization_id, referral_id=referral.id,
                         details={**details, "count": len(group)})
        return
    for instance in instances:
        audit.record(session, actor, action, object_type="image", object_id=instance.image.id,
                     organization_id=instance.image.organization_id, referral_id=instance.referral.id,
                     details=details)


# --- retrieve (WADO-RS) ----------------------------------------------------------------------------------------


def _found(session: Session, actor: Actor, study: str, series: str | None, sop: str | None) -> list[Instance]:
    instances = visible_instances(session, actor, study=study, series=series, sop=sop)
    if not instances:
        what = "instance" if sop else "series" if series else "study"
        raise NotFound(f"No such {what}, or not one you may see")
    return instances


def retrieve(session: Session, actor: Actor, study: str, series: str | None = None, sop: str | None = None, *,
             acceptable: Callable[[set[str]], None] | None = None) -> list[Instance]:
    """The stored instances of a study, series or instance, for their bytes. Audited as downloads; an
    instance whose stored file is missing or altered makes the whole answer 503. ``acceptable`` checks the
    transfer syntaxes the files are in against what the client takes (before anything is audited)."""
    instances = _found(session, actor, study, series, sop)
    if acceptable is not None:
        acceptable({i.header.transfer_syntax_uid or "" for i in instances})
    for instance in instances:
        intake.require_intact(instance.image)
    _audit_reads(session, actor, "image.download", instances, {"via": "dicomweb"})
    session.commit()
    return instances


def open_instance(store: Storage, instance: Instance) -> BinaryIO:
    return intake.open_stored(store, instance.image, instance.image.storage_key)


def metadata(session: Session, store: Storage, actor: Actor, study: str, series: str | None = None,
             sop: str | None = None) -> list[dicom_json.JsonDataset]:
    """The DICOM JSON of each instance, read from its stored file without pixel data. Audited as reads."""
    instances = _found(session, actor, study, series, sop)
    result = []
    for instance in instances:
        intake.require_intact(instance.image)
        with _spooled(store, instance) as spool:
            try:
                result.append(dicom_json.metadata(cast(BinaryIO, spool)))
            except dicom_json.UnreadableDataset:
                log.error("stored DICOM file of image %s could not be read again", instance.image.id)
                raise ServiceUnavailable("A stored DICOM file could not be read; an operator must check it") from None
    _audit_reads(session, actor, "image.read", instances, {"via": "dicomweb.metadata"})
    session.commit()
    return result


def _spooled(store: Storage, instance: Instance) -> tempfile.SpooledTemporaryFile[bytes]:
    """The stored file in a seekable spool (pydicom seeks; a stream from the object store may not)."""
    spool: tempfile.SpooledTemporaryFile[bytes] = tempfile.SpooledTemporaryFile(  # noqa: SIM115 - the caller's
        max_size=_SPOOL_IN_MEMORY)
    try:
        stream = open_instance(store, instance)
        try:
            shutil.copyfileobj(stream, spool)
        finally:
            stream.close()
    except BaseException:
        spool.close()
        raise
    spool.seek(0)
    return spool


def retrieve_frames(session: Session, store: Storage, actor: Actor, study: str, series: str, sop: str,
                    numbers: Sequence[int], *, acceptable: Callable[[str], None]) -> tuple[list[bytes], str]:
    """Frames of one instance and the transfer syntax they are in; ``acceptable`` checks that syntax against
    what the client takes. Audited as a download."""
    instance = _found(session, actor, study, series, sop)[0]
    syntax = frames.served_syntax(instance.header.transfer_syntax_uid)
    acceptable(syntax)
    intake.require_intact(instance.image)
    with _spooled(store, instance) as spool:
        try:
            result = frames.read_frames(cast(BinaryIO, spool), numbers)
        except frames.NoSuchFrame as exc:
            raise NotFound(f"This instance has {exc.args[0]} frame(s)") from None
        except frames.UnservableFrames:
            raise NotFound("This instance's pixel data cannot be served as frames; retrieve the instance") from None
    _audit_reads(session, actor, "image.download", [instance], {"via": "dicomweb.frames"})
    session.commit()
    return result, syntax


def rendition(session: Session, store: Storage, actor: Actor, study: str, series: str | None, sop: str | None,
              which: str) -> BinaryIO:
    """The stored JPEG ``preview`` (for /rendered) or ``thumbnail`` of an instance, or of the first instance of
    a series or study. Audited like the JSON API's preview and thumbnail."""
    instance = _found(session, actor, study, series, sop)[0]
    return intake.open_rendition(session, store, actor, instance.image.id, which)[1]


# --- store (STOW-RS) -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Stored:
    """One instance's outcome: stored (``image_id``) or refused (``failure``), named by its UIDs when known."""

    sop_class_uid: str | None
    sop_uid: str | None
    study_uid: str | None = None
    series_uid: str | None = None
    image_id: uuid.UUID | None = None
    failure: int | None = None
    reason: str | None = None  # plain words for the log of refusals and the response's warning


@dataclass(frozen=True)
class _Refusal:
    header: DicomInfo | None
    code: int
    reason: str
    referral: Referral | None = None


def _stored(header: DicomInfo, image_id: uuid.UUID) -> Stored:
    return Stored(sop_class_uid=header.sop_class_uid, sop_uid=header.sop_instance_uid,
                  study_uid=header.study_instance_uid, series_uid=header.series_instance_uid, image_id=image_id)



def _captured_at(header: DicomInfo, organization: Organization | None) -> datetime:
    moment = header.acquisition_datetime
    if moment is None:
        return utcnow()
    if moment.tzinfo is None:
        return timezones.from_local(moment, organization.time_zone if organization else None).astimezone(UTC)
    return moment.astimezone(UTC)


def _capturer(session: Session, actor: Actor, referral: Referral) -> tuple[uuid.UUID, bool]:
    """Who captured it, and whether that is known: the sender's own provider when they are one of the
    practice's; otherwise the referring provider, for the office to confirm or correct."""
    if actor.provider_id is not None:
        provider = session.get(Provider, actor.provider_id)
        if provider is not None and provider.organization_id == referral.organization_id:
            return provider.id, True
    return referral.referring_provider_id, False


def _referral_by_accession(session: Session, actor: Actor, number: str) -> Referral | None:
    return session.scalars(sa.select(Referral).where(Referral.organization_id == actor.organization_id,
                                                     Referral.accession_number == number)).first()


def _duplicate(session: Session, referral: Referral, sop_uid: str) -> Image | None:
    same = sa.or_(Image.sop_instance_uid == sop_uid, Image.dicom["sop_instance_uid"].as_string() == sop_uid)
    return session.scalars(sa.select(Image).where(Image.referral_id == referral.id, Image.deleted_at.is_(None),
                                                  same)).first()


def store_instance(session: Session, store: Storage, actor: Actor, upload: intake.Upload, *,
                   study: str | None = None) -> Stored:
    """File one received instance into the open referral its Accession Number names, in one transaction; a
    refusal stores nothing, is audited and says why. The same instance sent again is answered as stored, once
    (also when two sendings race: the second finds the first's image once the first has committed)."""
    try:
        outcome = _file(session, store, actor, upload, study)
        if isinstance(outcome, Stored):
            session.commit()
            return outcome
    except IntegrityError:
        session.rollback()
        outcome = _file(session, store, actor, upload, study)
        if isinstance(outcome, Stored):
            session.commit()
            return outcome
    except (StorageError, StorageUnavailable):
        log.error("image store unavailable while storing a DICOMweb instance; nothing kept")
        outcome = _Refusal(None, OUT_OF_RESOURCES, "the image store is unavailable; try again")
    session.rollback()
    # Recorded with only what the sender sent and its own practice, like every refused attempt.
    audit.record_denied(session, actor, "image.create", object_type="image", object_id=None)
    session.commit()
    header = outcome.header
    return Stored(sop_class_uid=header.sop_class_uid if header else None,
                  sop_uid=header.sop_instance_uid if header else None, failure=outcome.code, reason=outcome.reason)


def _file(session: Session, store: Storage, actor: Actor, upload: intake.Upload,
          study: str | None) -> Stored | _Refusal:
    """The checks and the filing of one instance, left uncommitted; a refusal is returned, not raised."""
    if actor.organization_id is None or actor.role not in access.CAPTURING_ROLES:
        return _Refusal(None, NOT_AUTHORIZED, "only the referring office's staff and dentists may send images")
    try:
        upload.stream.seek(0)
        inspection: Inspection = inspect_image(upload.stream, upload.size)
    except (UnsupportedImageType, DamagedImage) as exc:
        return _Refusal(None, CANNOT_UNDERSTAND, str(exc))
    finally:
        upload.stream.seek(0)
    header = inspection.dicom
    if header is None:
        return _Refusal(None, CANNOT_UNDERSTAND, "the part is not a DICOM file")
    if not (header.sop_instance_uid and header.study_instance_uid and header.sop_class_uid):
        return _Refusal(header, CANNOT_UNDERSTAND, "the file has no SOP class, SOP instance or study instance UID")
    if study is not None and header.study_instance_uid != study:
        return _Refusal(header, STUDY_MISMATCH, "the file belongs to another study than the one it was sent to")
    number = (header.accession_number or "").strip()
    referral = _referral_by_accession(session, actor, number) if number else None
    if referral is None:
        return _Refusal(header, PROCESSING_FAILURE, "no referral of your practice has the file's accession number")
    existing = _duplicate(session, referral, header.sop_instance_uid)
    if existing is not None:
        if existing.sha256 == upload.sha256:
            return _stored(header, existing.id)
        return _Refusal(header, DUPLICATE_INSTANCE, "another file with the same SOP instance UID is already filed "
                        "in this referral", referral)
    organization = session.get(Organization, referral.organization_id)
    fields: dict[str, Any] = {
        # The kind as the DICOM listener decides it: by SOP class and modality.
        "kind": dicom_network.kind_for(header, None).value,
        "teeth": list(header.teeth) or list(referral.teeth or []),
        "reason": referral.reason,
        "captured_at": _captured_at(header, organization),
    }
    fields["captured_by_provider_id"], confirmed = _capturer(session, actor, referral)
    try:
        intake.require_uploadable(actor, referral)
        admission = intake.admit(session, actor, referral, fields, upload)
        image_id = new_id()
        original = intake.put_object(session, store, intake.image_key(referral, image_id), upload.stream,
                                     content_type=admission.inspection.content_type, size=upload.size,
                                     sha256=upload.sha256)
        image = intake.file_image(session, store, actor, admission, image_id=image_id, original=original,
                                  sop_instance_uid=header.sop_instance_uid, captured_by_confirmed=confirmed)
    except UnsupportedMediaType as exc:
        return _Refusal(header, CANNOT_UNDERSTAND, exc.message, referral)
    except DomainError as exc:
        # Not open for images, another patient's file, a periapical naming no tooth, a damaged file.
        return _Refusal(header, PROCESSING_FAILURE, exc.message, referral)
    return _stored(header, image.id)



def store_response(outcomes: Sequence[Stored], base_url: str) -> tuple[int, dicom_json.JsonDataset]:
    """The STOW-RS status and body: 200 all stored, 202 some, 409 none."""
    stored = [o for o in outcomes if o.failure is None]
    failed = [o for o in outcomes if o.failure is not None]
    body: dicom_json.JsonDataset = {}
    studies = {o.study_uid for o in stored}
    if len(studies) == 1 and stored:
        body["00081190"] = dicom_json.attribute("UR", f"{base_url}/studies/{stored[0].study_uid}")
    if failed:
        body["00081198"] = dicom_json.sequence(
            {"00081150": dicom_json.attribute("UI", o.sop_class_uid), "00081155": dicom_json.attribute("UI", o.sop_uid),
             "00081197": dicom_json.attribute("US", o.failure)} for o in failed)
    if stored:
        body["00081199"] = dicom_json.sequence(
            {"00081150": dicom_json.attribute("UI", o.sop_class_uid), "00081155": dicom_json.attribute("UI", o.sop_uid),
             "00081190": dicom_json.attribute(
                 "UR", f"{base_url}/studies/{o.study_uid}/series/{o.series_uid}/instances/{o.sop_uid}")}
            for o in stored)
    status = 200 if not failed else 409 if not stored else 202
    return status, body
