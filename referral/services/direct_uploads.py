"""Direct-to-storage uploads: a large file travels from the client straight to the object store.

1. ``start_upload`` hands out a presigned POST form for a server-made key under ``uploads/``; with
   the file's SHA-256 declared, the form pins it, and S3 refuses a body whose digest differs.
2. The client POSTs the form fields and the file to the store.
3. ``complete_upload`` copies the object to an image key and passes the copy through the same checks
   and the same code as a direct upload (``intake.admit`` and ``intake.file_image``) before the image
   row is committed. Where the store vouches for the copy's SHA-256 (S3 computes it as it copies) and
   it is the one declared, a DICOM file is read only as far as its header, in ranges; anything else
   is read once, spooled to a temporary file while it is hashed.
4. ``sweep_expired_uploads`` (run by the worker) clears the keys of forms that were never completed.

The copy is what keeps images write-once: until it expires, the form can be used again to replace
the object under its key, but nothing can write to the image key, and only the copy is checked.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, BinaryIO, cast

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from referral import unit_of_work
from referral.db import new_id, utcnow
from referral.errors import (
    Conflict,
    DomainError,
    Forbidden,
    NotFound,
    PayloadTooLarge,
    UnsupportedMediaType,
    ValidationFailed,
)
from referral.imaging.sniff import HEAD_BYTES, ImageFormat, sniff
from referral.models import IdempotencyRecord, Image, PendingUpload, PendingUploadStatus, Referral
from referral.services import access, audit, idempotency, intake
from referral.services.actor import Actor
from storage import (
    ObjectNotFound,
    PresignNotSupported,
    RangeReader,
    Storage,
    StorageError,
    StoredObject,
)

log = logging.getLogger(__name__)

# The real type is decided by sniffing the bytes at completion; the form only pins a harmless one,
# so the pending object can never be served as anything a browser would render.
FORM_CONTENT_TYPE = "application/octet-stream"
FORM_EXPIRES_IN = 900
# A POST the store accepted just before the form expired may still be arriving. Completion stays
# open this much longer, and the sweep waits as long before it deletes what was sent.
COMPLETION_GRACE = timedelta(minutes=10)
_CHUNK = 1024 * 1024
# The first ranged read of a verified DICOM file: most headers end well before it. A longer header is
# read on in windows that double each time.
HEADER_RANGE = 64 * 1024
# Refusals of the file itself: the upload is spent and what was sent is deleted. Refusals of the
# form fields (an unknown provider, say) leave it pending, to be completed again with fixed fields.
_FILE_REFUSALS = (PayloadTooLarge, UnsupportedMediaType, ValidationFailed)


@dataclass(frozen=True)
class StartedUpload:
    upload_id: uuid.UUID
    referral_id: uuid.UUID
    url: str
    form_fields: dict[str, str]
    expires_at: datetime
    complete_by: datetime
    max_bytes: int


@dataclass(frozen=True)
class DeclaredFile:
    """What the client says it sent; completion refuses the object unless both match."""

    size: int
    sha256: str
    filename: str | None = None


class _Refused(ValidationFailed):
    """A declared size or digest that the stored object does not match."""


@dataclass(frozen=True)
class Spooled:
    stream: BinaryIO
    size: int
    sha256: str


def pending_key(referral: Referral, upload_id: uuid.UUID) -> str:
    return f"uploads/{referral.organization_id}/{referral.id}/{upload_id}"


def start_upload(session: Session, store: Storage, actor: Actor, referral_id: uuid.UUID, *,
                 max_bytes: int, sha256: str | None = None) -> StartedUpload:
    """An upload form for one image of the referral, for the same people and referral states as a
    direct upload; with ``sha256`` (lowercase hex) the form takes only a file of that digest. Refused
    with 409 when the store cannot issue forms (local storage)."""
    referral = intake.uploadable_referral(session, actor, referral_id)
    _, user_id = access.membership(actor)
    upload_id = new_id()
    key = pending_key(referral, upload_id)
    try:
        form = store.presign_post(key, max_bytes=max_bytes, content_type=FORM_CONTENT_TYPE,
                                  expires_in=FORM_EXPIRES_IN, sha256=sha256)
    except PresignNotSupported:
        raise Conflict(
            "Direct uploads need S3 object storage, and this server keeps images in a local folder; send the "
            f"file in the request instead (POST /api/v1/referrals/{referral.id}/images)",
            {"storage": ["Direct-to-storage uploads are not available with local storage."]},
        ) from None
    session.add(PendingUpload(id=upload_id, referral_id=referral.id, uploaded_by_user_id=user_id,
                              storage_key=key, max_bytes=max_bytes, expires_at=form.expires_at))
    audit.record(session, actor, "image_upload.start", object_type="upload", object_id=upload_id,
                 organization_id=referral.organization_id, referral_id=referral.id,
                 details={"max_bytes": max_bytes, "expires_in": FORM_EXPIRES_IN,
                          "sha256_declared": sha256 is not None})
    session.commit()
    return StartedUpload(upload_id=upload_id, referral_id=referral.id, url=form.url, form_fields=form.fields,
                         expires_at=form.expires_at, complete_by=form.expires_at + COMPLETION_GRACE,
                         max_bytes=max_bytes)


def complete_upload(
    session: Session,
    store: Storage,
    actor: Actor,
    referral_id: uuid.UUID,
    upload_id: uuid.UUID,
    fields: dict[str, Any],
    declared: DeclaredFile,
    *,
    spool_dir: str | None = None,
    idempotent: idempotency.IdempotentRequest | None = None,
) -> Image | idempotency.Replay:
    """Turn what the form delivered into an image of the referral, with the checks of a direct upload.

    A file the checks refuse is deleted and the upload is marked failed; the error is the one a
    direct upload of that file gets. A store outage leaves the upload pending, to be completed again.
    """
    referral = access.get_referral(session, actor, referral_id)
    access.require_referring_side(actor, referral)
    pending = _own_pending_upload(session, actor, referral, upload_id)
    if _expire_if_due(session, store, pending):
        # Recorded now, apart from this request's work, which cannot go on.
        session.commit()
    claimed: IdempotencyRecord | None = None
    if idempotent is not None:
        outcome = idempotency.claim(session, idempotent)
        if isinstance(outcome, idempotency.Replay):
            return outcome
        claimed = outcome
    intake.require_uploadable(actor, referral)
    if pending.status != PendingUploadStatus.PENDING:
        raise _settled(pending)
    intake.check_fields_against_referral(session, actor, referral, fields)
    try:
        image = _file_upload(session, store, actor, referral, pending, fields, declared, spool_dir)
    except _FILE_REFUSALS as exc:
        # The image's work is undone (and the copy it made deleted with it); the refusal is what remains.
        session.rollback()
        _record_refusal(session, store, actor, pending, referral, exc)
        session.commit()
        raise
    if claimed is not None:
        idempotency.complete(claimed, 201, image.id)
    pending_key_to_clear = pending.storage_key
    unit_of_work.after_commit(session, lambda: _delete_quietly(store, pending_key_to_clear),
                              describe="clear a completed upload's key")
    session.commit()
    return image


def _file_upload(session: Session, store: Storage, actor: Actor, referral: Referral, pending: PendingUpload,
                 fields: dict[str, Any], declared: DeclaredFile, spool_dir: str | None) -> Image:
    """Copy what arrived to an image key and file it like a direct upload, in the caller's transaction.

    The size is read from the copy alone (the form may be used again until it expires, so only the copy's size
    means anything): an oversize or mis-declared file is copied, then refused and its copy deleted with the rest of
    the image's work. The form's size range keeps S3 from taking a file over the limit in the first place."""
    image_id = new_id()
    key = intake.image_key(referral, image_id)
    try:
        store.copy(pending.storage_key, key)
    except ObjectNotFound:
        raise _nothing_arrived(session, pending) from None
    intake.keep_if_committed(session, store, key)
    copied = store.head(key)
    _check_declared_size(copied.size, pending.max_bytes, declared)
    if copied.sha256 is not None:
        # The store computed this digest over the copy's bytes: a different one is refused outright.
        _check_declared_digest(copied.sha256, declared)
        with RangeReader(store, key, copied.size, first=HEADER_RANGE) as header:
            if sniff(header.read(HEAD_BYTES)) is ImageFormat.DICOM:
                image = _admit_verified_dicom(session, store, actor, referral, fields, declared, image_id, key,
                                              copied.sha256, copied.size, header)
                _settle_completed(session, actor, pending, referral, image)
                return image
    # Raster formats are checked by decoding them whole, and a store that vouches for no digest leaves the
    # hashing to us: either way the copy is read once.
    with spool_object(store, key, pending.max_bytes, spool_dir) as spooled:
        _check_declared_size(spooled.size, pending.max_bytes, declared)
        _check_declared_digest(spooled.sha256, declared)
        upload = intake.Upload(stream=spooled.stream, size=spooled.size, sha256=spooled.sha256,
                               filename=declared.filename)
        image = _admit_and_file(session, store, actor, referral, fields, upload, image_id, key)
    _settle_completed(session, actor, pending, referral, image)
    return image


def _admit_verified_dicom(session: Session, store: Storage, actor: Actor, referral: Referral,
                          fields: dict[str, Any], declared: DeclaredFile, image_id: uuid.UUID, key: str,
                          sha256: str, size: int, header: RangeReader) -> Image:
    """A DICOM file whose digest the store vouches for: the header checks read it in ranges, as far as the
    header goes; the pixel data is measured against the object's size, not read (the worker draws it)."""
    header.seek(0)
    upload = intake.Upload(stream=cast(BinaryIO, header), size=size, sha256=sha256, filename=declared.filename)
    try:
        image = _admit_and_file(session, store, actor, referral, fields, upload, image_id, key)
    except _FILE_REFUSALS:
        if header.failure is not None:
            # The DICOM reader reports any failure to read as a damaged file; the store's failure is the truth,
            # and the file must not be refused (and deleted) for it.
            raise header.failure from None
        raise
    log.info("direct upload checked from its header: %d of %d bytes read", header.fetched, size)
    return image


