"""The ``Idempotency-Key`` header, read the same way by every route that honours it.

The key and a fingerprint of the request go to the service, which claims the key in the transaction of the
work; a retry of the same request gets back the outcome of the first one (``Idempotent-Replayed: true``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Response, jsonify, request

from referral.services import idempotency
from referral.services.actor import Actor

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"

DOC_PARAMETER = {
    "in": "header", "name": HEADER, "required": False, "schema": {"type": "string", "maxLength": 255},
    "description": "retries with the same key and body return the first response and store nothing new",
}


def idempotent_request(actor: Actor, *request_parts: str) -> idempotency.IdempotentRequest | None:
    """The request's key with a fingerprint of ``request_parts`` (what makes two requests the same), or
    None when the client sent no key."""
    key = request.headers.get(HEADER)
    if key is None or actor.user_id is None:
        return None
    return idempotency.IdempotentRequest(user_id=actor.user_id, key=key,
                                         fingerprint=idempotency.fingerprint(request.method, *request_parts))


def answer(result: Any, render: Callable[[Any], dict[str, Any]], load: Callable[[Any], Any]) -> Any:
    """The service's result as a view's return value; a replay answers with the first outcome: the resource
    it created, loaded again with ``load`` and rendered with ``render``."""
    if not isinstance(result, idempotency.Replay):
        return result
    body = result.body if result.resource_id is None else render(load(result.resource_id))
    response: Response = jsonify(body)
    response.status_code = result.status
    response.headers[REPLAYED_HEADER] = "true"
    return response
