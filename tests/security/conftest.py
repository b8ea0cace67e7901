"""One app and one store per backend for a whole test module: the security suites send hundreds of
requests at one fixture world, so it is built once and every test checks that nothing changed."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from referral import create_app
from storage import LocalStorage, S3Storage, Storage
from tests.support.s3server import remove_bucket
from tests.support.settings import BACKENDS, make_settings, truncate_postgres
from tests.support.snapshots import SharedApp


@pytest.fixture(scope="module", params=BACKENDS)
def shared_app(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SharedApp]:
    backend = str(request.param)
    root = tmp_path_factory.mktemp(f"security-{backend}")
    store: Storage
    if backend == "sqlite-local":
        path = root / "referral.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        database_url = f"sqlite:///{path}"
        store = LocalStorage(root / "objects")
        bucket = None
    else:
        database_url = request.getfixturevalue("migrated_postgres")
        truncate_postgres(database_url)
        s3_client = request.getfixturevalue("s3_client")
        bucket = f"security-{uuid.uuid4().hex[:20]}"
        s3_client.create_bucket(Bucket=bucket)
        store = S3Storage(bucket, prefix="referral")
    # A small upload limit keeps the oversize cases of the corpus quick.
    settings = make_settings(Path(root), database_url, webhook_allow_private=True, max_upload_bytes=1024 * 1024)
    app = create_app(settings, store=store)
    try:
        yield SharedApp(backend=backend, app=app, client=app.test_client(), store=store)
    finally:
        app.extensions["referral.engine"].dispose()
        if isinstance(store, S3Storage):
            store.close()
            remove_bucket(request.getfixturevalue("s3_client"), bucket)
            truncate_postgres(database_url)