def _admit_and_file(session: Session, store: Storage, actor: Actor, referral: Referral, fields: dict[str, Any],
                    upload: intake.Upload, image_id: uuid.UUID, key: str) -> Image:
    # The bytes came straight to the store to spare the app servers: their previews are drawn by the worker.
    admission = intake.admit(session, actor, referral, fields, upload, drawn_by_worker=True)
    return intake.file_image(session, store, actor, admission, image_id=image_id,
                             original=StoredObject(key=key, size=upload.size, sha256=upload.sha256))


def sweep_expired_uploads(factory: sessionmaker[Session], store: Storage, *, now: datetime | None = None,
                          limit: int = 100) -> int:
    """Delete whatever expired upload forms left under their keys, and mark the ones never completed
    as expired. Every expired form is swept once, completed or not: it could have been used again
    after completion. Returns how many keys were cleared."""
    now = now or utcnow()
    swept = 0
    with factory() as session:
        due = session.scalars(
            sa.select(PendingUpload)
            .where(PendingUpload.swept_at.is_(None), PendingUpload.expires_at <= now - COMPLETION_GRACE)
            .order_by(PendingUpload.expires_at)
            .limit(limit)
        ).all()
        for pending in due:
            try:
                store.delete(pending.storage_key)
            except StorageError:
                log.warning("could not clear an expired upload's key; the next pass tries again")
                continue
            _mark_expired(session, pending)
            session.execute(sa.update(PendingUpload).where(PendingUpload.id == pending.id).values(swept_at=now))
            session.commit()
            swept += 1
    return swept


