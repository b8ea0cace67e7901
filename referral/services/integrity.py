"""Storage integrity: do the rows and the objects in the store agree?

Every object the database names must be in the store with the bytes it had at intake, and every object in
the store must be named by a row. Intake writes objects before it commits their row and deletes them if the
commit fails, but a crash, or a store that refuses the delete, can still leave an object without a row (an
orphan); a lost or altered object is the opposite failure. ``check_storage`` finds both:

- orphans: listed objects no row names. With ``repair`` those older than the grace period are deleted (a
  younger one may belong to an upload whose commit is still in flight), each with an audit row;
- missing objects: keys a row names that the store does not have. With ``repair`` an image whose original
  is missing is flagged (``images.integrity_problem``), so its metadata says so and ``/content`` answers 503
  instead of failing;
- checksum mismatches: originals whose SHA-256, recomputed while streaming, differs from the one recorded
  at intake. Flagged the same way.

A flag is cleared by a later repair run that finds the original intact again (restored from a backup).

Names: an image names its original, preview and thumbnail until its objects are removed
(``objects_removed_at``); a deleted image whose removal is still pending may or may not still have them,
so neither answer is a problem. A referral names its scanned consent form. A direct-upload form names its
``uploads/`` key until the worker has swept it, whether or not the client has sent anything yet. A resumable
upload names its ``tus/`` key, and the part and tail objects beside it, until the worker has swept it.

A repair that would delete more than half of the store (and over 20 objects) deletes nothing and fails:
that is what a server pointed at the wrong or an emptied database would see, and the objects are the
images themselves. ``--allow-mass-removal`` overrides it once the operator has looked.

Every kind of object the server writes must be named in ``_inventory``, or the sweep deletes it as an
orphan once it is older than the grace period.

The store is listed before the rows are read, so an upload committed in between is seen with its row; an
object written after the listing is not listed at all. Keys found missing are looked up once more before
they are reported, and an orphan is looked up once more before it is deleted.
"""

from __future__ import annotations

import hashlib
import logging
import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.engine import CursorResult
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from referral.db import utcnow
from referral.models import Image, MaintenanceRun, PendingUpload, Referral, TusUpload
from referral.models.images import IntegrityProblem
from referral.services import audit
from referral.services.actor import Actor
from referral.services.intake import PREVIEW_SUFFIX, THUMBNAIL_SUFFIX
from storage import ObjectNotFound, Storage

log = logging.getLogger(__name__)

SWEEP_JOB = "storage_sweep"
# More old orphans than this, making up over half of the store, and a repair removes none of them.
MASS_REMOVAL_FLOOR = 20
# The report lists problems one by one up to this many; the counts are always complete.
MAX_LISTED_PROBLEMS = 1000
_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class _Owner:
    """What names a key: which object of which image, or a referral's consent form."""

    role: str  # original, preview, thumbnail or consent_form
    organization_id: uuid.UUID
    image_id: uuid.UUID | None = None
    referral_id: uuid.UUID | None = None


@dataclass(frozen=True)
class _Original:
    image_id: uuid.UUID
    organization_id: uuid.UUID
    referral_id: uuid.UUID
    key: str
    sha256: str
    size: int
    problem: str | None


@dataclass
class _Inventory:
    expected: dict[str, _Owner] = field(default_factory=dict)  # must be in the store
    tolerated: set[str] = field(default_factory=set)  # may be in the store
    originals: list[_Original] = field(default_factory=list)  # of images whose bytes are kept
    tus_uploads: set[str] = field(default_factory=set)  # keys of resumable uploads not swept yet


