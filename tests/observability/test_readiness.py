"""/readyz answers 503 and names the dependency that failed: the database or the object store."""

from __future__ import annotations

import shutil
from pathlib import Path

import boto3
from botocore.config import Config

from storage import LocalStorage, S3Storage, Storage
from tests.support.observability import json_lines, sqlite_app
from tests.support.s3server import REGION, free_port


def test_a_database_in_a_removed_directory_makes_the_server_not_ready(tmp_path: Path, sqlite_template: Path,
                                                                      store: Storage, capsys):
    gone = tmp_path / "removed"
    gone.mkdir()
    url = f"sqlite:///{gone / 'referral.db'}"
    shutil.rmtree(gone)

    with sqlite_app(tmp_path, sqlite_template, store=store, database_url=url) as app:
        response = app.test_client().get("/readyz")

    assert response.status_code == 503
    assert response.get_json() == {"ready": False, "checks": {"database": "unavailable", "storage": "ok"}}
    # A failing probe is logged, unlike the passing ones.
    (line,) = [line for line in json_lines(capsys.readouterr().err) if line["logger"] == "referral.access"]
    assert (line["route"], line["status"]) == ("/readyz", 503)


def test_an_object_store_on_a_closed_port_makes_the_server_not_ready(tmp_path: Path, sqlite_template: Path):
    client = boto3.session.Session().client(
        "s3", endpoint_url=f"http://127.0.0.1:{free_port()}", region_name=REGION,
        aws_access_key_id="testing", aws_secret_access_key="testing",
        config=Config(connect_timeout=1, read_timeout=1, retries={"max_attempts": 1, "mode": "standard"}),
    )
    store = S3Storage("images", client=client)
    try:
        with sqlite_app(tmp_path, sqlite_template, store=store) as app:
            response = app.test_client().get("/readyz")
    finally:
        store.close()
        client.close()

    assert response.status_code == 503
    assert response.get_json() == {"ready": False, "checks": {"database": "ok", "storage": "unavailable"}}


def test_a_local_store_whose_folder_was_removed_makes_the_server_not_ready(tmp_path: Path, sqlite_template: Path):
    root = tmp_path / "objects"
    store = LocalStorage(root)

    with sqlite_app(tmp_path, sqlite_template, store=store) as app:
        ready = app.test_client().get("/readyz")
        shutil.rmtree(root)
        gone = app.test_client().get("/readyz")

    assert ready.status_code == 200
    assert gone.status_code == 503
    assert gone.get_json()["checks"] == {"database": "ok", "storage": "unavailable"}
