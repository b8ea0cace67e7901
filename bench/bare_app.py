"""The API benchmark's baseline: Flask with nothing but a route that returns a small JSON document.

Served by gunicorn with the project's configuration (``gunicorn -c infra/gunicorn.conf.py bench.bare_app:app``),
so the difference from the referral server is what the server itself does per request: authentication, access
scoping, the audit row, the database reads and the schema.
"""

from __future__ import annotations

from flask import Flask, Response, jsonify

app = Flask(__name__)

_DOCUMENT = {
    "id": "0194c3b2-7f00-7000-8000-000000000001",
    "status": "routed",
    "specialty": "endodontics",
    "urgency": "urgent",
    "teeth": ["19"],
    "due_at": "2026-01-06T10:30:00+00:00",
}


@app.get("/healthz")
def healthz() -> Response:
    return jsonify(status="ok")


@app.get("/api/v1/referrals/<referral_id>")
def referral(referral_id: str) -> Response:
    return jsonify({**_DOCUMENT, "id": referral_id})
