"""Duplicates on PostgreSQL and S3: a client that retries an upload whose response it never saw, and two
copies of one request arriving at the same moment, make exactly one image."""

from __future__ import annotations

import hashlib
import threading
from typing import Any

from flask import Flask

from tests.support import samples
from tests.support.api import new_referral, upload
from tests.support.faults import assert_nothing_lost_and_nothing_extra, image_keys, stored_images
from tests.support.world import Client, Practice


def _download(practice: Practice) -> Any:
    def fetch(image_id: str) -> bytes:
        response = practice.staff.get(f"/api/v1/images/{image_id}/content")
        assert response.status_code == 200
        return bytes(response.data)
    return fetch


def _at_once(app: Flask, practice: Practice, referral_id: str, data: bytes, key: str, copies: int) -> list[Any]:
    """``copies`` identical requests released together, each on its own connection."""
    barrier = threading.Barrier(copies)
    responses: list[Any] = [None] * copies
    errors: list[BaseException] = []

    def send(slot: int) -> None:
        try:
            client = Client(app.test_client(), practice.staff.token)
            barrier.wait(timeout=10)
            responses[slot] = upload(client, practice, referral_id, data, headers={"Idempotency-Key": key})
        except BaseException as exc:  # re-raised in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=send, args=(slot,)) for slot in range(copies)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    return responses


def test_concurrent_copies_of_one_keyed_upload_create_one_image(app: Flask, riverside: Practice):
    referral_id = new_referral(riverside)
    data = samples.dicom_bytes()

    responses = _at_once(app, riverside, referral_id, data, "same-moment-1", copies=4)

    created = [r for r in responses if r.status_code == 201 and "Idempotent-Replayed" not in r.headers]
    replays = [r for r in responses if r.status_code == 201 and "Idempotent-Replayed" in r.headers]
    busy = [r for r in responses if r.status_code == 409]
    assert len(created) == 1, [r.status_code for r in responses]
    assert len(created) + len(replays) + len(busy) == 4
    assert all(r.get_json() == created[0].get_json() for r in replays)
    assert all("still being processed" in r.get_json()["message"] for r in busy)
    image = created[0].get_json()
    assert len(image_keys(app)) == 3, "one original, one preview, one thumbnail"
    # A retry after the dust settles (the client never saw its answer) gets the first response.
    retry = upload(riverside.staff, riverside, referral_id, data, headers={"Idempotency-Key": "same-moment-1"})
    assert (retry.status_code, retry.get_json()) == (201, image)
    assert_nothing_lost_and_nothing_extra(app, {image["id"]: hashlib.sha256(data).hexdigest()},
                                          _download(riverside))


def test_concurrent_uploads_with_different_keys_each_create_their_own_image(app: Flask, riverside: Practice):
    referral_id = new_referral(riverside)
    barrier = threading.Barrier(3)
    results: dict[str, Any] = {}
    bodies = {f"k{n}": samples.dicom_bytes(kvp=60.0 + n) for n in range(3)}

    def send(key: str) -> None:
        client = Client(app.test_client(), riverside.staff.token)
        barrier.wait(timeout=10)
        results[key] = upload(client, riverside, referral_id, bodies[key], headers={"Idempotency-Key": key})

    threads = [threading.Thread(target=send, args=(key,)) for key in bodies]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert sorted(r.status_code for r in results.values()) == [201, 201, 201]
    acknowledged = {r.get_json()["id"]: hashlib.sha256(bodies[key]).hexdigest() for key, r in results.items()}
    assert len(stored_images(app)) == 3
    assert_nothing_lost_and_nothing_extra(app, acknowledged, _download(riverside))
