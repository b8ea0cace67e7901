"""What only the S3 backend has to get right, checked against moto over real HTTP."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest
import requests
from botocore.config import Config

from storage import (
    ObjectExists,
    S3Storage,
    StorageUnavailable,
    from_url,
)
from tests.support.s3server import REGION, free_port
from tests.support.storage import MiB, PatternStream, SourceError, pattern_digest

CONTENT_TYPE = "application/octet-stream"


@pytest.fixture
def store(s3_bucket: str) -> Iterator[S3Storage]:
    backend = S3Storage(s3_bucket, prefix="tenant")
    yield backend
    backend.close()


@pytest.fixture
def kms_key_id(s3_endpoint: str) -> str:
    # moto serves every service from one port, so KMS is reached at the S3 endpoint.
    kms = boto3.session.Session().client("kms", endpoint_url=s3_endpoint, region_name=REGION)
    try:
        return str(kms.create_key(Description="storage tests")["KeyMetadata"]["KeyId"])
    finally:
        kms.close()


def test_presigned_url_expires_within_five_minutes_and_downloads_as_a_named_attachment(
    store: S3Storage,
) -> None:
    payload = b"DICM" + bytes(range(256)) * 40
    store.put("ref/scan", io.BytesIO(payload), content_type=CONTENT_TYPE)

    url = store.url(
        "ref/scan", expires_in=120, filename="R\u00f6ntgen 1.dcm", content_type="application/dicom"
    )

    assert url is not None
    query = parse_qs(urlsplit(url).query)
    assert int(query["X-Amz-Expires"][0]) == 120
    with requests.get(url, timeout=10) as response:
        assert response.status_code == 200
        assert response.content == payload
        assert response.headers["Content-Type"] == "application/dicom"
        assert response.headers["Content-Disposition"] == (
            "attachment; filename=\"Rontgen 1.dcm\"; filename*=UTF-8''R%C3%B6ntgen%201.dcm"
        )


def test_presigned_url_lasts_300_seconds_unless_told_otherwise(store: S3Storage) -> None:
    store.put("ref/plain", io.BytesIO(b"plain"), content_type="image/png")

    url = store.url("ref/plain")

    assert url is not None
    assert parse_qs(urlsplit(url).query)["X-Amz-Expires"] == ["300"]
    with requests.get(url, timeout=10) as response:
        assert response.content == b"plain"
        # Without overrides the object's own stored type is served.
        assert response.headers["Content-Type"] == "image/png"
        assert "Content-Disposition" not in response.headers


@pytest.mark.parametrize("expires_in", [301, 3600, 0, -5])
def test_presigned_url_expiry_outside_one_to_300_seconds_is_refused(
    store: S3Storage, expires_in: int
) -> None:
    with pytest.raises(ValueError, match="between 1 and 300"):
        store.url("ref/any", expires_in=expires_in)


def test_objects_live_under_the_prefix_with_their_content_type(
    store: S3Storage, s3_client: Any, s3_bucket: str
) -> None:
    store.put("ref/typed", io.BytesIO(b"png bytes"), content_type="image/png")

    head = s3_client.head_object(Bucket=s3_bucket, Key="tenant/ref/typed")
    assert head["ContentType"] == "image/png"
    assert head["ContentLength"] == len(b"png bytes")


def test_keys_ignores_objects_outside_the_prefix_and_names_it_could_not_have_written(
    store: S3Storage, s3_client: Any, s3_bucket: str
) -> None:
    store.put("ref/mine", io.BytesIO(b"x"), content_type=CONTENT_TYPE)
    s3_client.put_object(Bucket=s3_bucket, Key="elsewhere/theirs", Body=b"x")
    s3_client.put_object(Bucket=s3_bucket, Key="tenantless", Body=b"x")
    s3_client.put_object(Bucket=s3_bucket, Key="tenant/folder/", Body=b"")

    assert list(store.keys()) == ["ref/mine"]


@pytest.mark.parametrize(
    ("size", "create", "finish"),
    [(1024, "PutObject", "PutObject"), (17 * MiB, "CreateMultipartUpload", "CompleteMultipartUpload")],
    ids=["single-request", "multipart"],
)
def test_kms_encryption_settings_are_applied_to_stored_objects(
    s3_bucket: str, s3_client: Any, kms_key_id: str, size: int, create: str, finish: str
) -> None:
    store = S3Storage(s3_bucket, kms_key_id=kms_key_id)
    sent: dict[str, dict[str, str]] = {}

    def record(request: Any, event_name: str, **_: Any) -> None:
        # botocore keeps some header values as bytes.
        sent[event_name.rsplit(".", 1)[-1]] = {
            name: value.decode() if isinstance(value, bytes) else value
            for name, value in request.headers.items()
        }

    store.client.meta.events.register("before-send.s3", record)
    try:
        stored = store.put("encrypted", PatternStream(size), content_type=CONTENT_TYPE)
    finally:
        store.close()

    assert stored.sha256 == pattern_digest(size)
    head = s3_client.head_object(Bucket=s3_bucket, Key="encrypted")
    assert head["ServerSideEncryption"] == "aws:kms"
    assert kms_key_id in head["SSEKMSKeyId"]
    # moto records the bucket-key flag only for single-request uploads, so the request that
    # creates the object is checked directly; it is also where write-once is asked for.
    assert sent[create]["x-amz-server-side-encryption"] == "aws:kms"
    assert sent[create]["x-amz-server-side-encryption-aws-kms-key-id"] == kms_key_id
    assert sent[create]["x-amz-server-side-encryption-bucket-key-enabled"] == "true"
    assert sent[finish]["If-None-Match"] == "*"


def test_aes256_server_side_encryption_is_applied(s3_bucket: str, s3_client: Any) -> None:
    store = S3Storage(s3_bucket, sse="AES256")
    try:
        store.put("sealed", io.BytesIO(b"x"), content_type=CONTENT_TYPE)
    finally:
        store.close()

    head = s3_client.head_object(Bucket=s3_bucket, Key="sealed")
    assert head["ServerSideEncryption"] == "AES256"
    assert "SSEKMSKeyId" not in head


def test_a_failed_multipart_upload_leaves_no_parts_behind(
    store: S3Storage, s3_client: Any, s3_bucket: str
) -> None:
    # Past the 16 MiB threshold and two 8 MiB parts, so parts really were uploaded before failing.
    with pytest.raises(SourceError):
        store.put("ref/half", PatternStream(40 * MiB, fail_at=30 * MiB), content_type=CONTENT_TYPE)

    assert s3_client.list_multipart_uploads(Bucket=s3_bucket).get("Uploads", []) == []
    assert "Contents" not in s3_client.list_objects_v2(Bucket=s3_bucket)


def test_an_existing_object_is_refused_before_any_bytes_are_sent(
    store: S3Storage, s3_client: Any, s3_bucket: str
) -> None:
    s3_client.put_object(Bucket=s3_bucket, Key="tenant/ref/taken", Body=b"someone else's")
    stream = PatternStream(20 * MiB)

    with pytest.raises(ObjectExists):
        store.put("ref/taken", stream, content_type=CONTENT_TYPE)

    assert stream.position == 0
    assert s3_client.get_object(Bucket=s3_bucket, Key="tenant/ref/taken")["Body"].read() == b"someone else's"


def _unreachable_client() -> Any:
    # A port that was free a moment ago: connections are refused at once. One attempt and short
    # timeouts keep the test fast and show the failure is reported, not retried for minutes.
    return boto3.session.Session().client(
        "s3",
        endpoint_url=f"http://127.0.0.1:{free_port()}",
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(connect_timeout=1, read_timeout=1, retries={"max_attempts": 1, "mode": "standard"}),
    )


def test_an_unreachable_endpoint_is_reported_as_unavailable_quickly() -> None:
    client = _unreachable_client()
    store = S3Storage("nowhere", client=client)
    started = time.monotonic()
    try:
        with pytest.raises(StorageUnavailable):
            store.check()
        with pytest.raises(StorageUnavailable):
            store.put("k", io.BytesIO(b"x"), content_type=CONTENT_TYPE)
        with pytest.raises(StorageUnavailable):
            store.open("k")
        with pytest.raises(StorageUnavailable):
            store.exists("k")
        with pytest.raises(StorageUnavailable):
            list(store.keys())
    finally:
        store.close()
        client.close()

    assert time.monotonic() - started < 5


def test_a_missing_bucket_fails_the_readiness_check(s3_endpoint: str) -> None:
    store = S3Storage("no-such-bucket-here")
    try:
        with pytest.raises(StorageUnavailable):
            store.check()
    finally:
        store.close()


def test_one_client_serves_every_operation(store: S3Storage) -> None:
    client = store.client
    requests_sent: list[str] = []
    client.meta.events.register("before-send.s3", lambda request, **_: requests_sent.append(request.method))

    store.put("ref/one", io.BytesIO(b"1"), content_type=CONTENT_TYPE)
    with store.open("ref/one") as fh:
        fh.read()
    store.size("ref/one")
    list(store.keys())
    store.url("ref/one")
    store.delete("ref/one")

    assert store.client is client
    # head+put, get, head, list, delete: every request went out through this client (the readiness check has
    # a quicker client of its own).
    assert requests_sent == ["HEAD", "PUT", "GET", "HEAD", "GET", "DELETE"]


def test_an_injected_client_is_used_and_left_open_and_unchanged(s3_bucket: str, s3_endpoint: str) -> None:
    client = boto3.session.Session().client("s3", endpoint_url=s3_endpoint, region_name=REGION)
    try:
        store = S3Storage(s3_bucket, client=client)
        assert store.client is client
        store.put("mine", io.BytesIO(b"x"), content_type=CONTENT_TYPE)

        # The write-once parameters apply to the store's own puts, not to the client's other users.
        client.put_object(Bucket=s3_bucket, Key="shared", Body=b"v1")
        client.put_object(Bucket=s3_bucket, Key="shared", Body=b"v2")
        store.close()

        assert client.get_object(Bucket=s3_bucket, Key="shared")["Body"].read() == b"v2"
    finally:
        client.close()


def test_from_url_reads_bucket_prefix_and_encryption_settings(s3_endpoint: str) -> None:
    store = from_url("s3://images-bucket/clinic/a/?kms_key_id=alias%2Freferrals&region=eu-central-1")
    try:
        assert isinstance(store, S3Storage)
        assert store.backend == "s3"
        assert store.bucket == "images-bucket"
        assert store.prefix == "clinic/a"
        assert store.kms_key_id == "alias/referrals"
        assert store.sse == "aws:kms"
        assert store.client.meta.region_name == "eu-central-1"
    finally:
        store.close()


def test_from_url_accepts_a_bare_bucket_and_aes256(s3_endpoint: str) -> None:
    store = from_url("s3://images-bucket?sse=AES256")
    try:
        assert isinstance(store, S3Storage)
        settings = (store.bucket, store.prefix, store.sse, store.kms_key_id)
        assert settings == ("images-bucket", "", "AES256", None)
    finally:
        store.close()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("s3://bucket?kms=abc", "kms"),
        ("s3://bucket?endpoint=http://x&colour=blue", "colour, endpoint"),
        ("s3://bucket?sse=des", "sse"),
        ("s3://bucket?sse=AES256&kms_key_id=k", "kms_key_id"),
        ("s3:///prefix-only", "bucket"),
        ("s3://key:secret@bucket/prefix", "credentials"),
        ("s3://bucket?region=a&region=b", "more than once"),
        ("s3://bucket/../up", "segment"),
    ],
)
def test_from_url_rejects_malformed_s3_urls_with_a_clear_message(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        from_url(url)