@dataclass
class IntegrityReport:
    """What one check found and, with ``repair``, what it changed."""

    objects: int = 0
    orphan_objects: int = 0
    missing_objects: int = 0
    checksum_mismatches: int = 0
    checksums_verified: int = 0
    orphans_in_grace: int = 0
    orphans_removed: int = 0
    orphan_removal_refused: bool = False
    images_flagged: int = 0
    images_cleared: int = 0
    problems: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Nothing the database names is lost or altered (orphans are untidy, not a loss), and no repair was
        refused."""
        return self.missing_objects == 0 and self.checksum_mismatches == 0 and not self.orphan_removal_refused

    def note(self, problem: str, key: str, **ids: uuid.UUID | str | bool | None) -> None:
        if len(self.problems) < MAX_LISTED_PROBLEMS:
            entry: dict[str, Any] = {"problem": problem, "key": key}
            entry.update({name: str(value) if isinstance(value, uuid.UUID) else value
                          for name, value in ids.items() if value is not None})
            self.problems.append(entry)

    def as_dict(self, *, repair: bool) -> dict[str, Any]:
        counts: dict[str, Any] = {
            "orphan_objects": self.orphan_objects,
            "missing_objects": self.missing_objects,
            "checksum_mismatches": self.checksum_mismatches,
            "objects": self.objects,
            "checksums_verified": self.checksums_verified,
            "orphans_in_grace": self.orphans_in_grace,
        }
        if repair:
            counts.update(orphans_removed=self.orphans_removed, orphan_removal_refused=self.orphan_removal_refused,
                          images_flagged=self.images_flagged, images_cleared=self.images_cleared)
        counts["problems"] = self.problems
        return counts


def check_storage(
    factory: sessionmaker[Session],
    store: Storage,
    *,
    checksums: bool = True,
    repair: bool = False,
    grace: timedelta = timedelta(hours=1),
    allow_mass_removal: bool = False,
    now: datetime | None = None,
) -> IntegrityReport:
    """Compare the store with the rows that name its objects; with ``repair``, delete orphans older than
    ``grace`` and flag (or clear) images whose original is missing or altered. ``checksums=False`` skips
    re-reading the originals, except those flagged earlier, which are verified before a flag is cleared.
    Unless ``allow_mass_removal``, a repair that would delete most of the store deletes nothing."""
    now = now or utcnow()
    report = IntegrityReport()
    listed = set(store.keys())
    report.objects = len(listed)
    with factory() as session:
        inventory = _inventory(session)
    unnamed = {key for key in listed - inventory.expected.keys() - inventory.tolerated
               if tus_base(key) not in inventory.tus_uploads}
    aged = _ages(store, sorted(unnamed), now)
    report.orphan_objects = len(aged)
    report.orphans_in_grace = sum(1 for _, age in aged if age < grace)
    if repair and not allow_mass_removal and _looks_like_the_wrong_database(
            report.orphan_objects - report.orphans_in_grace, report.objects):
        report.orphan_removal_refused = True
        log.error("storage check: most of the store looks orphaned, which is more likely a wrong DATABASE_URL "
                  "or a restored database than real orphans; nothing was removed")
    for key, age in aged:
        # Each removal is a transaction of its own, its row check read just before the object is deleted.
        removed = (repair and not report.orphan_removal_refused and age >= grace
                   and not _still_named(factory, key))
        if removed:
            store.delete(key)
            with factory() as session:
                _audit_orphan_removal(session, key, age)
                session.commit()
        report.orphans_removed += removed
        report.note("orphan", key, in_grace=age < grace, removed=removed)

    missing = {key for key in inventory.expected.keys() - listed if _really_missing(factory, store, key)}
    for key in sorted(missing):
        owner = inventory.expected[key]
        report.missing_objects += 1
        report.note(IntegrityProblem.MISSING.value, key, object=owner.role, image_id=owner.image_id,
                    referral_id=owner.referral_id)
        log.error("storage check: the %s of %s %s is missing from the store", owner.role,
                  "image" if owner.image_id else "referral", owner.image_id or owner.referral_id)

    for original in inventory.originals:
        found = _examine(store, report, original, missing=original.key in missing, checksums=checksums)
        problem = None if found == "intact" else found
        if repair and found != "unchecked" and problem != original.problem:
            # Under a row lock, in a transaction of its own.
            with factory() as session:
                if _flag(session, report, original, problem, now):
                    session.commit()
    return report


def _inventory(session: Session) -> _Inventory:
    inventory = _Inventory()
    rows = session.execute(sa.select(
        Image.id, Image.organization_id, Image.referral_id, Image.storage_key, Image.preview_key,
        Image.thumbnail_key, Image.sha256, Image.size, Image.deleted_at, Image.integrity_problem,
    ).where(Image.objects_removed_at.is_(None)))
    for image_id, organization_id, referral_id, key, preview, thumbnail, sha256, size, deleted_at, problem in rows:
        named = {"original": key, "preview": preview, "thumbnail": thumbnail}
        if deleted_at is not None:
            # Tombstoned, removal pending: `retention apply` deletes these; absent is fine.
            inventory.tolerated.update(k for k in named.values() if k)
            continue
        for role, named_key in named.items():
            if named_key:
                inventory.expected[named_key] = _Owner(role, organization_id, image_id=image_id,
                                                       referral_id=referral_id)
        inventory.originals.append(_Original(image_id, organization_id, referral_id, key, sha256, size, problem))
    for referral_id, organization_id, form_key in session.execute(
            sa.select(Referral.id, Referral.organization_id, Referral.consent_form_key)
            .where(Referral.consent_form_key.is_not(None))):
        if form_key:
            inventory.expected[form_key] = _Owner("consent_form", organization_id, referral_id=referral_id)
    # A form not swept yet may still be used, or have been used, whatever its status says.
    inventory.tolerated.update(session.scalars(
        sa.select(PendingUpload.storage_key).where(PendingUpload.swept_at.is_(None))))
    # So may a resumable upload's joined object, parts and tail, until the upload is swept.
    inventory.tus_uploads.update(session.scalars(
        sa.select(TusUpload.storage_key).where(TusUpload.swept_at.is_(None))))
    return inventory


def tus_base(key: str) -> str:
    """The upload key a resumable upload's object belongs to: its part and tail objects carry a suffix."""
    if not key.startswith("tus/"):
        return key
    return re.sub(r"\.(tail|part)-[^/]*$", "", key)


