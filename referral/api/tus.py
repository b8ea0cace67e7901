"""Resumable uploads over the tus 1.0 protocol (core, creation, termination, checksum and expiration).

tus is spoken in headers, not JSON bodies, so these routes stay out of the OpenAPI document (like DICOMweb);
docs/api.md describes them. Errors still carry the JSON error body, and every answer says
``Tus-Resumable: 1.0.0``. Whose referral it is comes first: to anyone outside the case it does not exist, so
an outsider gets 404 before any header of the protocol is looked at.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import tempfile
import uuid
from datetime import timedelta
from email.utils import format_datetime
from typing import IO, Any, BinaryIO, cast

from flask import Blueprint, Response, jsonify, request
from marshmallow import ValidationError

from referral.errors import ChecksumMismatch, DomainError, PayloadTooLarge, UnsupportedMediaType, ValidationFailed
from referral.http.context import current_actor, db_session, object_store, settings
from referral.models import TusUpload, TusUploadStatus
from referral.schemas.images import ImageUploadFormSchema
from referral.services import tus_uploads

blp = Blueprint("tus", __name__, url_prefix="/api/v1")

TUS_VERSION = "1.0.0"
EXTENSIONS = "creation,termination,checksum,expiration"
CHECKSUM_ALGORITHMS = {"sha1": hashlib.sha1, "sha256": hashlib.sha256, "sha512": hashlib.sha512, "md5": hashlib.md5}
CHUNK_CONTENT_TYPE = "application/offset+octet-stream"
# Upload-Metadata keys that describe the file rather than the image; the rest are the image form's fields.
FILENAME_KEYS = ("filename", "name")
IGNORED_KEYS = ("filetype", "type", "relativePath")
_READ = 1024 * 1024


class BadRequest(DomainError):
    status_code = 400


class UnsupportedVersion(DomainError):
    status_code = 412


@blp.after_request
def _protocol_headers(response: Response) -> Response:
    response.headers["Tus-Resumable"] = TUS_VERSION
    response.headers["Cache-Control"] = "no-store"
    if response.status_code == 412 or request.method == "OPTIONS":
        response.headers["Tus-Version"] = TUS_VERSION
    return response


@blp.errorhandler(ChecksumMismatch)
def _checksum_mismatch(exc: ChecksumMismatch) -> Response:
    # 460 is tus's own status, unknown to http.HTTPStatus, so the JSON error is spelled out here.
    response = jsonify(code=460, status="Checksum Mismatch", message=exc.message, errors=exc.errors)
    response.status = "460 Checksum Mismatch"
    return response


def _limits() -> tus_uploads.Limits:
    configured = settings()
    part_size = max(configured.tus_part_bytes, object_store().min_part_size)
    return tus_uploads.Limits(max_bytes=configured.max_upload_bytes, part_size=part_size,
                              expiry=timedelta(hours=configured.tus_expiry_hours),
                              spool_dir=configured.upload_tmp_dir)


def _require_version() -> None:
    sent = request.headers.get("Tus-Resumable")
    if sent != TUS_VERSION:
        raise UnsupportedVersion(f"This server speaks tus {TUS_VERSION}; send 'Tus-Resumable: {TUS_VERSION}'",
                                 {"Tus-Resumable": [f"Unsupported version {sent!r}." if sent else "Missing."]})


def _whole_number(name: str) -> int:
    raw = request.headers.get(name)
    if raw is None or not raw.isascii() or not raw.isdigit() or len(raw) > 19:
        raise BadRequest(f"Send {name} as a whole number of bytes", {name: ["A whole number of bytes."]})
    return int(raw)


def parse_metadata(header: str) -> dict[str, str]:
    """``key base64value,key2 base64value2``: the values decoded as UTF-8 (422 when the header is malformed)."""
    pairs: dict[str, str] = {}
    for entry in (part.strip() for part in header.split(",")):
        if not entry:
            continue
        key, _, encoded = entry.partition(" ")
        if not key or key in pairs:
            raise ValidationFailed("Upload-Metadata names a key twice or has an empty key",
                                   {"Upload-Metadata": [f"Repeated or empty key {key!r}."]})
        try:
            pairs[key] = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise ValidationFailed(f"Upload-Metadata value of {key} is not base64-encoded UTF-8",
                                   {key: ["Not base64-encoded UTF-8."]}) from None
    return pairs


def parse_fields(fields: dict[str, str]) -> dict[str, Any]:
    """The image form's fields, checked as the multipart upload checks them."""
    try:
        return cast(dict[str, Any], ImageUploadFormSchema().load(fields))
    except ValidationError as exc:
        messages = cast(dict[str, Any], exc.messages)
        names = ", ".join(sorted(name.replace("_", " ") for name in messages))
        raise ValidationFailed(f"Invalid Upload-Metadata: {names}", messages) from None


def _state_headers(response: Response, row: TusUpload) -> Response:
    response.headers["Upload-Offset"] = str(row.upload_offset)
    response.headers["Upload-Length"] = str(row.upload_length)
    if row.status == TusUploadStatus.ACTIVE:
        response.headers["Upload-Expires"] = format_datetime(row.expires_at, usegmt=True)
    if row.image_id is not None:
        response.headers["Image-Id"] = str(row.image_id)
        response.headers["Location"] = f"/api/v1/images/{row.image_id}"
    return response


