"""Resumable uploads (the tus 1.0 protocol): one image whose bytes arrive in chunks, over as many requests
(and broken connections) as it takes.

1. ``create_upload`` checks the image's fields (sent in ``Upload-Metadata``) and the declared length up front,
   so a client learns of a mistake before it sends a byte, and records the upload.
2. ``append`` takes each chunk at the offset the server holds. Whole parts go on to a multipart upload of the
   store under a ``tus/`` key (S3's own multipart upload: parts are not objects, and every part but the last
   is at least 5 MiB); the bytes after the last whole part wait in a tail object until the next chunk fills
   a part. Memory stays bounded: chunks and parts pass through temporary files.
3. When the last byte arrives the parts are joined under the ``tus/`` key, read back once (spooled while it is
   hashed) and filed through the same intake as any upload (``intake.admit`` and ``intake.file_image``), in
   the transaction that marks the upload completed: the image is created exactly once.
4. ``terminate`` gives an upload up; ``sweep_expired_uploads`` (run by the worker) clears the parts and
   objects of uploads that expired or were settled.

The bytes never sit under an image key, and the ``tus/`` objects are named by their upload's row until it is
swept, so the storage check leaves them alone meanwhile.
"""

from __future__ import annotations

import logging
import tempfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import IO, Any, BinaryIO, cast

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from referral import unit_of_work
from referral.db import new_id, utcnow
from referral.errors import (
    ChecksumMismatch,
    Conflict,
    DomainError,
    Forbidden,
    Gone,
    NotFound,
    PayloadTooLarge,
    ServiceUnavailable,
    UnsupportedMediaType,
    ValidationFailed,
)
from referral.models import Image, Referral, TusUpload, TusUploadStatus
from referral.services import access, audit, direct_uploads, intake
from referral.services.actor import Actor
from storage import Storage, StorageError

log = logging.getLogger(__name__)

KEY_PREFIX = "tus/"
_COPY_CHUNK = 1024 * 1024
# Refusals of the assembled file (or of the fields it was to be filed with): the upload is spent.
_FILE_REFUSALS = (PayloadTooLarge, UnsupportedMediaType, ValidationFailed)

# Turns the Upload-Metadata form fields (strings, as sent) into the typed fields of an image upload form;
# raises ValidationFailed. The HTTP layer owns the form's schema and hands this in.
FieldParser = Callable[[dict[str, str]], dict[str, Any]]


@dataclass(frozen=True)
class Chunk:
    """One PATCH body, already spooled to a temporary file. ``checksum_matches`` is None when the client
    sent no Upload-Checksum."""

    stream: BinaryIO
    size: int
    checksum_matches: bool | None = None


@dataclass(frozen=True)
class Limits:
    max_bytes: int
    part_size: int
    expiry: timedelta
    spool_dir: str | None = None


def upload_key(referral: Referral, upload_id: uuid.UUID) -> str:
    return f"{KEY_PREFIX}{referral.organization_id}/{referral.id}/{upload_id}"


def check_referral(session: Session, actor: Actor, referral_id: uuid.UUID) -> Referral:
    """The referral, when the actor may see it at all (404 otherwise, audited as denied). Read only: the HTTP
    layer calls it before it looks at the protocol headers, so an outsider learns nothing from them."""
    return access.get_referral(session, actor, referral_id)


