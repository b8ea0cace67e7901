"""Upload forms (presigned POST) and copies: what the direct-to-storage upload relies on."""

from __future__ import annotations

import base64
import hashlib
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests

from storage import (
    InvalidKey,
    LocalStorage,
    ObjectExists,
    ObjectHead,
    ObjectNotFound,
    PresignNotSupported,
    S3Storage,
    Storage,
    StorageError,
)
from tests.support.s3server import REGION
from tests.support.storage import CONTENT_TYPE, read_back

FORM = {"max_bytes": 1000, "content_type": CONTENT_TYPE, "expires_in": 900}


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Storage]:
    backend: Storage
    if request.param == "local":
        backend = LocalStorage(tmp_path / "objects")
    else:
        backend = S3Storage(request.getfixturevalue("s3_bucket"), prefix="tenant")
    yield backend
    backend.close()


@pytest.fixture
def kms_key_id(s3_endpoint: str) -> str:
    # moto serves every service from one port, so KMS is reached at the S3 endpoint.
    kms = boto3.session.Session().client("kms", endpoint_url=s3_endpoint, region_name=REGION)
    try:
        return str(kms.create_key(Description="upload form tests")["KeyMetadata"]["KeyId"])
    finally:
        kms.close()


def policy_of(fields: dict[str, str]) -> dict[str, Any]:
    return dict(json.loads(base64.b64decode(fields["policy"])))


def test_copy_stores_the_same_bytes_under_the_new_key_and_keeps_the_source(store: Storage) -> None:
    source = store.put("uploads/a", io.BytesIO(b"radiograph bytes"), content_type=CONTENT_TYPE)

    store.copy("uploads/a", "images/a")

    assert read_back(store, "images/a") == (source.size, source.sha256)
    assert store.exists("uploads/a")


def test_copy_refuses_a_taken_destination_and_leaves_it_unchanged(store: Storage) -> None:
    store.put("uploads/a", io.BytesIO(b"new"), content_type=CONTENT_TYPE)
    store.put("images/a", io.BytesIO(b"original"), content_type=CONTENT_TYPE)

    with pytest.raises(ObjectExists, match="images/a"):
        store.copy("uploads/a", "images/a")

    with store.open("images/a") as fh:
        assert fh.read() == b"original"


def test_copy_of_a_missing_source_raises_object_not_found_and_writes_nothing(store: Storage) -> None:
    with pytest.raises(ObjectNotFound):
        store.copy("uploads/missing", "images/a")
    assert list(store.keys()) == []


@pytest.mark.parametrize(("source", "destination"), [("../x", "ok"), ("ok", "a//b")])
def test_copy_refuses_invalid_keys(store: Storage, source: str, destination: str) -> None:
    store.put("ok", io.BytesIO(b"x"), content_type=CONTENT_TYPE)
    with pytest.raises(InvalidKey):
        store.copy(source, destination)


def test_local_storage_cannot_issue_upload_forms(tmp_path: Path) -> None:
    store = LocalStorage(tmp_path / "objects")

    with pytest.raises(PresignNotSupported) as raised:
        store.presign_post("uploads/a", **FORM)

    assert isinstance(raised.value, StorageError)
    with pytest.raises(InvalidKey):
        store.presign_post("../a", **FORM)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [({"expires_in": 901}, "900"), ({"expires_in": 0}, "900"), ({"max_bytes": 0}, "max_bytes"),
     ({"content_type": "text/html\r\nX: y"}, "control")],
)
def test_upload_forms_are_refused_beyond_fifteen_minutes_or_with_bad_limits(
        s3_bucket: str, overrides: dict[str, Any], message: str) -> None:
    store = S3Storage(s3_bucket)
    try:
        with pytest.raises(ValueError, match=message):
            store.presign_post("uploads/a", **{**FORM, **overrides})
    finally:
        store.close()


def test_an_upload_form_pins_key_type_size_and_expiry_and_a_browser_post_stores_the_file(
        s3_bucket: str, s3_client: Any) -> None:
    store = S3Storage(s3_bucket, prefix="tenant")
    try:
        form = store.presign_post("uploads/a", max_bytes=1000, content_type=CONTENT_TYPE, expires_in=600)
    finally:
        store.close()

    conditions = policy_of(form.fields)["conditions"]
    assert form.fields["key"] == "tenant/uploads/a"
    assert {"key": "tenant/uploads/a"} in conditions
    assert {"Content-Type": CONTENT_TYPE} in conditions
    assert ["content-length-range", 1, 1000] in conditions
    assert not any("x-amz-server-side-encryption" in str(c) for c in conditions)
    with requests.post(form.url, data=form.fields, files={"file": ("x.bin", b"posted", CONTENT_TYPE)},
                       timeout=10) as response:
        assert response.status_code in (200, 201, 204)
    assert s3_client.get_object(Bucket=s3_bucket, Key="tenant/uploads/a")["Body"].read() == b"posted"