def _discovery() -> Response:
    response = Response(status=204)
    response.headers["Tus-Extension"] = EXTENSIONS
    response.headers["Tus-Max-Size"] = str(settings().max_upload_bytes)
    response.headers["Tus-Checksum-Algorithm"] = ",".join(CHECKSUM_ALGORITHMS)
    return response


@blp.route("/referrals/<uuid:referral_id>/uploads", methods=["POST", "OPTIONS"], provide_automatic_options=False)
def create_upload(referral_id: uuid.UUID) -> Response:
    """Creation: Upload-Length and Upload-Metadata (the image form's fields and the filename) -> 201 + Location."""
    if request.method == "OPTIONS":
        return _discovery()
    session, actor = db_session(), current_actor()
    tus_uploads.check_referral(session, actor, referral_id)
    _require_version()
    if "Upload-Defer-Length" in request.headers:
        raise BadRequest("Give Upload-Length: this server does not take uploads of unknown length",
                         {"Upload-Defer-Length": ["Not supported."]})
    length = _whole_number("Upload-Length")
    metadata = parse_metadata(request.headers.get("Upload-Metadata", ""))
    filename = next((metadata.pop(key) for key in FILENAME_KEYS if key in metadata), None)
    for key in (*FILENAME_KEYS, *IGNORED_KEYS):
        metadata.pop(key, None)
    row = tus_uploads.create_upload(session, actor, referral_id, length=length, fields=metadata, filename=filename,
                                    parse=parse_fields, limits=_limits())
    response = _state_headers(Response(status=201), row)
    response.headers["Location"] = f"/api/v1/referrals/{referral_id}/uploads/{row.id}"
    return response


def _spool_body(algorithm: str | None) -> tuple[IO[bytes], int, str | None]:
    """The PATCH body in a temporary file, with its size and (when asked for) its digest, base64."""
    limit = settings().max_upload_bytes
    digest = CHECKSUM_ALGORITHMS[algorithm]() if algorithm else None
    spool = tempfile.TemporaryFile(dir=settings().upload_tmp_dir)  # noqa: SIM115 - closed by the caller
    size = 0
    try:
        stream = request.stream
        while data := stream.read(_READ):
            size += len(data)
            if size > limit:
                raise PayloadTooLarge(f"The chunk is larger than the {limit} byte limit",
                                                  {"Content-Length": [f"At most {limit} bytes."]})
            if digest is not None:
                digest.update(data)
            spool.write(data)
    except BaseException:
        spool.close()
        raise
    spool.seek(0)
    return spool, size, base64.b64encode(digest.digest()).decode("ascii") if digest is not None else None


def _checksum_header() -> tuple[str, str] | None:
    header = request.headers.get("Upload-Checksum")
    if header is None:
        return None
    algorithm, _, value = header.strip().partition(" ")
    if algorithm not in CHECKSUM_ALGORITHMS or not value.strip():
        raise BadRequest(f"Upload-Checksum must be '<algorithm> <base64 digest>' with one of "
                         f"{', '.join(CHECKSUM_ALGORITHMS)}", {"Upload-Checksum": ["Unsupported or malformed."]})
    return algorithm, value.strip()


@blp.route("/referrals/<uuid:referral_id>/uploads/<uuid:upload_id>",
           methods=["HEAD", "PATCH", "DELETE", "OPTIONS"], provide_automatic_options=False)
def upload(referral_id: uuid.UUID, upload_id: uuid.UUID) -> Response:
    """HEAD: where the upload stands. PATCH: one more chunk. DELETE: give it up."""
    if request.method == "OPTIONS":
        return _discovery()
    session, actor, store = db_session(), current_actor(), object_store()
    tus_uploads.check_referral(session, actor, referral_id)
    _require_version()
    if request.method == "HEAD":
        row = tus_uploads.current_state(session, actor, referral_id, upload_id)
        return _state_headers(Response(status=200), row)
    if request.method == "DELETE":
        tus_uploads.terminate(session, store, actor, referral_id, upload_id)
        return Response(status=204)
    if request.mimetype != CHUNK_CONTENT_TYPE:
        raise UnsupportedMediaType(f"Send each chunk as Content-Type: {CHUNK_CONTENT_TYPE}",
                                   {"Content-Type": [f"Must be {CHUNK_CONTENT_TYPE}."]})
    offset = _whole_number("Upload-Offset")
    checksum = _checksum_header()
    spool, size, digest = _spool_body(checksum[0] if checksum else None)
    with spool:
        chunk = tus_uploads.Chunk(stream=cast(BinaryIO, spool), size=size,
                                  checksum_matches=None if checksum is None else digest == checksum[1])
        row = tus_uploads.append(session, store, actor, referral_id, upload_id, offset=offset, chunk=chunk,
                                 parse=parse_fields, limits=_limits())
    return _state_headers(Response(status=204), row)
