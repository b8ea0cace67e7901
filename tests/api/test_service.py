from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask

from referral import create_app
from referral.config import Settings
from storage import LocalStorage, Storage
from tests.support.settings import make_settings
from tests.support.world import World

CONTRACT_PATHS = [
    "/api/v1/organizations",
    "/api/v1/organizations/{organization_id}/providers",
    "/api/v1/organizations/{organization_id}/users",
    "/api/v1/patients",
    "/api/v1/referrals",
    "/api/v1/referrals/{referral_id}",
    "/api/v1/referrals/{referral_id}/images",
    "/api/v1/images/{image_id}/content",
    "/api/v1/audit-events",
]


def test_health_and_readiness_answer_without_a_token(client):
    assert client.get("/healthz").get_json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.get_json() == {"ready": True, "checks": {"database": "ok", "storage": "ok"}}


def test_the_openapi_document_describes_the_contract(client):
    spec = client.get("/api/openapi.json").get_json()
    assert spec["openapi"].startswith("3.")
    for path in CONTRACT_PATHS:
        assert path in spec["paths"], path
    upload = spec["paths"]["/api/v1/referrals/{referral_id}/images"]["post"]
    assert "multipart/form-data" in upload["requestBody"]["content"]
    assert spec["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"


def _api(app: Flask) -> Any:
    return app.extensions["flask-smorest"]["apis"][""]["ext_obj"]


def test_an_app_made_again_in_the_same_process_serves_the_same_document_and_every_route(app: Flask, tmp_path):
    """The OpenAPI document is built once per process; a second app shares it and still registers each view."""
    first = app.test_client().get("/api/openapi.json").get_json()
    again = create_app(make_settings(tmp_path / "again", f"sqlite:///{tmp_path / 'again.db'}"),
                       store=LocalStorage(tmp_path / "again-objects"))
    try:
        assert again.test_client().get("/api/openapi.json").get_json() == first
        assert _api(again).spec is _api(app).spec  # shared, not converted again
        assert sorted(rule.rule for rule in again.url_map.iter_rules()) == sorted(
            rule.rule for rule in app.url_map.iter_rules())
        assert again.extensions["flask-smorest"]["blp_name_to_api"].keys() == \
            app.extensions["flask-smorest"]["blp_name_to_api"].keys()
        assert "openapi" in again.cli.commands
    finally:
        again.extensions["referral.engine"].dispose()


def test_the_docs_page_and_its_assets_are_served_locally(client):
    page = client.get("/api/docs")
    assert page.status_code == 200
    assert b"/api/docs/assets/swagger-ui-bundle.js" in page.data
    asset = client.get("/api/docs/assets/swagger-ui-bundle.js")
    assert asset.status_code == 200
    assert len(asset.data) > 1000
    asset.close()


def test_errors_share_one_json_shape(client, world: World):
    for response in (client.get("/no/such/page"), world.admin.client.delete("/api/v1/referrals"),
                     world.anonymous.get("/api/v1/patients")):
        body = response.get_json()
        assert set(body) >= {"code", "status", "message"}
        assert body["code"] == response.status_code


class UnreachableStore(LocalStorage):
    def check(self) -> None:
        from storage import StorageUnavailable

        raise StorageUnavailable("store is down")


@pytest.fixture
def down_app(app_settings: Settings, tmp_path) -> Iterator[Flask]:
    application = create_app(app_settings, store=UnreachableStore(tmp_path / "down"))
    yield application
    application.extensions["referral.engine"].dispose()


def test_readiness_is_false_when_the_store_is_unreachable(down_app: Flask):
    response = down_app.test_client().get("/readyz")
    assert response.status_code == 503
    assert response.get_json()["checks"] == {"database": "ok", "storage": "unavailable"}


def test_readiness_is_false_when_the_database_is_unreachable(tmp_path, store: Storage, backend: str):
    settings = make_settings(tmp_path, "postgresql+psycopg://postgres@127.0.0.1:1/none")
    application = create_app(settings, store=store)
    response = application.test_client().get("/readyz")
    assert response.status_code == 503
    assert response.get_json()["checks"]["database"] == "unavailable"
