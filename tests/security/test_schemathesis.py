"""Schemathesis against the served OpenAPI document.

Every operation is called in-process with cases generated from the document (valid and invalid ones), sent
with the token of one of several roles, or none, and aimed at the real ids of a world built through the API
or at generated ones. Whatever is sent, the server must not answer 5xx, and every answer must be what the
document says: a documented status code, a documented content type and a body that fits its schema.

The run is bounded (``EXAMPLES_PER_ROLE`` cases per role and operation) and derandomized, so CI sees the same
cases every time. It runs on PostgreSQL and S3 (moto's server), the production pairing;
``FUZZ_BACKEND=sqlite-local`` runs it on SQLite and the local folder instead. The operations are parametrized
here rather than through schemathesis' own pytest plugin, whose items all get the same node id under pytest 9.

Building the world is most of a test's cost, so reads share one: the GET operations of a resource (the path's
first segment after /api/v1) run one after another against the same world, since a read leaves it as it was.
Every operation that may change something (POST, PUT, PATCH, DELETE) gets a world of its own.
"""

from __future__ import annotations

import io
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from referral import create_app
from referral.config import Settings
from storage import LocalStorage
from tests.support import samples
from tests.support.api import draft_body, new_referral, ready_referral, submit, upload
from tests.support.settings import make_settings
from tests.support.webhooks import register
from tests.support.world import Practice, World

EXAMPLES_PER_ROLE = 5
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


def _served_document() -> dict[str, Any]:
    """The document as the app serves it at /api/openapi.json."""
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        app = create_app(make_settings(root, f"sqlite:///{root / 'schema.db'}"), store=LocalStorage(root / "objects"))
        try:
            response = app.test_client().get("/api/openapi.json")
            assert response.status_code == 200
            return dict(response.get_json())
        finally:
            app.extensions["referral.engine"].dispose()


SCHEMA = schemathesis.openapi.from_dict(_served_document())
OPERATIONS = [result.ok() for result in SCHEMA.get_all_operations()]


@dataclass(frozen=True)
class Group:
    """Operations run against one world: a single operation that may change it, or the reads of one resource."""

    label: str
    operations: tuple[Any, ...]


def _resource(path: str) -> str:
    parts = path.strip("/").split("/")
    return "/".join(parts[:3]) if parts[:2] == ["api", "v1"] else parts[0]


def _grouped(operations: list[Any]) -> list[Group]:
    reads: dict[str, list[Any]] = {}
    groups: list[Group] = []
    for operation in operations:
        if operation.method.upper() == "GET":
            reads.setdefault(_resource(operation.path), []).append(operation)
        else:
            groups.append(Group(operation.label, (operation,)))
    for resource, members in reads.items():
        label = members[0].label if len(members) == 1 else f"GET /{resource} ({len(members)} reads)"
        groups.append(Group(label, tuple(members)))
    return groups


GROUPS = _grouped(OPERATIONS)


@dataclass
class Fixtures:
    """Tokens by role (None: no Authorization header) and real ids by path parameter name."""

    tokens: dict[str, str | None]
    ids: dict[str, list[str]]


def build(world: World) -> Fixtures:
    """Two practices' worth of records in every state the operations care about."""
    riverside = world.practice("Riverside Family Dental")
    endo_org = world.reader_practice("Coastal Endodontics")
    reader = world.reader(endo_org)

    signed = ready_referral(riverside)
    assert submit(riverside, signed).status_code == 200
    assert reader.client.post(f"/api/v1/referrals/{signed}/accept").status_code == 200
    images = [i["id"] for i in riverside.staff.get(f"/api/v1/referrals/{signed}").get_json()["images"]]
    assert reader.client.put(f"/api/v1/referrals/{signed}/report", draft_body(images)).status_code == 200
    assert reader.client.post(f"/api/v1/referrals/{signed}/report/sign").status_code == 200

    draft = ready_referral(riverside)
    photo = upload(riverside.staff, riverside, draft, samples.jpeg_bytes(), filename="photo.jpg",
                   kind="photo_intraoral")
    assert photo.status_code == 201, photo.get_json()
    form = riverside.staff.client.put(
        f"/api/v1/referrals/{draft}/consent/form", headers={"Authorization": f"Bearer {riverside.staff.token}"},
        data={"file": (io.BytesIO(samples.png_bytes()), "consent.png")}, content_type="multipart/form-data")
    assert form.status_code == 200, form.get_json()

    claims = riverside.billing.get(f"/api/v1/referrals/{signed}/claims").get_json()["claims"]
    reader_claims = reader.client.get(f"/api/v1/referrals/{signed}/claims").get_json()["claims"]
    webhook = register(riverside, "https://hooks.example.com/referral")
    return Fixtures(
        tokens={"staff": riverside.staff.token, "dentist": riverside.dentist.token,
                "billing": riverside.billing.token, "org_admin": riverside.org_admin.token,
                "specialist": reader.client.token, "admin": world.admin.token, "none": None,
                "made-up": "not-a-real-token"},
        ids={"organization_id": [riverside.id, endo_org], "patient_id": [riverside.patient_id],
             "referral_id": [signed, draft], "image_id": [*images, photo.get_json()["id"]],
             "claim_id": [c["id"] for c in claims] + [c["id"] for c in reader_claims],
             "webhook_id": [webhook]},
    )


