"""A failed step leaves no row without its object and no object without its row."""

from __future__ import annotations

import hashlib
import io
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import BinaryIO

import pytest
from flask import Flask
from sqlalchemy import event

from referral import create_app
from referral.config import Settings
from referral.models.enums import Role
from referral.services import intake
from referral.services.actor import Actor
from storage import Storage, StorageUnavailable, StoredObject
from tests.support import samples
from tests.support.api import assert_nothing_stored, new_referral, upload
from tests.support.store_doubles import DelegatingStore
from tests.support.world import Practice, World

pytestmark = pytest.mark.both_backends  # stored bytes or database behaviour: both set-ups


class FailingStore(DelegatingStore):
    """The real store, with switches that make writes fail the way an unreachable backend does:
    every write, or only writes of keys ending in ``fail_suffix``."""

    def __init__(self, inner: Storage) -> None:
        super().__init__(inner)
        self.fail_puts = False
        self.fail_suffix: str | None = None

    def put(self, key: str, stream: BinaryIO, *, content_type: str, size: int | None = None,
            sha256: str | None = None) -> StoredObject:
        if self.fail_puts or (self.fail_suffix is not None and key.endswith(self.fail_suffix)):
            raise StorageUnavailable("injected failure")
        return self.inner.put(key, stream, content_type=content_type, size=size, sha256=sha256)


@pytest.fixture
def failing_store(store: Storage) -> FailingStore:
    return FailingStore(store)


@pytest.fixture
def app(app_settings: Settings, failing_store: FailingStore) -> Iterator[Flask]:
    application = create_app(app_settings, store=failing_store)
    yield application
    application.extensions["referral.engine"].dispose()


def test_a_store_failure_answers_503_and_leaves_no_row(app: Flask, failing_store: FailingStore,
                                                       riverside: Practice):
    referral_id = new_referral(riverside)
    failing_store.fail_puts = True

    response = upload(riverside.staff, riverside, referral_id, samples.dicom_bytes())

    assert response.status_code == 503
    assert "nothing was stored" in response.get_json()["message"]
    assert_nothing_stored(app)


@pytest.mark.parametrize("suffix", [".preview.jpg", ".thumb.jpg"])
def test_a_store_failure_while_writing_a_preview_answers_503_and_leaves_nothing_behind(
        app: Flask, failing_store: FailingStore, riverside: Practice, suffix: str):
    referral_id = new_referral(riverside)
    failing_store.fail_suffix = suffix

    response = upload(riverside.staff, riverside, referral_id, samples.dicom_bytes())

    assert response.status_code == 503
    assert "nothing was stored" in response.get_json()["message"]
    assert_nothing_stored(app)
    failing_store.fail_suffix = None
    assert upload(riverside.staff, riverside, referral_id, samples.dicom_bytes()).status_code == 201


def test_a_store_failure_releases_the_idempotency_key_for_a_retry(app: Flask, failing_store: FailingStore,
                                                                  riverside: Practice):
    referral_id = new_referral(riverside)
    key = {"Idempotency-Key": "retry-after-outage"}
    failing_store.fail_puts = True
    failed = upload(riverside.staff, riverside, referral_id, samples.dicom_bytes(), headers=key)
    failing_store.fail_puts = False

    retried = upload(riverside.staff, riverside, referral_id, samples.dicom_bytes(), headers=key)

    assert failed.status_code == 503
    assert retried.status_code == 201


def test_a_failed_commit_deletes_the_object_already_written(app: Flask, world: World, riverside: Practice):
    referral_id = new_referral(riverside)
    data = samples.dicom_bytes()
    spool = io.BytesIO(data)

    def break_the_commit(_session: object) -> None:
        raise RuntimeError("database went away")

    with app.app_context(), app.extensions["referral.sessionmaker"]() as session:
        event.listen(session, "before_commit", break_the_commit)
        actor = Actor(user_id=uuid.UUID(riverside.users["staff"]), organization_id=uuid.UUID(riverside.id),
                      role=Role.STAFF)
        with pytest.raises(RuntimeError, match="database went away"):
            intake.intake_image(
                session, app.extensions["referral.storage"], actor, uuid.UUID(referral_id),
                {"kind": "periapical", "teeth": ["19"], "reason": "r",
                 "captured_at": datetime(2026, 1, 5, 10, 30, tzinfo=UTC),
                 "captured_by_provider_id": uuid.UUID(riverside.hygienist_provider_id)},
                intake.Upload(stream=spool, size=len(data), sha256=hashlib.sha256(data).hexdigest(), filename="a.dcm"),
            )

    assert_nothing_stored(app)
