"""Rejected tokens on the read API count toward the same per-address limit as on the JSON API, and the refusal
is an OperationOutcome with the wait in Retry-After."""

from __future__ import annotations

from pathlib import Path

import pytest

from referral.config import DEFAULT_RATELIMIT_AUTH_FAILURES, Settings
from tests.support.settings import make_settings
from tests.support.world import Practice, World

AUTH_FAILURES = 20  # DEFAULT_RATELIMIT_AUTH_FAILURES: "20 per 15 minutes"
ATTACKER, NEIGHBOUR = "203.0.113.7", "203.0.113.8"


@pytest.fixture
def app_settings(tmp_path: Path, database_url: str) -> Settings:
    return make_settings(tmp_path, database_url, ratelimit_storage_url="memory://",
                         ratelimit_auth_failures=DEFAULT_RATELIMIT_AUTH_FAILURES)


def test_guessing_tokens_on_the_read_api_is_limited_per_address(world: World, riverside: Practice):
    path = f"/fhir/R4/Patient/{riverside.patient_id}"
    guesses = [world.client.get(path, headers={"Authorization": f"Bearer guess-{n}"},
                                environ_base={"REMOTE_ADDR": ATTACKER}) for n in range(AUTH_FAILURES)]
    refused = world.client.get(path, headers={"Authorization": f"Bearer {riverside.staff.token}"},
                               environ_base={"REMOTE_ADDR": ATTACKER})
    neighbour = world.client.get(path, headers={"Authorization": f"Bearer {riverside.staff.token}"},
                                 environ_base={"REMOTE_ADDR": NEIGHBOUR})

    assert {r.status_code for r in guesses} == {401}
    assert refused.status_code == 429
    assert refused.mimetype == "application/fhir+json"
    assert refused.get_json()["issue"][0]["code"] == "throttled"
    assert 1 <= int(refused.headers["Retry-After"]) <= 15 * 60
    assert neighbour.status_code == 200


def test_the_capability_statement_and_calls_without_a_token_are_not_counted(world: World, riverside: Practice):
    for _ in range(AUTH_FAILURES + 1):
        assert world.client.get("/fhir/R4/metadata", environ_base={"REMOTE_ADDR": ATTACKER}).status_code == 200
        assert world.client.get("/fhir/R4/Patient", environ_base={"REMOTE_ADDR": ATTACKER}).status_code == 401

    answer = world.client.get("/fhir/R4/Patient", headers={"Authorization": f"Bearer {riverside.staff.token}"},
                              environ_base={"REMOTE_ADDR": ATTACKER})
    assert answer.status_code == 200
