"""Objects in an S3 bucket (AWS, MinIO, moto, or anything else speaking the S3 API).

This is the only module that knows about botocore: every botocore failure is translated into the
StorageError family before it leaves here.
"""

from __future__ import annotations

import base64
import binascii
import collections
import contextlib
import io
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, BinaryIO

import boto3
import botocore.loaders
import botocore.session
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, ParamValidationError

from .base import (
    MAX_URL_EXPIRY_SECONDS,
    HashingReader,
    ObjectExists,
    ObjectHead,
    ObjectNotFound,
    PresignedPost,
    Storage,
    StorageError,
    StorageUnavailable,
    StoredObject,
    content_disposition,
    is_valid_key,
    validate_content_type,
    validate_expiry,
    validate_key,
    validate_max_bytes,
    validate_post_expiry,
    validate_prefix,
    validate_range,
    validate_sha256,
)
from .breaker import CircuitBreaker

_MiB = 1024 * 1024
SSE_ALGORITHMS = ("AES256", "aws:kms")

_NOT_FOUND_CODES = frozenset({"404", "NoSuchKey", "NotFound", "NoSuchUpload"})
# 409 ConditionalRequestConflict: another conditional write to the same key is in flight and S3
# will let at most one of them win, so from our side the key is taken.
_EXISTS_CODES = frozenset({"412", "PreconditionFailed", "ConditionalRequestConflict"})
_UNAVAILABLE_CODES = frozenset({
    "AccessDenied", "AllAccessDisabled", "InvalidAccessKeyId", "SignatureDoesNotMatch",
    "ExpiredToken", "InvalidToken", "TokenRefreshRequired", "RequestTimeTooSkewed",
    "NoSuchBucket", "SlowDown", "Throttling", "ThrottlingException", "RequestLimitExceeded",
    "TooManyRequestsException", "RequestTimeout", "ServiceUnavailable", "InternalError",
})


# A store that does not answer must not hold a worker for long: a few seconds to connect, a bounded wait for
# each read from the socket (not for a whole transfer), one retry. /readyz probes with less still.
CONNECT_TIMEOUT = 3.0
READ_TIMEOUT = 10.0
MAX_ATTEMPTS = 2


def _client_config(connect_timeout: float = CONNECT_TIMEOUT, read_timeout: float = READ_TIMEOUT,
                   max_attempts: int = MAX_ATTEMPTS) -> Config:
    return Config(
        # boto3 >= 1.36 adds CRC checksums to every upload by default, which several S3-compatible
        # stores reject; only send them where the API demands one.
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
        retries={"max_attempts": max_attempts, "mode": "standard"},
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        signature_version="s3v4",
    )


def _transfer_config() -> TransferConfig:
    config = TransferConfig(
        multipart_threshold=16 * _MiB,
        multipart_chunksize=8 * _MiB,
        max_concurrency=4,
        use_threads=True,
        # The CRT transfer client would bypass the event hooks that add our conditional-write and
        # bucket-key parameters, and would sign with credentials of its own choosing.
        preferred_transfer_client="classic",
    )
    # Our reader is not seekable, so s3transfer holds each part in memory until it is sent; this
    # bounds one upload to about threshold + 4 parts (~48 MiB) however fast the source is.
    config.max_in_memory_upload_chunks = 4
    return config


_TRANSFER_CONFIG = _transfer_config()


def _error_details(exc: ClientError) -> tuple[str, int | None]:
    error = exc.response.get("Error", {}) or {}
    status = (exc.response.get("ResponseMetadata", {}) or {}).get("HTTPStatusCode")
    return str(error.get("Code", "")), status if isinstance(status, int) else None


def _translate_client_error(exc: ClientError, key: str | None) -> StorageError:
    code, status = _error_details(exc)
    label = f"{code or 'error'} (HTTP {status})" if status else code or "error"
    if code in _NOT_FOUND_CODES:
        return ObjectNotFound(f"no object under {key!r}" if key else "object not found")
    if code in _EXISTS_CODES or status == 412:
        return ObjectExists(f"an object already exists under {key!r}" if key else "object exists")
    # Credentials, permissions and KMS problems are not the caller's fault and will not go away by
    # retrying the same request differently: the store is unusable until an operator acts.
    if (
        code in _UNAVAILABLE_CODES
        or code.startswith("KMS.")
        or status in (401, 403, 429)
        or (status is not None and status >= 500)
    ):
        return StorageUnavailable(f"object store unavailable: {label}")
    return StorageError(f"object store refused the request: {label}")


