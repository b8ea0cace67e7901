"""Abuse limits at their real default values: rejected API tokens per address and uploads per user are
refused with 429, the JSON error shape and Retry-After, on the in-memory counts and on Redis."""

from __future__ import annotations

import io
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import sqlalchemy as sa
from flask import Flask

from referral import create_app
from referral.config import (
    DEFAULT_RATELIMIT_AUTH_FAILURES,
    DEFAULT_RATELIMIT_UPLOADS,
    ConfigError,
    Settings,
    load_settings,
)
from referral.http.ratelimit import AUTH_FAILURES_MESSAGE, UPLOADS_MESSAGE
from referral.models import Image
from storage import LocalStorage
from tests.support import samples
from tests.support.api import new_referral, upload
from tests.support.settings import REQUIRE_POSTGRES, make_settings
from tests.support.world import Client, Practice, World

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
AUTH_FAILURES = 20  # DEFAULT_RATELIMIT_AUTH_FAILURES: "20 per 15 minutes"
UPLOADS = 120  # DEFAULT_RATELIMIT_UPLOADS: "120 per minute"
ATTACKER = "203.0.113.7"
NEIGHBOUR = "198.51.100.20"


def test_the_defaults_are_the_documented_limits():
    settings = load_settings({"APP_ENV": "test"})
    assert (settings.ratelimit_auth_failures, settings.ratelimit_uploads) == (
        DEFAULT_RATELIMIT_AUTH_FAILURES, DEFAULT_RATELIMIT_UPLOADS) == (
        f"{AUTH_FAILURES} per 15 minutes", f"{UPLOADS} per minute")
    assert settings.ratelimit_storage_url == "memory://"


@pytest.mark.parametrize(("name", "value"), [
    ("RATELIMIT_AUTH_FAILURES", "twenty"),
    ("RATELIMIT_UPLOADS", "120 per fortnight"),
    ("RATELIMIT_STORAGE_URL", "memcached://127.0.0.1:11211"),
    ("RATELIMIT_STORAGE_URL", "127.0.0.1:6379"),
])
def test_a_limit_or_store_the_server_cannot_use_stops_it_at_start(name: str, value: str):
    with pytest.raises(ConfigError, match=name):
        load_settings({"APP_ENV": "test", name: value})


@pytest.fixture
def backend() -> str:
    # The counts do not touch the database.
    return "sqlite-local"


def _redis_or_skip() -> redis.Redis:
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2, socket_timeout=2)
    try:
        client.ping()
    except redis.exceptions.RedisError as exc:
        client.close()
        message = f"Redis at {REDIS_URL} is not reachable ({type(exc).__name__})"
        if REQUIRE_POSTGRES:
            pytest.fail(message + "; REQUIRE_POSTGRES=1 makes this a failure", pytrace=False)
        pytest.skip(message)
    return client


class Counts:
    """Where the app keeps its counts; with Redis, the keys under this test's own prefix."""

    def __init__(self, url: str, prefix: str, client: redis.Redis | None) -> None:
        self.url = url
        self.prefix = prefix
        self.client = client

    def redis_keys(self) -> list[str]:
        assert self.client is not None
        return sorted(key.decode() for key in self.client.scan_iter(match=f"*{self.prefix}*"))


@pytest.fixture(params=["memory", "redis"])
def counts(request: pytest.FixtureRequest) -> Iterator[Counts]:
    prefix = f"referral-test-{uuid.uuid4().hex}"
    if request.param == "memory":
        yield Counts("memory://", prefix, None)
        return
    client = _redis_or_skip()
    try:
        yield Counts(REDIS_URL, prefix, client)
    finally:
        for key in client.scan_iter(match=f"*{prefix}*"):
            client.delete(key)
        client.close()