def _still_named(factory: sessionmaker[Session], key: str, *, live_only: bool = False) -> bool:
    """Whether a row names ``key`` now (indexed lookups only: a rendition's key is its original's plus a
    suffix). ``live_only`` leaves out deleted images whose objects are still to be removed. Read in a session
    of its own, closed before the store is called."""
    originals = {key, key.removesuffix(PREVIEW_SUFFIX), key.removesuffix(THUMBNAIL_SUFFIX)}
    images = sa.select(Image.id).where(Image.storage_key.in_(originals), Image.objects_removed_at.is_(None))
    queries = (
        images.where(Image.deleted_at.is_(None)) if live_only else images,
        sa.select(PendingUpload.id).where(PendingUpload.storage_key == key, PendingUpload.swept_at.is_(None)),
        sa.select(Referral.id).where(Referral.consent_form_key == key),
        sa.select(TusUpload.id).where(TusUpload.storage_key == tus_base(key), TusUpload.swept_at.is_(None)),
    )
    with factory() as session:
        return any(session.execute(query.limit(1)).first() is not None for query in queries)


def _really_missing(factory: sessionmaker[Session], store: Storage, key: str) -> bool:
    # Not missing if written after the listing, or no longer named (an image deleted or a consent form
    # replaced meanwhile).
    return _still_named(factory, key, live_only=True) and not store.exists(key)


def _organization_of(key: str) -> uuid.UUID | None:
    """Keys are ``<kind>/<organization>/<referral>/<id>...``: the owning practice, for its audit trail."""
    parts = key.split("/")
    try:
        return uuid.UUID(parts[1]) if len(parts) > 1 else None
    except ValueError:
        return None


def _ages(store: Storage, keys: list[str], now: datetime) -> list[tuple[str, timedelta]]:
    aged = []
    for key in keys:
        try:
            aged.append((key, now - store.last_modified(key)))
        except ObjectNotFound:
            continue  # deleted since the listing
    return aged


def _looks_like_the_wrong_database(old_orphans: int, objects: int) -> bool:
    """A store whose objects are mostly unnamed is far likelier to be paired with the wrong (or an emptied, or
    restored) database than to be full of debris: removing them would destroy the images themselves."""
    return old_orphans > MASS_REMOVAL_FLOOR and old_orphans * 2 > objects