def _own_pending_upload(session: Session, actor: Actor, referral: Referral, upload_id: uuid.UUID) -> PendingUpload:
    pending = session.get(PendingUpload, upload_id)
    if pending is None or pending.referral_id != referral.id:
        raise NotFound("Upload not found")
    if pending.uploaded_by_user_id != access.membership(actor)[1]:
        raise Forbidden("Only the person who started this upload can complete it")
    return pending


def _expire_if_due(session: Session, store: Storage, pending: PendingUpload) -> bool:
    """Mark a form past its completion time expired (its key cleared once that is committed); whether it was."""
    if pending.status != PendingUploadStatus.PENDING or utcnow() <= pending.expires_at + COMPLETION_GRACE:
        return False
    _mark_expired(session, pending)
    key = pending.storage_key
    unit_of_work.after_commit(session, lambda: _delete_quietly(store, key), describe="clear an expired upload's key")
    session.expire(pending)
    return True


def _settled(pending: PendingUpload) -> Conflict:
    if pending.status == PendingUploadStatus.COMPLETED:
        return Conflict(f"This upload was already completed as image {pending.image_id}",
                        {"upload_id": ["Already completed."]})
    if pending.status == PendingUploadStatus.EXPIRED:
        return Conflict("This upload expired before it was completed; start a new upload and send the file again",
                        {"upload_id": ["Expired."]})
    return Conflict("This upload's file was refused when it was completed and has been deleted; start a new "
                    "upload", {"upload_id": ["Already refused."]})


def _nothing_arrived(session: Session, pending: PendingUpload) -> Conflict:
    # Another request may have completed it (and cleared its key) meanwhile.
    session.refresh(pending)
    if pending.status != PendingUploadStatus.PENDING:
        return _settled(pending)
    return Conflict("No file has arrived for this upload yet: POST the form fields and then the file to the "
                    "upload url, and complete it afterwards", {"upload_id": ["Nothing uploaded yet."]})