@contextlib.contextmanager
def _translated(key: str | None = None, breaker: CircuitBreaker | None = None) -> Iterator[None]:
    """Botocore's failures as StorageErrors; with a breaker, outages count towards opening it and an open
    breaker refuses the call before it is made."""
    if breaker is not None:
        breaker.before()
    try:
        yield
    except ClientError as exc:
        error = _translate_client_error(exc, key)
        if breaker is not None:
            (breaker.failed if isinstance(error, StorageUnavailable) else breaker.succeeded)()
        raise error from exc
    except ParamValidationError as exc:
        # A malformed request is a bug on our side, not an outage.
        raise StorageError("invalid request to object store") from exc
    except BotoCoreError as exc:
        # Connection refused, DNS, timeouts, missing credentials, truncated responses.
        if breaker is not None:
            breaker.failed()
        raise StorageUnavailable(f"object store unreachable: {type(exc).__name__}") from exc
    except BaseException:
        # The caller's own failure (its stream broke): says nothing about the store.
        if breaker is not None:
            breaker.abandoned()
        raise
    if breaker is not None:
        breaker.succeeded()


def _full_object_sha256(head: dict[str, Any]) -> str | None:
    """The hex SHA-256 of the whole object from a HeadObject answer with checksums, if S3 has one."""
    value = head.get("ChecksumSHA256")
    if not value or head.get("ChecksumType", "FULL_OBJECT") != "FULL_OBJECT":
        return None
    try:
        digest = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        # A composite checksum ("<base64>-<parts>") is not the digest of the bytes.
        return None
    return digest.hex() if len(digest) == 32 else None


class _BodyReader(io.RawIOBase):
    """Adapts botocore's StreamingBody to the io hierarchy, so callers get a real file object and
    read errors arrive as StorageUnavailable instead of botocore exceptions."""

    def __init__(self, body: Any) -> None:
        super().__init__()
        self._body = body

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        with _translated():
            data = self._body.read(len(view))
        view[: len(data)] = data
        return len(data)

    def close(self) -> None:
        if not self.closed:
            try:
                # Releases (or discards, if unread) the pooled HTTP connection.
                self._body.close()
            finally:
                super().close()


# botocore reads the S3 service model (several MB of JSON) once per loader. Every store shares one
# loader, so a new store (one per app, one per worker process) costs milliseconds instead of a re-read.
_loader_lock = threading.Lock()
_shared_loader: botocore.loaders.Loader | None = None


def _new_session() -> boto3.session.Session:
    """A private boto3 session (boto3's lazily built default session is not safe to create from several
    threads at once) whose data loader, and so its parsed service models, is shared by every store."""
    global _shared_loader
    core = botocore.session.Session()
    with _loader_lock:
        if _shared_loader is None:
            _shared_loader = core.get_component("data_loader")
        else:
            core.register_component("data_loader", _shared_loader)
        session = boto3.session.Session(botocore_session=core)
        # boto3 adds its own data folder to the loader's search path each time: keep one of each.
        paths = _shared_loader.search_paths
        paths[:] = list(dict.fromkeys(paths))
    return session


