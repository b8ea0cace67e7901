"""The in-process token cache (referral/services/auth.py, docs/security.md): a token that checked out skips its two
SELECTs for API_TOKEN_CACHE_SECONDS; revoking it, or changing or deactivating its user, takes effect at once in
this process; a change made elsewhere (here: straight in the database) is seen once the entry runs out; expiry is
checked on every use. And the abuse limiters do no work on the requests they do not limit."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask_limiter import Limiter

from referral import create_app
from referral.config import Settings
from referral.db import utcnow
from referral.models import ApiToken
from referral.services import auth
from storage import Storage
from tests.support.settings import make_settings
from tests.support.world import Practice, World, referral_body

CACHE_SECONDS = 30


@pytest.fixture
def app_settings(tmp_path: Path, database_url: str) -> Settings:
    return make_settings(tmp_path, database_url, api_token_cache_seconds=CACHE_SECONDS)


@pytest.fixture(autouse=True)
def _empty_cache() -> Iterator[None]:
    auth.TOKENS.clear()
    yield
    auth.TOKENS.clear()


@contextmanager
def _statements(app: Flask) -> Iterator[list[str]]:
    engine = app.extensions["referral.engine"]
    seen: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if not statement.lstrip().upper().startswith(("SAVEPOINT", "RELEASE", "PRAGMA", "BEGIN")):
            seen.append(statement)

    sa.event.listen(engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        sa.event.remove(engine, "before_cursor_execute", count)


def _token_row(app: Flask, practice: Practice, role: str) -> uuid.UUID:
    with app.app_context(), app.extensions["referral.sessionmaker"]() as session:
        return session.scalars(sa.select(ApiToken.id).where(
            ApiToken.user_id == uuid.UUID(practice.users[role]))).one()


def _set_token(app: Flask, token_id: uuid.UUID, **values: Any) -> None:
    with app.app_context(), app.extensions["referral.sessionmaker"]() as session:
        session.execute(sa.update(ApiToken).where(ApiToken.id == token_id).values(**values))
        session.commit()


def test_a_cached_token_costs_no_statement(app: Flask, riverside: Practice):
    created = riverside.staff.post("/api/v1/referrals", referral_body(riverside))
    path = f"/api/v1/referrals/{created.get_json()['id']}"
    assert riverside.staff.get(path).status_code == 200
    with _statements(app) as seen:
        assert riverside.staff.get(path).status_code == 200
    assert not [s for s in seen if "api_tokens" in s or "FROM users" in s]
    # the case in three SELECTs and the audit row
    assert len(seen) == 4, seen


def test_revoking_a_token_takes_effect_at_once(riverside: Practice):
    assert riverside.staff.get("/api/v1/referrals").status_code == 200  # now cached
    [token] = riverside.staff.get("/api/v1/tokens").get_json()["items"]
    assert riverside.org_admin.delete(f"/api/v1/tokens/{token['id']}").status_code == 200
    assert riverside.staff.get("/api/v1/referrals").status_code == 401


def test_deactivating_or_changing_a_user_takes_effect_at_once(riverside: Practice):
    assert riverside.dentist.get("/api/v1/referrals").status_code == 200
    assert riverside.staff.post("/api/v1/referrals", referral_body(riverside)).status_code == 201
    # staff becomes billing: the cached role must not outlive the change
    changed = riverside.org_admin.patch(f"/api/v1/users/{riverside.users['staff']}", {"role": "billing"})
    assert changed.status_code == 200, changed.get_json()
    assert riverside.staff.post("/api/v1/referrals", referral_body(riverside)).status_code == 403
    deactivated = riverside.org_admin.patch(f"/api/v1/users/{riverside.users['dentist']}", {"active": False})
    assert deactivated.status_code == 200, deactivated.get_json()
    assert riverside.dentist.get("/api/v1/referrals").status_code == 401


def test_a_change_made_elsewhere_is_seen_once_the_entry_runs_out(app: Flask, riverside: Practice,
                                                                 monkeypatch: pytest.MonkeyPatch):
    assert riverside.staff.get("/api/v1/referrals").status_code == 200
    # another process revokes the token: this one still remembers it, for at most CACHE_SECONDS
    _set_token(app, _token_row(app, riverside, "staff"), revoked_at=utcnow())
    assert riverside.staff.get("/api/v1/referrals").status_code == 200
    later = time.monotonic() + CACHE_SECONDS + 1
    monkeypatch.setattr(auth.time, "monotonic", lambda: later)
    assert riverside.staff.get("/api/v1/referrals").status_code == 401


def test_a_cached_token_stops_at_its_expiry(app: Flask, riverside: Practice, monkeypatch: pytest.MonkeyPatch):
    assert riverside.staff.get("/api/v1/referrals").status_code == 200
    assert len(auth.TOKENS) >= 1
    past_expiry = utcnow() + timedelta(days=91)
    monkeypatch.setattr(auth, "utcnow", lambda: past_expiry)
    assert riverside.staff.get("/api/v1/referrals").status_code == 401


def test_a_refused_token_is_never_cached(world: World, riverside: Practice):
    before = len(auth.TOKENS)
    assert world.as_token("rfl_" + "x" * 43).get("/api/v1/referrals").status_code == 401
    assert len(auth.TOKENS) == before


def test_the_limiters_skip_the_requests_they_do_not_limit(app_settings: Settings, store: Storage,
                                                          monkeypatch: pytest.MonkeyPatch):
    checks: list[str] = []
    original = Limiter._check_request_limit

    def counted(self: Limiter, *args: Any, **kwargs: Any) -> None:
        checks.append(str(self._key_prefix))
        original(self, *args, **kwargs)

    monkeypatch.setattr(Limiter, "_check_request_limit", counted)
    application = create_app(app_settings, store=store)
    try:
        client = application.test_client()
        world = World(application, client)
        practice = world.practice("Limited Dental")
        checks.clear()
        assert client.get("/healthz").status_code == 200
        assert checks == []  # no token, not an upload: neither limiter runs
        assert practice.staff.get("/api/v1/referrals").status_code == 200
        assert checks == ["referral/auth-failures"]  # a token: only the rejected-token limiter
        created = practice.staff.post("/api/v1/referrals", referral_body(practice))
        checks.clear()
        upload = practice.staff.post(f"/api/v1/referrals/{created.get_json()['id']}/images")
        assert upload.status_code == 422  # no form: refused, but counted as an upload call
        assert checks == ["referral/auth-failures", "referral/uploads"]
    finally:
        application.extensions["referral.engine"].dispose()