def _check_declared_size(size: int, limit: int, declared: DeclaredFile) -> None:
    if size > limit:
        raise PayloadTooLarge(f"The file is larger than the {limit} byte limit; nothing was stored.",
                              {"size": [f"At most {limit} bytes."]})
    if size != declared.size:
        raise _Refused(
            f"The uploaded file is {size} bytes, not the {declared.size} declared; it was deleted and nothing "
            "was stored. Start a new upload and send the file again.",
            {"size": [f"The uploaded file is {size} bytes."]},
        )


def _check_declared_digest(sha256: str, declared: DeclaredFile) -> None:
    if sha256 != declared.sha256:
        raise _Refused(
            "The uploaded file's SHA-256 does not match the sha256 declared; it was deleted and nothing "
            "was stored. Start a new upload and send the file again.",
            {"sha256": [f"The uploaded file's SHA-256 is {sha256}."]},
        )


@contextlib.contextmanager
def spool_object(store: Storage, key: str, limit: int, directory: str | None) -> Iterator[Spooled]:
    """The object's bytes in an unnamed temporary file, hashed as they are read: one read of the
    object, and memory that does not grow with its size."""
    with tempfile.TemporaryFile(dir=directory) as spool:
        digest = hashlib.sha256()
        size = 0
        with store.open(key) as source:
            while chunk := source.read(_CHUNK):
                size += len(chunk)
                if size > limit:
                    raise PayloadTooLarge(f"The file is larger than the {limit} byte limit; nothing was stored.",
                                          {"size": [f"At most {limit} bytes."]})
                digest.update(chunk)
                spool.write(chunk)
        spool.seek(0)
        yield Spooled(stream=cast(BinaryIO, spool), size=size, sha256=digest.hexdigest())


def _settle_completed(session: Session, actor: Actor, pending: PendingUpload, referral: Referral,
                      image: Image) -> None:
    # Conditional, in the image's transaction: of two completions racing, exactly one commits.
    claimed = session.execute(
        sa.update(PendingUpload)
        .where(PendingUpload.id == pending.id, PendingUpload.status == PendingUploadStatus.PENDING)
        .values(status=PendingUploadStatus.COMPLETED, image_id=image.id, completed_at=utcnow())
    ).rowcount  # type: ignore[attr-defined]
    if claimed != 1:
        raise Conflict("This upload was completed or expired while this request was checking it",
                       {"upload_id": ["No longer pending."]})
    audit.record(session, actor, "image_upload.complete", object_type="upload", object_id=pending.id,
                 organization_id=referral.organization_id, referral_id=referral.id,
                 details={"image_id": str(image.id)})


def _reason(exc: DomainError) -> str:
    # A code for operators, never the message: messages about a file may describe its contents.
    if isinstance(exc, PayloadTooLarge):
        return "too_large"
    if isinstance(exc, UnsupportedMediaType):
        return "unsupported_type"
    if isinstance(exc, _Refused):
        return "checksum_mismatch" if exc.errors and "sha256" in exc.errors else "size_mismatch"
    return "file_refused"


def _record_refusal(session: Session, store: Storage, actor: Actor, pending: PendingUpload, referral: Referral,
                    exc: DomainError) -> None:
    """Mark the upload failed and clear what was sent, once that is committed; unless another request
    settled it meanwhile, in which case what that one decided stands."""
    reason = _reason(exc)
    refused = session.execute(
        sa.update(PendingUpload)
        .where(PendingUpload.id == pending.id, PendingUpload.status == PendingUploadStatus.PENDING)
        .values(status=PendingUploadStatus.FAILED, failure_reason=reason, completed_at=utcnow())
    ).rowcount  # type: ignore[attr-defined]
    if refused != 1:
        return
    audit.record(session, actor, "image_upload.complete", object_type="upload", object_id=pending.id,
                 organization_id=referral.organization_id, referral_id=referral.id, outcome="refused",
                 details={"reason": reason, "status": exc.status_code})
    key = pending.storage_key
    unit_of_work.after_commit(session, lambda: _delete_quietly(store, key), describe="clear a refused upload's key")


def _mark_expired(session: Session, pending: PendingUpload) -> None:
    session.execute(
        sa.update(PendingUpload)
        .where(PendingUpload.id == pending.id, PendingUpload.status == PendingUploadStatus.PENDING)
        .values(status=PendingUploadStatus.EXPIRED, failure_reason="expired")
    )


def _delete_quietly(store: Storage, key: str) -> None:
    try:
        store.delete(key)
    except StorageError:
        # The worker's sweep clears upload keys once their form has expired.
        log.error("could not remove an object after a direct upload; it is left for the sweep")
