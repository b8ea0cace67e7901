"""Teledentistry referral workflow server."""

from __future__ import annotations

import sys

from flask import Flask

import storage
from referral.config import ConfigError, Settings, load_settings
from referral.db import make_engine, make_session_factory
from referral.http.json import MarkupSafeJSONProvider
from referral.http.proxy import TrustedProxies
from referral.imaging import previews


def create_app(settings: Settings | None = None, *, store: storage.Storage | None = None) -> Flask:
    """Config, extensions, blueprints, error handlers, commands: in that order."""
    from referral.api import register_api
    from referral.cli import register_commands
    from referral.http import context
    from referral.http.auth import init_authentication
    from referral.http.cors import init_dicomweb_cors
    from referral.http.errors import register_error_handlers
    from referral.http.headers import register_security_headers
    from referral.http.ratelimit import init_auth_failure_limit, init_upload_limit
    from referral.http.uploads import UploadRequest
    from referral.observability.hooks import init_observability
    from referral.services.renditions import DRAWER, BackgroundDrawer, RenditionPolicy
    from referral.services.renditions import install as install_renditions
    from referral.web import register_web

    settings = settings or _settings_or_exit()
    app = Flask(__name__, instance_path=str(settings.instance_path))
    app.json = MarkupSafeJSONProvider(app)
    app.config.update(settings.to_flask_config())
    app.request_class = UploadRequest
    app.wsgi_app = TrustedProxies(app.wsgi_app, settings.trusted_proxies)  # type: ignore[method-assign]
    previews.set_concurrency(settings.preview_concurrency)

    engine = make_engine(settings.database_url)
    app.extensions["referral.engine"] = engine
    app.extensions[context.SETTINGS] = settings
    app.extensions[context.SESSION_FACTORY] = make_session_factory(engine)
    app.extensions[context.STORE] = store if store is not None else storage.from_url(settings.storage_url)
    threads = settings.background_drawing_threads
    drawer = BackgroundDrawer(app.extensions[context.SESSION_FACTORY], app.extensions[context.STORE], threads)
    app.extensions[DRAWER] = drawer
    install_renditions(app.extensions[context.SESSION_FACTORY],
                       RenditionPolicy(timing=settings.previews_after_answer, drawer=drawer if threads else None))
    init_observability(app)
    context.init_request_context(app)

    # A browser's CORS preflight to DICOMweb carries no token: answered before any token is looked at.
    init_dicomweb_cors(app)
    # Rejected tokens are counted by address before the token check runs, uploads by user after it.
    init_auth_failure_limit(app)
    init_authentication(app)
    register_api(app)
    init_upload_limit(app)
    register_web(app)
    register_security_headers(app)
    # In tests a bug raises with its traceback instead of becoming a 500.
    register_error_handlers(app, catch_unexpected=settings.env != "test")
    register_commands(app)
    return app


def _settings_or_exit() -> Settings:
    """The settings from the environment; a server that is not configured stops here, saying what is missing
    (a one-line message, not a traceback, so it reads the same under gunicorn, flask and docker)."""
    try:
        return load_settings()
    except ConfigError as exc:
        print(f"referral: configuration error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