def create_upload(session: Session, actor: Actor, referral_id: uuid.UUID, *, length: int, fields: dict[str, str],
                  filename: str | None, parse: FieldParser, limits: Limits) -> TusUpload:
    """Record a new upload of ``length`` bytes, once its fields pass every check that does not need the file:
    the form's rules, the provider and retaken image belonging to the case, and a typed capture time."""
    referral = intake.uploadable_referral(session, actor, referral_id)
    if length > limits.max_bytes:
        raise PayloadTooLarge(f"The file is larger than the {limits.max_bytes} byte limit; nothing was stored.",
                              {"Upload-Length": [f"At most {limits.max_bytes} bytes."]})
    if length < 1:
        raise ValidationFailed("An empty file is not an image", {"Upload-Length": ["Must be at least 1 byte."]})
    typed = parse(fields)
    intake.check_fields_against_referral(session, actor, referral, typed)
    if typed.get("captured_at") is not None:
        intake.resolve_capture_time(session, referral, typed, None)
    _, user_id = access.membership(actor)
    upload_id = new_id()
    now = utcnow()
    row = TusUpload(id=upload_id, referral_id=referral.id, created_by_user_id=user_id, upload_length=length,
                    upload_offset=0, fields=dict(fields), filename=intake.safe_filename(filename),
                    storage_key=upload_key(referral, upload_id), part_size=limits.part_size, parts=[],
                    status=TusUploadStatus.ACTIVE, created_at=now, updated_at=now, expires_at=now + limits.expiry)
    session.add(row)
    audit.record(session, actor, "tus_upload.create", object_type="upload", object_id=upload_id,
                 organization_id=referral.organization_id, referral_id=referral.id,
                 details={"length": length, "kind": str(typed.get("kind"))})
    session.commit()
    return row


def current_state(session: Session, actor: Actor, referral_id: uuid.UUID, upload_id: uuid.UUID) -> TusUpload:
    """How far the upload has arrived (HEAD): its offset and length, and the image once completed. No PHI is
    read, so nothing is audited."""
    referral = access.get_referral(session, actor, referral_id)
    row = _own_upload(session, actor, referral, upload_id)
    _require_not_given_up(row)
    return row


def append(session: Session, store: Storage, actor: Actor, referral_id: uuid.UUID, upload_id: uuid.UUID, *,
           offset: int, chunk: Chunk, parse: FieldParser, limits: Limits) -> TusUpload:
    """Add one chunk at ``offset`` (409 unless it is the offset the server holds; 460, keeping nothing, when
    its checksum does not match). With the last byte, the file is filed as an image (``row.image_id``)."""
    referral = access.get_referral(session, actor, referral_id)
    row = _own_upload(session, actor, referral, upload_id, lock=True)
    _require_not_given_up(row)
    if offset != row.upload_offset:
        raise Conflict(f"Upload-Offset {offset} is not where this upload stands: resume from {row.upload_offset}",
                       {"Upload-Offset": [f"The server holds {row.upload_offset} bytes."]})
    if chunk.checksum_matches is False:
        raise ChecksumMismatch("The chunk's bytes do not match its Upload-Checksum; it was discarded. Send it "
                               "again from the same offset.", {"Upload-Checksum": ["Mismatch."]})
    remaining = row.upload_length - row.upload_offset
    if chunk.size > remaining:
        raise PayloadTooLarge(f"The chunk runs past the declared Upload-Length: {remaining} bytes remain",
                              {"Upload-Length": [f"{remaining} bytes remain."]})
    if chunk.size == 0:
        return row
    intake.require_uploadable(actor, referral)
    new_offset = offset + chunk.size
    final = new_offset == row.upload_length
    old_tail = row.tail_key
    multipart_id, parts, new_tail = _store_chunk(session, store, row, chunk, final, limits.spool_dir)
    now = utcnow()
    # Conditional, so that of two chunks racing for the same offset exactly one counts (PostgreSQL also locks
    # the row above; SQLite serialises writers).
    moved = session.execute(
        sa.update(TusUpload)
        .where(TusUpload.id == row.id, TusUpload.upload_offset == offset,
               TusUpload.status == TusUploadStatus.ACTIVE)
        .values(upload_offset=new_offset, multipart_id=multipart_id, parts=parts, tail_key=new_tail,
                updated_at=now, expires_at=now + limits.expiry)
    ).rowcount  # type: ignore[attr-defined]
    if moved != 1:
        raise Conflict("Another request moved this upload on meanwhile; ask where it stands (HEAD) and resume",
                       {"Upload-Offset": ["Changed meanwhile."]})
    if old_tail is not None:
        unit_of_work.after_commit(session, lambda: _delete_quietly(store, old_tail),
                                  describe="clear a resumable upload's spent tail")
    audit.record(session, actor, "tus_upload.append", object_type="upload", object_id=row.id,
                 organization_id=referral.organization_id, referral_id=referral.id,
                 details={"offset": offset, "size": chunk.size})
    if not final:
        session.commit()
        session.refresh(row)
        return row
    # Once the parts are joined there is no going back: whatever goes wrong then spends the upload.
    _join(session, store, row, multipart_id, parts)
    try:
        image = _file_image(session, store, actor, referral, row, parse, limits)
    except (DomainError, StorageError) as exc:
        # The image's work (and its objects) is undone; the refusal is what remains.
        session.rollback()
        _record_failure(session, store, actor, referral, upload_id, exc)
        session.commit()
        raise
    _settle_completed(session, actor, referral, row, image)
    session.commit()
    session.refresh(row)
    return row


