"""The case read's same-work floor: what ``GET /api/v1/referrals/{id}`` must do at the least, written without the
framework's layers.

One SQL statement per request, over plain psycopg (one connection per gunicorn thread): it checks the token (not
revoked, not expired, active user), applies the same visibility rule as referral/services/access.py, inserts the
same audit row in a CTE, and has PostgreSQL build the case as JSON (the referral, its patient, its images, its
events and its report state); then one COMMIT. A case the caller may not see answers 404. Served by gunicorn with
the project's configuration (``gunicorn -c infra/gunicorn.conf.py bench.floor_app:app``, ``FLOOR_DATABASE_URL``),
so the difference from the referral server is what the application's own layers cost.
"""

from __future__ import annotations

import hashlib
import os
import threading
import uuid

import psycopg
from flask import Flask, Response, jsonify, request

app = Flask(__name__)
_URL = os.environ.get("FLOOR_DATABASE_URL", "").replace("postgresql+psycopg://", "postgresql://")
_local = threading.local()

_READ = """
WITH who AS (
    SELECT u.id AS user_id, u.organization_id, u.role, u.provider_id
    FROM api_tokens t JOIN users u ON u.id = t.user_id
    WHERE t.token_hash = %(token_hash)s AND t.revoked_at IS NULL
      AND (t.expires_at IS NULL OR t.expires_at > now()) AND u.active
), r AS (
    SELECT r.* FROM referrals r, who
    WHERE r.id = %(referral_id)s
      AND (r.organization_id = who.organization_id
           OR (who.provider_id IS NOT NULL AND who.role IN ('dentist', 'specialist')
               AND r.assigned_provider_id = who.provider_id))
), audit AS (
    INSERT INTO audit_events (id, at, actor_user_id, actor_organization_id, organization_id, action, outcome,
                              object_type, object_id, referral_id, ip_address, user_agent)
    SELECT gen_random_uuid(), now(), who.user_id, who.organization_id, r.organization_id, 'referral.read',
           'success', 'referral', r.id, r.id, %(ip)s, %(user_agent)s
    FROM r, who
    RETURNING 1
)
SELECT (to_jsonb(r) - 'consent_form_key' - 'created_by_user_id'
        || jsonb_build_object(
            'patient', (SELECT jsonb_build_object('id', p.id, 'first_name', p.first_name, 'last_name', p.last_name,
                                                  'birth_date', p.birth_date, 'sex', p.sex, 'state', p.state,
                                                  'deleted_at', p.deleted_at)
                        FROM patients p WHERE p.id = r.patient_id),
            'images', (SELECT coalesce(jsonb_agg(to_jsonb(i) - 'storage_key' - 'preview_key' - 'thumbnail_key'
                                                 ORDER BY i.id), '[]'::jsonb)
                       FROM images i WHERE i.referral_id = r.id),
            'events', (SELECT coalesce(jsonb_agg(to_jsonb(e) - 'details' ORDER BY e.id), '[]'::jsonb)
                       FROM referral_events e WHERE e.referral_id = r.id),
            'report', coalesce((SELECT jsonb_build_object('status', rp.status, 'signed_at', rp.signed_at)
                                FROM reports rp WHERE rp.referral_id = r.id), '{"status": "none"}'::jsonb)
        ))::text,
       (SELECT count(*) FROM audit)
FROM r
"""


def _connection() -> psycopg.Connection:
    connection = getattr(_local, "connection", None)
    if connection is None or connection.closed:
        connection = psycopg.connect(_URL)
        _local.connection = connection
    return connection


@app.get("/healthz")
def healthz() -> Response:
    return jsonify(status="ok")


@app.get("/api/v1/referrals/<referral_id>")
def referral(referral_id: str) -> Response:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    try:
        wanted = uuid.UUID(referral_id)
    except ValueError:
        return Response('{"message": "Not found"}', status=404, mimetype="application/json")
    if scheme.lower() != "bearer" or not token:
        return Response('{"message": "Send an API token"}', status=401, mimetype="application/json")
    connection = _connection()
    with connection.cursor() as cursor:
        cursor.execute(_READ, {"token_hash": hashlib.sha256(token.encode()).hexdigest(), "referral_id": wanted,
                               "ip": request.remote_addr, "user_agent": (request.user_agent.string or "")[:200]})
        row = cursor.fetchone()
    connection.commit()
    if row is None:
        return Response('{"message": "Referral not found"}', status=404, mimetype="application/json")
    return Response(row[0], mimetype="application/json")
