"""Teledentistry referral workflow server."""

from __future__ import annotations

from flask import Flask

import storage
from referral.config import Settings, load_settings
from referral.db import make_engine, make_session_factory


def create_app(settings: Settings | None = None, *, store: storage.Storage | None = None) -> Flask:
    """Config, extensions, blueprints, error handlers, commands: in that order."""
    from referral.api import register_api
    from referral.cli import register_commands
    from referral.errors import register_error_handlers
    from referral.observability.hooks import init_observability
    from referral.ratelimit import init_auth_failure_limit, init_upload_limit
    from referral.security import register_security_headers
    from referral.uploads import UploadRequest
    from referral.web import register_web

    settings = settings or load_settings()
    app = Flask(__name__, instance_path=str(settings.instance_path))
    app.config.update(settings.to_flask_config())
    app.request_class = UploadRequest

    engine = make_engine(settings.database_url)
    app.extensions["referral.engine"] = engine
    app.extensions["referral.sessionmaker"] = make_session_factory(engine)
    app.extensions["referral.storage"] = store if store is not None else storage.from_url(settings.storage_url)
    init_observability(app)

    # Rejected tokens are counted by address before the API's token check runs, uploads by user after it.
    init_auth_failure_limit(app)
    register_api(app)
    init_upload_limit(app)
    register_web(app)
    register_security_headers(app)
    register_error_handlers(app)
    register_commands(app)
    return app