@pytest.fixture
def backend() -> str:
    # The production pairing by default: a handler may fail on PostgreSQL where SQLite lets it through.
    return os.environ.get("FUZZ_BACKEND", "postgres-s3")


@pytest.fixture
def app_settings(tmp_path: Path, database_url: str) -> Settings:
    # Generated webhook URLs are then checked for their form only, without DNS lookups of made-up hosts.
    return make_settings(tmp_path, database_url, webhook_allow_private=True)


@pytest.fixture
def fixtures(world: World) -> Fixtures:
    return build(world)


def cases(operation: Any) -> st.SearchStrategy[Any]:
    return st.one_of(operation.as_strategy(GenerationMode.POSITIVE), operation.as_strategy(GenerationMode.NEGATIVE))


def examples_for(role: str) -> int:
    # Without a valid token every call stops at the door, so a few cases show the refusal is documented.
    return 3 if role in ("none", "made-up") else EXAMPLES_PER_ROLE


@pytest.mark.slow
@pytest.mark.parametrize("group", GROUPS, ids=lambda group: group.label)
def test_every_operation_answers_as_documented_and_never_with_a_server_error(group: Group, app: Flask,
                                                                              fixtures: Fixtures):
    for operation in group.operations:
        try:
            _fuzz(operation, app, fixtures)
        except BaseException as exc:
            exc.add_note(f"operation: {operation.label}")
            raise


def _fuzz(operation: Any, app: Flask, fixtures: Fixtures) -> None:
    seen: dict[tuple[str, int], int] = {}

    def run_as(role: str) -> None:
        @settings(max_examples=examples_for(role), derandomize=True, database=None, deadline=None,
                  print_blob=False, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                                           HealthCheck.data_too_large])
        @given(case=cases(operation), data=st.data())
        def check(case: Any, data: st.DataObject) -> None:
            for name in list(case.path_parameters or {}):
                # Mostly the world's own ids (found, or another practice's), sometimes the generated one.
                if name in fixtures.ids and data.draw(st.integers(0, 4), label=f"{name} source") < 4:
                    case.path_parameters[name] = data.draw(st.sampled_from(fixtures.ids[name]), label=name)
            headers = {key: value for key, value in (case.headers or {}).items() if key.lower() != "authorization"}
            if fixtures.tokens[role] is not None:
                headers["Authorization"] = f"Bearer {fixtures.tokens[role]}"
            case.headers = headers
            response = case.call_and_validate(app=app, checks=CHECKS)
            seen[role, response.status_code] = seen.get((role, response.status_code), 0) + 1

        check()

    for role in fixtures.tokens:
        run_as(role)
    # Every role was answered; a valid token is never turned away as unauthenticated, and no token always is.
    assert {role for role, _ in seen} == set(fixtures.tokens)
    assert {status for (role, status) in seen if role in ("none", "made-up")} == {401}
    assert not [role for (role, status) in seen if status == 401 and role not in ("none", "made-up")]


def test_every_operation_is_run_once_and_only_reads_share_a_world():
    run = [operation.label for group in GROUPS for operation in group.operations]
    assert sorted(run) == sorted(operation.label for operation in OPERATIONS)
    assert len(set(run)) == len(run)
    for group in GROUPS:
        if len(group.operations) > 1:
            assert {operation.method.upper() for operation in group.operations} == {"GET"}
    assert len(GROUPS) < len(OPERATIONS)


# --- what the run found, pinned down -----------------------------------------------------------------


@pytest.mark.parametrize("given_at", ["0001-01-01T00:00:00+00:01", "9999-12-31T23:59:59-01:00"])
def test_a_timestamp_with_no_utc_equivalent_is_refused_with_422(riverside: Practice, given_at: str):
    referral_id = new_referral(riverside)

    response = riverside.staff.put(f"/api/v1/referrals/{referral_id}/consent",
                                   {"given_by": "patient", "method": "written", "given_at": given_at})

    assert response.status_code == 422, response.get_json()
    assert response.get_json()["errors"]["json"] == {"given_at": ["Not a valid date and time."]}
