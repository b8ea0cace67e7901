"""HTTP API v1: thin views over the services, documented by flask-smorest."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

import sqlalchemy as sa
import swagger_ui_bundle
from apispec import APISpec
from flask import Blueprint, Flask, Response, jsonify, send_from_directory
from flask_smorest import Api
from flask_smorest.spec import openapi_cli

from referral.http.context import db_session, object_store
from storage import StorageError

API_PREFIX = "/api/v1"

_OPENAPI_CONFIG = {
    "API_TITLE": "Teledentistry referral API",
    "API_VERSION": "v1",
    "OPENAPI_VERSION": "3.0.3",
    "OPENAPI_URL_PREFIX": "/api",
    "OPENAPI_JSON_PATH": "openapi.json",
    "OPENAPI_SWAGGER_UI_PATH": "docs",
    "OPENAPI_SWAGGER_UI_URL": "/api/docs/assets/",
    "API_SPEC_OPTIONS": {
        "components": {
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearerAuth": []}],
        "info": {
            "description": "Capture-only intake, routing to remote readers, signed interpretation reports "
            "and split claim lines. Errors are always {code, status, message, errors}.",
        },
    },
}

ops = Blueprint("ops", __name__)


@ops.get("/healthz")
def healthz() -> Response:
    return jsonify(status="ok")


@ops.get("/readyz")
def readyz() -> tuple[Response, int]:
    checks = {"database": "ok", "storage": "ok"}
    try:
        db_session().execute(sa.text("SELECT 1"))
    except sa.exc.SQLAlchemyError:
        checks["database"] = "unavailable"
    try:
        object_store().check()
    except StorageError:
        checks["storage"] = "unavailable"
    ready = all(value == "ok" for value in checks.values())
    return jsonify(ready=ready, checks=checks), 200 if ready else 503


_SWAGGER_ASSETS = Path(swagger_ui_bundle.swagger_ui_path)


@ops.get("/api/docs/assets/<path:filename>")
def swagger_assets(filename: str) -> Response:
    # Served from the installed package so the docs page needs no outside network.
    return send_from_directory(_SWAGGER_ASSETS, filename, max_age=3600)


class _OnceDocumentedApi(Api):
    """flask-smorest's Api with the OpenAPI document built once per process. The document depends only on the code
    and on the OpenAPI settings, yet building it converts every schema of every operation, most of the time it takes
    to make an app; an app made again in the same process (the test suite makes thousands, a command-line call one
    each) registers the same views and shares the first app's finished document."""

    _documents: ClassVar[dict[str, tuple[APISpec, Any, Any]]] = {}

    def _document_key(self) -> str:
        return json.dumps({name: self._app.config.get(name) for name in _OPENAPI_CONFIG}, sort_keys=True, default=str)

    def _init_spec(self, **kwargs: Any) -> None:
        kept = self._documents.get(self._document_key())
        self._reusing = kept is not None
        if kept is None:
            super()._init_spec(**kwargs)
            return
        self.spec, self.flask_plugin, self.ma_plugin = kept
        self._app.cli.add_command(openapi_cli)

    def register_blueprint(self, blp: Any, *, parameters: Any = None, **options: Any) -> None:
        if not self._reusing:
            super().register_blueprint(blp, parameters=parameters, **options)
            return
        self._app.extensions["flask-smorest"]["blp_name_to_api"][options.get("name", blp.name)] = self
        self._app.register_blueprint(blp, **options)

    def keep_document(self) -> None:
        """Called once every documented blueprint is registered: later apps reuse this document."""
        self._documents.setdefault(self._document_key(), (self.spec, self.flask_plugin, self.ma_plugin))


def register_api(app: Flask) -> None:
    from referral.api import (
        audit,
        claims,
        denials,
        dicomweb,
        documents,
        emergency,
        fhir,
        fhir_rest,
        images,
        me,
        messages,
        organizations,
        patients,
        referrals,
        reports,
        turnaround,
        tus,
        webhooks,
    )

    app.config.update(_OPENAPI_CONFIG)
    api = _OnceDocumentedApi(app)
    for module in (organizations, patients, referrals, images, audit, webhooks, reports, documents, fhir, claims,
                   messages, me, turnaround,
                   denials, emergency):
        api.register_blueprint(module.blp, url_prefix=API_PREFIX)
    api.keep_document()
    app.register_blueprint(ops)
    # The FHIR read API speaks FHIR, not the JSON API's dialect, so it stays out of the OpenAPI document.
    app.register_blueprint(fhir_rest.blp)
    # DICOMweb speaks DICOM JSON and multipart/related, so it stays out of the OpenAPI document too.
    app.register_blueprint(dicomweb.blp)
    # Resumable uploads speak the tus protocol in headers; docs/api.md describes them.
    app.register_blueprint(tus.blp)