def terminate(session: Session, store: Storage, actor: Actor, referral_id: uuid.UUID, upload_id: uuid.UUID) -> None:
    """Give the upload up: what was sent is discarded and later requests for it get 410."""
    referral = access.get_referral(session, actor, referral_id)
    row = _own_upload(session, actor, referral, upload_id, lock=True)
    _require_not_given_up(row)
    if row.status == TusUploadStatus.COMPLETED:
        raise Conflict(f"This upload was already filed as image {row.image_id}; delete the image instead",
                       {"upload_id": ["Already completed."]})
    session.execute(sa.update(TusUpload).where(TusUpload.id == row.id, TusUpload.status == TusUploadStatus.ACTIVE)
                    .values(status=TusUploadStatus.TERMINATED, failure_reason="terminated", completed_at=utcnow(),
                            updated_at=utcnow()))
    audit.record(session, actor, "tus_upload.terminate", object_type="upload", object_id=row.id,
                 organization_id=referral.organization_id, referral_id=referral.id,
                 details={"offset": row.upload_offset})
    _clear_after_commit(session, store, row)
    session.commit()


def sweep_expired_uploads(factory: sessionmaker[Session], store: Storage, *, now: datetime | None = None,
                          limit: int = 100) -> int:
    """Clear the parts and objects of uploads that expired unfinished (marking them expired) or were settled
    (completed, refused, terminated): each once. Returns how many were swept."""
    now = now or utcnow()
    swept = 0
    with factory() as session:
        due = session.scalars(
            sa.select(TusUpload)
            .where(TusUpload.swept_at.is_(None),
                   sa.or_(TusUpload.status != TusUploadStatus.ACTIVE, TusUpload.expires_at <= now))
            .order_by(TusUpload.expires_at)
            .limit(limit)
        ).all()
        for row in due:
            try:
                _clear(store, row.storage_key, row.multipart_id if row.status != TusUploadStatus.COMPLETED else None,
                       row.tail_key)
            except StorageError:
                log.warning("could not clear a resumable upload's objects; the next pass tries again")
                continue
            session.execute(sa.update(TusUpload)
                            .where(TusUpload.id == row.id, TusUpload.status == TusUploadStatus.ACTIVE)
                            .values(status=TusUploadStatus.EXPIRED, failure_reason="expired", updated_at=now))
            session.execute(sa.update(TusUpload).where(TusUpload.id == row.id).values(swept_at=now))
            session.commit()
            swept += 1
    return swept


# -- helpers ---------------------------------------------------------------------------------------------------


def _own_upload(session: Session, actor: Actor, referral: Referral, upload_id: uuid.UUID, *,
                lock: bool = False) -> TusUpload:
    access.require_referring_side(actor, referral)
    row = session.get(TusUpload, upload_id, with_for_update=lock, populate_existing=lock)
    if row is None or row.referral_id != referral.id:
        raise NotFound("Upload not found")
    if row.created_by_user_id != access.membership(actor)[1]:
        raise Forbidden("Only the person who started this upload can continue it")
    return row