class S3Storage(Storage):
    backend = "s3"

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        kms_key_id: str | None = None,
        sse: str | None = None,
        client: Any = None,
        region: str | None = None,
        connect_timeout: float = CONNECT_TIMEOUT,
        read_timeout: float = READ_TIMEOUT,
        breaker: CircuitBreaker | None = None,
    ) -> None:
        if not bucket or "/" in bucket:
            raise ValueError("bucket must be a bucket name, without '/'")
        if sse is not None and sse not in SSE_ALGORITHMS:
            raise ValueError(f"sse must be one of {', '.join(SSE_ALGORITHMS)}, not {sse!r}")
        if kms_key_id and sse == "AES256":
            raise ValueError("kms_key_id requires sse='aws:kms' (or no sse), not 'AES256'")
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        if self.prefix:
            validate_key(self.prefix)
        self._root = f"{self.prefix}/" if self.prefix else ""
        self.kms_key_id = kms_key_id or None
        self.sse = "aws:kms" if self.kms_key_id else sse

        self._owns_client = client is None
        if client is None:
            # A private session: boto3's default session is a lazily built global that is not safe
            # to create from several threads at once. Endpoint and credentials come from boto3's
            # own environment variables (AWS_ENDPOINT_URL_S3, AWS_ACCESS_KEY_ID, ...).
            session = _new_session()
            client = session.client("s3", region_name=region,
                                    config=_client_config(connect_timeout, read_timeout))
            # The readiness probe waits less and does not retry, so that a hung store shows within seconds.
            probe_timeout = min(connect_timeout, read_timeout, 2.0)
            self._probe_client = session.client("s3", region_name=region,
                                                config=_client_config(probe_timeout, probe_timeout, 1))
        else:
            self._probe_client = client
        # One client for the life of the store: clients are thread-safe, and building one per call
        # costs milliseconds and throws away the connection pool.
        self.client = client
        self.breaker = breaker or CircuitBreaker()

        # Keys with a put in progress, counted because two threads may put the same key at once.
        self._pending: collections.Counter[str] = collections.Counter()
        self._pending_lock = threading.Lock()
        self._hooks = [
            (f"before-parameter-build.s3.{operation}", self._add_write_params)
            for operation in ("PutObject", "CreateMultipartUpload", "CompleteMultipartUpload")
        ]
        for event, handler in self._hooks:
            self.client.meta.events.register(event, handler)

    def __repr__(self) -> str:
        return f"S3Storage(bucket={self.bucket!r}, prefix={self.prefix!r}, sse={self.sse!r})"

    # -- helpers ---------------------------------------------------------------------------------

    def _full_key(self, key: str) -> str:
        return self._root + validate_key(key)

    def _sse_args(self) -> dict[str, str]:
        args: dict[str, str] = {}
        if self.sse:
            args["ServerSideEncryption"] = self.sse
        if self.kms_key_id:
            args["SSEKMSKeyId"] = self.kms_key_id
        return args

    def _add_write_params(self, params: dict[str, Any], model: Any = None, **_: Any) -> None:
        """Adds what upload_fileobj's ExtraArgs cannot carry to the requests it makes for our puts.

        IfNoneMatch="*" turns "check, then write" into an atomic create on the server, so a put that
        loses a race fails with 412 instead of replacing the winner's object. s3transfer does not
        pass IfNoneMatch (nor BucketKeyEnabled) through, hence this hook. Requests for keys we are
        not putting, including other users of an injected client, are left alone.
        """
        if params.get("Bucket") != self.bucket:
            return
        with self._pending_lock:
            if self._pending[params.get("Key", "")] <= 0:
                return
        operation = getattr(model, "name", "")
        if operation in ("PutObject", "CompleteMultipartUpload"):
            params.setdefault("IfNoneMatch", "*")
        if operation in ("PutObject", "CreateMultipartUpload") and self.sse == "aws:kms":
            # S3 Bucket Keys cut KMS calls (and cost) per object by orders of magnitude.
            params.setdefault("BucketKeyEnabled", True)

    def _head(self, full_key: str, key: str, **extra: str) -> dict[str, Any] | None:
        try:
            with _translated(key, self.breaker):
                response: dict[str, Any] = self.client.head_object(Bucket=self.bucket, Key=full_key, **extra)
        except ObjectNotFound:
            return None
        return response

    # -- Storage ---------------------------------------------------------------------------------

    def put(self, key: str, stream: BinaryIO, *, content_type: str, size: int | None = None,
            sha256: str | None = None) -> StoredObject:
        full_key = self._full_key(key)
        validate_content_type(content_type)
        reader = HashingReader(stream, size, sha256)
        # Cheap early refusal before streaming anything; the conditional write is what makes the
        # refusal hold when two writers race.
        if self._head(full_key, key) is not None:
            raise ObjectExists(f"an object already exists under {key!r}")
        extra_args = {"ContentType": content_type, **self._sse_args()}
        with self._pending_lock:
            self._pending[full_key] += 1
        try:
            # Failures part-way leave nothing behind: a single PutObject is atomic, and s3transfer
            # aborts a multipart upload when any part, the completion, or our reader fails.
            # Exceptions from the caller's stream come out of upload_fileobj unchanged.
            with _translated(key, self.breaker):
                self.client.upload_fileobj(
                    reader, self.bucket, full_key, ExtraArgs=extra_args, Config=_TRANSFER_CONFIG
                )
        finally:
            with self._pending_lock:
                self._pending[full_key] -= 1
                if self._pending[full_key] <= 0:
                    del self._pending[full_key]
        return reader.result(key)

    def open(self, key: str) -> BinaryIO:
        full_key = self._full_key(key)
        with _translated(key, self.breaker):
            response = self.client.get_object(Bucket=self.bucket, Key=full_key)
        return io.BufferedReader(_BodyReader(response["Body"]), buffer_size=256 * 1024)

    def delete(self, key: str) -> None:
        full_key = self._full_key(key)
        # S3 answers 204 for missing keys too, which is exactly the idempotence we promise.
        with _translated(key, self.breaker):
            self.client.delete_object(Bucket=self.bucket, Key=full_key)

    def exists(self, key: str) -> bool:
        return self._head(self._full_key(key), key) is not None

    def size(self, key: str) -> int:
        head = self._head(self._full_key(key), key)
        if head is None:
            raise ObjectNotFound(f"no object under {key!r}")
        return int(head["ContentLength"])

    def head(self, key: str) -> ObjectHead:
        """Size, and the SHA-256 S3 keeps with the object when it was given or asked to compute one: S3
        refuses a body whose digest differs from the one sent with it, and computes the digest of a copy
        itself (``copy``). A checksum of parts (a multipart upload's) is not the file's digest and is not
        reported."""
        head = self._head(self._full_key(key), key, ChecksumMode="ENABLED")
        if head is None:
            raise ObjectNotFound(f"no object under {key!r}")
        return ObjectHead(size=int(head["ContentLength"]), sha256=_full_object_sha256(head))

    def open_range(self, key: str, start: int, length: int) -> bytes:
        full_key = self._full_key(key)
        validate_range(start, length)
        if length == 0:
            return b""
        with _translated(key, self.breaker):
            try:
                response = self.client.get_object(Bucket=self.bucket, Key=full_key,
                                                  Range=f"bytes={start}-{start + length - 1}")
            except ClientError as exc:
                # 416: the range starts past the end of the object, which holds no bytes there.
                if _error_details(exc)[0] == "InvalidRange":
                    return b""
                raise
            body = response["Body"]
            try:
                return bytes(body.read())
            finally:
                body.close()

    def last_modified(self, key: str) -> datetime:
        head = self._head(self._full_key(key), key)
        if head is None:
            raise ObjectNotFound(f"no object under {key!r}")
        modified = head["LastModified"]
        # botocore parses the header into an aware datetime; S3 keeps whole seconds.
        return modified.astimezone(UTC) if modified.tzinfo else modified.replace(tzinfo=UTC)

    def url(
        self,
        key: str,
        *,
        expires_in: int = MAX_URL_EXPIRY_SECONDS,
        filename: str | None = None,
        content_type: str | None = None,
    ) -> str | None:
        full_key = self._full_key(key)
        validate_expiry(expires_in)
        params: dict[str, str] = {"Bucket": self.bucket, "Key": full_key}
        # The response-* overrides are part of the signature, so the holder of the URL cannot
        # change the download name or type.
        if filename is not None:
            params["ResponseContentDisposition"] = content_disposition(filename)
        if content_type is not None:
            params["ResponseContentType"] = validate_content_type(content_type)
        # Signing happens here, without a call to the store, so it neither asks nor tells the breaker.
        with _translated(key):
            url: str = self.client.generate_presigned_url(
                "get_object", Params=params, ExpiresIn=expires_in, HttpMethod="GET"
            )
        return url

    def presign_post(self, key: str, *, max_bytes: int, content_type: str, expires_in: int,
                     sha256: str | None = None) -> PresignedPost:
        full_key = self._full_key(key)
        validate_max_bytes(max_bytes)
        validate_content_type(content_type)
        validate_post_expiry(expires_in)
        fields = {"Content-Type": content_type}
        if sha256 is not None:
            # S3's additional checksum: the store refuses a body whose SHA-256 differs (BadDigest) and keeps
            # the digest with the object. Pinned by the policy like every other field, so the form cannot be
            # used with another file.
            fields["x-amz-checksum-algorithm"] = "SHA256"
            fields["x-amz-checksum-sha256"] = base64.b64encode(bytes.fromhex(validate_sha256(sha256))).decode()
        # A bucket policy that denies unencrypted puts judges a POST by these form fields, so the form
        # asks for the same encryption as our own puts, and the policy pins them.
        if self.sse:
            fields["x-amz-server-side-encryption"] = self.sse
        if self.kms_key_id:
            fields["x-amz-server-side-encryption-aws-kms-key-id"] = self.kms_key_id
        conditions: list[Any] = [{name: value} for name, value in fields.items()]
        conditions.append(["content-length-range", 1, max_bytes])
        # Taken before signing and cut to whole seconds, as the policy's own expiry is, so what we
        # report is never later than what S3 enforces.
        expires_at = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=expires_in)
        with _translated(key):
            post = self.client.generate_presigned_post(
                self.bucket, full_key, Fields=fields, Conditions=conditions, ExpiresIn=expires_in
            )
        return PresignedPost(url=str(post["url"]), fields={k: str(v) for k, v in post["fields"].items()},
                             expires_at=expires_at)

    def copy(self, source: str, destination: str) -> None:
        """A server-side copy (one CopyObject request, so objects up to 5 GiB), encrypted like a put. S3
        computes the copy's SHA-256 as it writes it, so ``head`` of the copy can vouch for its bytes."""
        source_key, destination_key = self._full_key(source), self._full_key(destination)
        if self._head(destination_key, destination) is not None:
            raise ObjectExists(f"an object already exists under {destination!r}")
        extra: dict[str, Any] = dict(self._sse_args())
        if self.sse == "aws:kms":
            extra["BucketKeyEnabled"] = True
        try:
            with _translated(source, self.breaker):
                self.client.copy_object(
                    Bucket=self.bucket, Key=destination_key,
                    CopySource={"Bucket": self.bucket, "Key": source_key},
                    # As for puts: a copy that loses a race to the same key fails instead of replacing.
                    IfNoneMatch="*", ChecksumAlgorithm="SHA256", **extra,
                )
        except ObjectExists:
            raise ObjectExists(f"an object already exists under {destination!r}") from None

    # -- multipart objects -----------------------------------------------------------------------

    min_part_size = 5 * _MiB

    def start_multipart(self, key: str) -> str:
        """An S3 multipart upload: its parts are not objects, so nothing under any key until completion."""
        full_key = self._full_key(key)
        extra: dict[str, Any] = dict(self._sse_args())
        if self.sse == "aws:kms":
            extra["BucketKeyEnabled"] = True
        with _translated(key, self.breaker):
            response = self.client.create_multipart_upload(
                Bucket=self.bucket, Key=full_key, ContentType="application/octet-stream", **extra)
        return str(response["UploadId"])

    def put_part(self, key: str, upload_id: str, number: int, stream: BinaryIO, *, size: int) -> str:
        full_key = self._full_key(key)
        if not 1 <= number <= 10_000:
            raise ValueError("part numbers run from 1 to 10000")
        with _translated(key, self.breaker):
            response = self.client.upload_part(Bucket=self.bucket, Key=full_key, UploadId=upload_id,
                                               PartNumber=number, Body=stream, ContentLength=size)
        return str(response["ETag"])

    def complete_multipart(self, key: str, upload_id: str, parts: list[tuple[int, str]]) -> None:
        full_key = self._full_key(key)
        listed = [{"PartNumber": number, "ETag": tag} for number, tag in sorted(parts)]
        with _translated(key, self.breaker):
            # As for puts: a completion that loses a race to the same key fails instead of replacing.
            self.client.complete_multipart_upload(Bucket=self.bucket, Key=full_key, UploadId=upload_id,
                                                  MultipartUpload={"Parts": listed}, IfNoneMatch="*")

    def abort_multipart(self, key: str, upload_id: str) -> None:
        full_key = self._full_key(key)
        try:
            with _translated(key, self.breaker):
                self.client.abort_multipart_upload(Bucket=self.bucket, Key=full_key, UploadId=upload_id)
        except ObjectNotFound:
            pass  # NoSuchUpload: already completed or aborted

    def keys(self, prefix: str = "") -> Iterator[str]:
        validate_prefix(prefix)
        paginator = self.client.get_paginator("list_objects_v2")
        pages = paginator.paginate(Bucket=self.bucket, Prefix=self._root + prefix)
        iterator = iter(pages)
        while True:
            # Only the page fetch is translated; the yield stays outside so exceptions thrown into
            # this generator by its consumer are not mistaken for storage errors.
            with _translated():
                page = next(iterator, None)
            if page is None:
                return
            for item in page.get("Contents", []):
                key = item["Key"][len(self._root):]
                # Objects we could not have written (console "folder" markers, foreign names) are
                # not keys of this store and could not be opened through it.
                if is_valid_key(key):
                    yield key

    def check(self) -> None:
        # Any failure here means the store is not usable for this server, including a bucket that
        # is missing (404) or credentials that are refused (403).
        try:
            with _translated(breaker=self.breaker):
                self._probe_client.head_bucket(Bucket=self.bucket)
        except StorageUnavailable:
            raise
        except StorageError as exc:
            raise StorageUnavailable(f"object store bucket not usable: {exc}") from exc

    def close(self) -> None:
        for event, handler in self._hooks:
            self.client.meta.events.unregister(event, handler)
        self._hooks = []
        # An injected client belongs to whoever made it.
        if self._owns_client:
            self.client.close()
            self._probe_client.close()