def _audit_orphan_removal(session: Session, key: str, age: timedelta) -> None:
    minutes = int(age.total_seconds() // 60)
    audit.record(session, Actor.operator(), "storage.orphan_remove", object_type="stored_object", object_id=None,
                 organization_id=_organization_of(key), details={"key": key, "age_minutes": minutes})
    log.warning("storage check removed an object no row names (%d minutes old)", minutes)


def _sha256_of(store: Storage, key: str) -> tuple[str, int] | None:
    """Streamed in bounded chunks; None when the object is gone."""
    digest = hashlib.sha256()
    size = 0
    try:
        with store.open(key) as stream:
            while chunk := stream.read(_CHUNK):
                digest.update(chunk)
                size += len(chunk)
    except ObjectNotFound:
        return None
    return digest.hexdigest(), size


def _examine(store: Storage, report: IntegrityReport, original: _Original, *, missing: bool,
             checksums: bool) -> str:
    """``missing``, ``checksum_mismatch``, ``intact`` (verified), or ``unchecked``."""
    if missing:
        return IntegrityProblem.MISSING.value
    if not checksums and original.problem is None:
        return "unchecked"
    found = _sha256_of(store, original.key)
    if found is None:
        # Removed after the listing: tombstoned meanwhile (the flag step re-reads the row), or lost.
        return "unchecked"
    report.checksums_verified += 1
    sha256, size = found
    if sha256 == original.sha256 and size == original.size:
        return "intact"
    report.checksum_mismatches += 1
    report.note(IntegrityProblem.CHECKSUM_MISMATCH.value, original.key, object="original",
                image_id=original.image_id, referral_id=original.referral_id)
    log.error("storage check: the original of image %s does not match its recorded SHA-256", original.image_id)
    return IntegrityProblem.CHECKSUM_MISMATCH.value


def _flag(session: Session, report: IntegrityReport, original: _Original, problem: str | None,
          now: datetime) -> bool:
    """Record ``problem`` (None: intact) on the image if that changes anything, in the caller's transaction;
    whether it did."""
    image = session.get(Image, original.image_id, with_for_update=True)
    if image is None or image.is_deleted or image.integrity_problem == problem:
        return False
    previous = image.integrity_problem
    image.integrity_problem = problem
    image.integrity_problem_since = now if problem is not None else None
    if problem is None:
        report.images_cleared += 1
        action, details = "image.integrity_restored", {"previous": previous}
    else:
        report.images_flagged += 1
        action, details = "image.integrity_flag", {"problem": problem}
    audit.record(session, Actor.operator(), action, object_type="image", object_id=image.id,
                 organization_id=image.organization_id, referral_id=image.referral_id, details=details)
    return True


# -- the worker's periodic sweep ------------------------------------------------------------------------------


def claim_periodic_run(factory: sessionmaker[Session], job: str, every: timedelta,
                       now: datetime | None = None) -> bool:
    """Whether this process should run ``job`` now: at most once per ``every`` across all workers. The
    claim is a conditional update, so of workers asking at once exactly one wins."""
    now = now or utcnow()
    with factory() as session:
        claimed = cast(CursorResult[Any], session.execute(
            sa.update(MaintenanceRun)
            .where(MaintenanceRun.name == job, MaintenanceRun.last_started_at <= now - every)
            .values(last_started_at=now)
        )).rowcount
        if claimed == 1:
            session.commit()
            return True
        if session.get(MaintenanceRun, job) is not None:
            session.rollback()
            return False
        session.add(MaintenanceRun(name=job, last_started_at=now))
        try:
            session.commit()
        except IntegrityError:
            session.rollback()
            return False
        return True


def sweep(factory: sessionmaker[Session], store: Storage, *, every: timedelta, grace: timedelta,
          now: datetime | None = None) -> IntegrityReport | None:
    """The worker's pass: a repairing check without checksums, when one is due. None when it is not."""
    if not claim_periodic_run(factory, SWEEP_JOB, every, now):
        return None
    return check_storage(factory, store, checksums=False, repair=True, grace=grace, now=now)