@pytest.fixture
def app_settings(tmp_path: Path, database_url: str, counts: Counts) -> Settings:
    return make_settings(tmp_path, database_url, ratelimit_storage_url=counts.url, ratelimit_key_prefix=counts.prefix,
                         ratelimit_auth_failures=DEFAULT_RATELIMIT_AUTH_FAILURES,
                         ratelimit_uploads=DEFAULT_RATELIMIT_UPLOADS)


def from_address(client: Client, address: str, path: str = "/api/v1/patients", **kwargs: Any) -> Any:
    return client.get(path, environ_base={"REMOTE_ADDR": address}, **kwargs)


def assert_too_many(response: Any, message: str, longest_wait: int) -> None:
    assert response.status_code == 429, response.get_json()
    assert response.get_json() == {"code": 429, "status": "Too Many Requests", "message": message}
    assert 1 <= int(response.headers["Retry-After"]) <= longest_wait


# --- rejected tokens, per address --------------------------------------------------------------------


def test_an_address_past_its_rejected_tokens_is_refused_even_with_a_valid_one(world: World, riverside: Practice,
                                                                             counts: Counts):
    guesses = [from_address(world.as_token(f"guess-{n}"), ATTACKER) for n in range(AUTH_FAILURES)]
    one_more = from_address(world.as_token("guess-next"), ATTACKER)
    right_token = from_address(riverside.staff, ATTACKER)

    assert [r.status_code for r in guesses] == [401] * AUTH_FAILURES
    assert_too_many(one_more, AUTH_FAILURES_MESSAGE, 15 * 60)
    # a token that works is refused too: the answers tell the guesser nothing
    assert_too_many(right_token, AUTH_FAILURES_MESSAGE, 15 * 60)
    if counts.client is not None:
        assert counts.redis_keys(), "the counts were not kept in Redis"


def test_the_count_is_per_address(world: World, riverside: Practice):
    for n in range(AUTH_FAILURES + 1):
        from_address(world.as_token(f"guess-{n}"), ATTACKER)

    assert from_address(riverside.staff, NEIGHBOUR).status_code == 200
    assert from_address(world.as_token("typo"), NEIGHBOUR).status_code == 401
    assert from_address(riverside.staff, ATTACKER).status_code == 429