def test_an_upload_form_asks_for_the_stores_kms_encryption_and_a_copy_is_encrypted_too(
        s3_bucket: str, s3_client: Any, kms_key_id: str) -> None:
    store = S3Storage(s3_bucket, kms_key_id=kms_key_id)
    try:
        form = store.presign_post("uploads/a", **FORM)
        store.put("uploads/b", io.BytesIO(b"x"), content_type=CONTENT_TYPE)
        store.copy("uploads/b", "images/b")
    finally:
        store.close()

    assert form.fields["x-amz-server-side-encryption"] == "aws:kms"
    assert form.fields["x-amz-server-side-encryption-aws-kms-key-id"] == kms_key_id
    conditions = policy_of(form.fields)["conditions"]
    assert {"x-amz-server-side-encryption": "aws:kms"} in conditions
    assert {"x-amz-server-side-encryption-aws-kms-key-id": kms_key_id} in conditions
    head = s3_client.head_object(Bucket=s3_bucket, Key="images/b")
    assert head["ServerSideEncryption"] == "aws:kms"
    assert kms_key_id in head["SSEKMSKeyId"]


def test_an_upload_form_asks_for_aes256_when_the_store_uses_it(s3_bucket: str) -> None:
    store = S3Storage(s3_bucket, sse="AES256")
    try:
        form = store.presign_post("uploads/a", **FORM)
    finally:
        store.close()

    assert form.fields["x-amz-server-side-encryption"] == "AES256"
    assert "x-amz-server-side-encryption-aws-kms-key-id" not in form.fields
    assert {"x-amz-server-side-encryption": "AES256"} in policy_of(form.fields)["conditions"]


def test_a_copy_carries_a_digest_only_where_the_store_computed_it(store: Storage) -> None:
    payload = b"radiograph bytes" * 100
    store.put("uploads/a", io.BytesIO(payload), content_type=CONTENT_TYPE)

    store.copy("uploads/a", "images/a")

    # S3 computes the copy's SHA-256 as it writes it; a folder on disk vouches for nothing.
    expected = hashlib.sha256(payload).hexdigest() if store.backend == "s3" else None
    assert store.head("images/a") == ObjectHead(size=len(payload), sha256=expected)
    assert store.head("uploads/a").sha256 is None


def test_an_upload_form_with_a_digest_pins_s3s_sha256_checksum_in_its_policy(s3_bucket: str) -> None:
    data = b"the file the client declared"
    digest = hashlib.sha256(data)
    store = S3Storage(s3_bucket, prefix="tenant")
    try:
        form = store.presign_post("uploads/a", **FORM, sha256=digest.hexdigest())
        with pytest.raises(ValueError, match="64"):
            store.presign_post("uploads/b", **FORM, sha256="0" * 63)
        with pytest.raises(ValueError, match="64"):
            store.presign_post("uploads/b", **FORM, sha256=digest.hexdigest().upper())
    finally:
        store.close()

    sent = base64.b64encode(digest.digest()).decode()
    assert form.fields["x-amz-checksum-algorithm"] == "SHA256"
    assert form.fields["x-amz-checksum-sha256"] == sent
    conditions = policy_of(form.fields)["conditions"]
    assert {"x-amz-checksum-algorithm": "SHA256"} in conditions
    assert {"x-amz-checksum-sha256": sent} in conditions


def test_moto_stores_a_body_whose_digest_differs_from_the_forms_and_keeps_no_checksum(
        s3_bucket: str, s3_client: Any) -> None:
    """What the test S3 does with the checksum form fields, so that the application's tests claim no more.

    S3 refuses such a POST (BadDigest) and keeps the digest with the object. moto's server accepts the fields,
    stores the body whatever its digest and keeps no checksum for it: the completion's own comparison (on the
    copy, whose SHA-256 moto does compute) is what refuses the file in these tests."""
    store = S3Storage(s3_bucket)
    try:
        form = store.presign_post("uploads/a", **FORM, sha256=hashlib.sha256(b"declared").hexdigest())
        with requests.post(form.url, data=form.fields, files={"file": ("x.bin", b"something else", CONTENT_TYPE)},
                           timeout=10) as response:
            accepted = response.status_code
        posted = store.head("uploads/a")
        store.copy("uploads/a", "images/a")
        copied = store.head("images/a")
    finally:
        store.close()

    assert accepted in (200, 201, 204)
    assert posted == ObjectHead(size=len(b"something else"), sha256=None)
    assert copied.sha256 == hashlib.sha256(b"something else").hexdigest()
    head = s3_client.head_object(Bucket=s3_bucket, Key="uploads/a", ChecksumMode="ENABLED")
    assert "ChecksumSHA256" not in head


def test_local_storage_refuses_a_malformed_digest_before_saying_it_cannot_issue_forms(tmp_path: Path) -> None:
    store = LocalStorage(tmp_path / "objects")

    with pytest.raises(ValueError, match="64"):
        store.presign_post("uploads/a", **FORM, sha256="xyz")
    with pytest.raises(PresignNotSupported):
        store.presign_post("uploads/a", **FORM, sha256="a" * 64)