def _require_not_given_up(row: TusUpload) -> None:
    if row.status == TusUploadStatus.ACTIVE and utcnow() > row.expires_at:
        raise Gone("This upload expired before it was finished; start a new upload and send the file again",
                   {"upload_id": ["Expired."]})
    messages = {
        TusUploadStatus.EXPIRED: "This upload expired before it was finished; start a new upload",
        TusUploadStatus.TERMINATED: "This upload was terminated; start a new upload",
        TusUploadStatus.FAILED: "This upload's file was refused when its last byte arrived and has been deleted; "
                                "start a new upload",
    }
    if row.status in messages:
        raise Gone(messages[row.status], {"upload_id": [row.status.value.capitalize() + "."]})


def _copy(source: IO[bytes], target: IO[bytes], size: int | None = None) -> int:
    copied = 0
    while size is None or copied < size:
        data = source.read(_COPY_CHUNK if size is None else min(_COPY_CHUNK, size - copied))
        if not data:
            break
        target.write(data)
        copied += len(data)
    return copied


def _store_chunk(session: Session, store: Storage, row: TusUpload, chunk: Chunk, final: bool,
                 spool_dir: str | None) -> tuple[str | None, list[Any], str | None]:
    """Send on whole parts of (tail + chunk), and the last part with the last byte; keep the rest as the new
    tail. Returns the multipart id, every part sent so far and the new tail's key."""
    multipart_id, parts, new_tail = row.multipart_id, [list(p) for p in row.parts], None
    with tempfile.TemporaryFile(dir=spool_dir) as combined:
        if row.tail_key is not None:
            with store.open(row.tail_key) as tail:
                _copy(tail, combined)
        chunk.stream.seek(0)
        _copy(chunk.stream, combined)
        total = combined.tell()
        combined.seek(0)
        sizes = [row.part_size] * (total // row.part_size)
        rest = total - sum(sizes)
        if final and rest:
            sizes.append(rest)
            rest = 0
        if sizes and multipart_id is None:
            multipart_id = store.start_multipart(row.storage_key)
        for size in sizes:
            number = len(parts) + 1
            with tempfile.TemporaryFile(dir=spool_dir) as part:
                _copy(combined, part, size)
                part.seek(0)
                parts.append([number, store.put_part(row.storage_key, cast(str, multipart_id), number,
                                                     cast(BinaryIO, part), size=size)])
        if rest:
            new_tail = f"{row.storage_key}.tail-{row.upload_offset + chunk.size}"
            store.delete(new_tail)  # left by an earlier attempt whose removal failed
            with tempfile.TemporaryFile(dir=spool_dir) as leftover:
                _copy(combined, leftover, rest)
                intake.put_object(session, store, new_tail, cast(BinaryIO, leftover),
                                  content_type="application/octet-stream", size=rest)
    return multipart_id, parts, new_tail


def _join(session: Session, store: Storage, row: TusUpload, multipart_id: str | None, parts: list[Any]) -> None:
    """The last byte arrived: join the parts under the upload's key. The joined object is only ever an
    intermediate, deleted however the transaction ends."""
    key = row.storage_key
    store.complete_multipart(key, cast(str, multipart_id), [(int(n), str(tag)) for n, tag in parts])
    unit_of_work.on_rollback(session, lambda: _delete_quietly(store, key), describe="clear a joined upload")
    unit_of_work.after_commit(session, lambda: _delete_quietly(store, key), describe="clear a joined upload")


def _settle_completed(session: Session, actor: Actor, referral: Referral, row: TusUpload, image: Image) -> None:
    done = session.execute(
        sa.update(TusUpload).where(TusUpload.id == row.id, TusUpload.status == TusUploadStatus.ACTIVE)
        .values(status=TusUploadStatus.COMPLETED, image_id=image.id, completed_at=utcnow(), tail_key=None)
    ).rowcount  # type: ignore[attr-defined]
    if done != 1:
        raise Conflict("This upload was settled by another request meanwhile", {"upload_id": ["No longer active."]})
    audit.record(session, actor, "tus_upload.complete", object_type="upload", object_id=row.id,
                 organization_id=referral.organization_id, referral_id=referral.id,
                 details={"image_id": str(image.id)})


def _file_image(session: Session, store: Storage, actor: Actor, referral: Referral, row: TusUpload,
                parse: FieldParser, limits: Limits) -> Image:
    with direct_uploads.spool_object(store, row.storage_key, limits.max_bytes, limits.spool_dir) as spooled:
        if spooled.size != row.upload_length:
            log.error("a joined resumable upload does not have its declared length")
            raise ServiceUnavailable("The image store did not keep the bytes intact; nothing was stored. Start a "
                                     "new upload.")
        upload = intake.Upload(stream=spooled.stream, size=spooled.size, sha256=spooled.sha256,
                               filename=row.filename)
        admission = intake.admit(session, actor, referral, parse(dict(row.fields)), upload)
        image_id = new_id()
        original = intake.put_object(session, store, intake.image_key(referral, image_id), upload.stream,
                                     content_type=admission.inspection.content_type, size=upload.size,
                                     sha256=upload.sha256)
        return intake.file_image(session, store, actor, admission, image_id=image_id, original=original,
                                 audit_details={"via": "tus", "upload_id": str(row.id)})


def _reason(exc: Exception) -> str:
    # A code for operators, never the message: messages about a file may describe its contents.
    if isinstance(exc, PayloadTooLarge):
        return "too_large"
    if isinstance(exc, UnsupportedMediaType):
        return "unsupported_type"
    if isinstance(exc, ValidationFailed):
        return "file_refused"
    return "store_error"


def _record_failure(session: Session, store: Storage, actor: Actor, referral: Referral, upload_id: uuid.UUID,
                    exc: Exception) -> None:
    reason = _reason(exc)
    session.execute(sa.update(TusUpload).where(TusUpload.id == upload_id, TusUpload.status == TusUploadStatus.ACTIVE)
                    .values(status=TusUploadStatus.FAILED, failure_reason=reason, completed_at=utcnow(),
                            updated_at=utcnow()))
    audit.record(session, actor, "tus_upload.complete", object_type="upload", object_id=upload_id,
                 organization_id=referral.organization_id, referral_id=referral.id, outcome="refused",
                 details={"reason": reason, "status": getattr(exc, "status_code", 503)})
    row = session.get(TusUpload, upload_id)
    if row is not None:
        # The multipart upload was completed, so only the tail (if any) is left besides the joined object.
        tail = row.tail_key
        if tail is not None:
            unit_of_work.after_commit(session, lambda: _delete_quietly(store, tail),
                                      describe="clear a refused upload's tail")


def _clear_after_commit(session: Session, store: Storage, row: TusUpload) -> None:
    key, multipart_id, tail = row.storage_key, row.multipart_id, row.tail_key

    def clear() -> None:
        try:
            _clear(store, key, multipart_id, tail)
        except StorageError:
            log.error("could not clear a resumable upload's objects; the worker's sweep tries again")

    unit_of_work.after_commit(session, clear, describe="clear a resumable upload's objects")


def _clear(store: Storage, key: str, multipart_id: str | None, tail: str | None) -> None:
    if multipart_id is not None:
        store.abort_multipart(key, multipart_id)
    if tail is not None:
        store.delete(tail)
    store.delete(key)


def _delete_quietly(store: Storage, key: str) -> None:
    try:
        store.delete(key)
    except StorageError:
        log.error("could not remove a resumable upload's object; the worker's sweep clears it")