def test_malformed_headers_and_unknown_api_paths_count_as_rejected_tokens(world: World, riverside: Practice):
    malformed = [world.anonymous.get("/api/v1/patients", headers={"Authorization": f"Basic dXNlcjp{n}"},
                                     environ_base={"REMOTE_ADDR": ATTACKER}) for n in range(AUTH_FAILURES // 2)]
    unrouted = [from_address(world.as_token(f"guess-{n}"), ATTACKER, f"/api/v1/no-such-thing/{n}")
                for n in range(AUTH_FAILURES // 2)]

    assert {r.status_code for r in malformed + unrouted} == {401}
    assert from_address(riverside.staff, ATTACKER).status_code == 429


def test_valid_tokens_and_calls_without_a_token_are_not_counted(world: World, riverside: Practice):
    accepted = [from_address(riverside.staff, ATTACKER) for _ in range(AUTH_FAILURES + 5)]
    no_token = [from_address(world.anonymous, ATTACKER) for _ in range(AUTH_FAILURES + 5)]
    guesses = [from_address(world.as_token(f"guess-{n}"), ATTACKER) for n in range(AUTH_FAILURES)]

    assert {r.status_code for r in accepted} == {200}
    assert {r.status_code for r in no_token} == {401}
    assert {r.status_code for r in guesses} == {401}
    assert from_address(world.as_token("guess-next"), ATTACKER).status_code == 429


def test_pages_and_health_checks_are_not_limited_for_a_blocked_address(world: World, riverside: Practice):
    for n in range(AUTH_FAILURES + 1):
        from_address(world.as_token(f"guess-{n}"), ATTACKER)

    assert world.client.get("/healthz", environ_base={"REMOTE_ADDR": ATTACKER}).status_code == 200
    assert world.client.get("/login", environ_base={"REMOTE_ADDR": ATTACKER}).status_code == 200


# --- uploads, per user -------------------------------------------------------------------------------


def _upload_attempts(client: Client, practice: Practice, referral_id: str, count: int) -> list[int]:
    """Calls to the three upload routes, in turn; the local store refuses the form and the rest are
    incomplete, which counts all the same."""
    statuses = []
    for n in range(count):
        route = n % 3
        if route == 0:
            response = client.post(f"/api/v1/referrals/{referral_id}/images/uploads")
        elif route == 1:
            response = client.post(f"/api/v1/referrals/{referral_id}/images/uploads/{uuid.uuid4()}/complete",
                                   {"size": 1, "sha256": "0" * 64})
        else:
            response = client.post(f"/api/v1/referrals/{referral_id}/images",
                                   data={"file": (io.BytesIO(b""), "empty.dcm")}, content_type="multipart/form-data")
        statuses.append(response.status_code)
    return statuses


def image_rows(app: Flask) -> int:
    with app.extensions["referral.sessionmaker"]() as session:
        return session.scalar(sa.select(sa.func.count()).select_from(Image)) or 0


def test_a_user_past_the_upload_limit_is_refused_and_nothing_is_stored(app: Flask, riverside: Practice,
                                                                       counts: Counts):
    referral_id = new_referral(riverside)
    attempts = _upload_attempts(riverside.staff, riverside, referral_id, UPLOADS)

    refused = upload(riverside.staff, riverside, referral_id, samples.dicom_bytes())

    assert 429 not in attempts
    assert_too_many(refused, UPLOADS_MESSAGE, 60)
    assert image_rows(app) == 0
    assert list(app.extensions["referral.storage"].keys("images/")) == []
    # reading is not uploading
    assert riverside.staff.get(f"/api/v1/referrals/{referral_id}/images").status_code == 200
    if counts.client is not None:
        assert counts.redis_keys(), "the counts were not kept in Redis"


def test_the_upload_limit_is_per_user(app: Flask, riverside: Practice, hillside: Practice):
    referral_id = new_referral(riverside)
    _upload_attempts(riverside.staff, riverside, referral_id, UPLOADS)
    assert upload(riverside.staff, riverside, referral_id, samples.dicom_bytes()).status_code == 429

    colleague = upload(riverside.dentist, riverside, referral_id, samples.dicom_bytes())
    other_practice = upload(hillside.staff, hillside, new_referral(hillside), samples.dicom_bytes())

    assert colleague.status_code == 201, colleague.get_json()
    assert other_practice.status_code == 201, other_practice.get_json()
    assert image_rows(app) == 2


def test_uploads_under_the_limit_are_stored(app: Flask, riverside: Practice):
    referral_id = new_referral(riverside)
    _upload_attempts(riverside.staff, riverside, referral_id, UPLOADS - 1)

    last = upload(riverside.staff, riverside, referral_id, samples.dicom_bytes())

    assert last.status_code == 201, last.get_json()
    assert image_rows(app) == 1


# --- Redis unreachable --------------------------------------------------------------------------------


def test_with_redis_unreachable_the_counts_go_on_in_memory(tmp_path: Path, database_url: str):
    settings = make_settings(tmp_path, database_url, ratelimit_storage_url="redis://127.0.0.1:1/0",
                             ratelimit_auth_failures=DEFAULT_RATELIMIT_AUTH_FAILURES,
                             ratelimit_uploads=DEFAULT_RATELIMIT_UPLOADS)
    app = create_app(settings, store=LocalStorage(tmp_path / "objects"))
    try:
        world = World(app, app.test_client())
        riverside = world.practice("Riverside Family Dental")
        guesses = [from_address(world.as_token(f"guess-{n}"), ATTACKER) for n in range(AUTH_FAILURES)]

        assert from_address(riverside.staff, NEIGHBOUR).status_code == 200
        assert {r.status_code for r in guesses} == {401}
        assert from_address(riverside.staff, ATTACKER).status_code == 429
    finally:
        app.extensions["referral.engine"].dispose()
