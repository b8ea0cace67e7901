"""Keyset pagination over time-ordered ids: pages stay as fast at the millionth row as at the first."""

from __future__ import annotations

import base64
import binascii
import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from referral.errors import ValidationFailed

DEFAULT_LIMIT = 25
MAX_LIMIT = 100


def encode_cursor(last_id: uuid.UUID) -> str:
    return base64.urlsafe_b64encode(last_id.bytes).decode().rstrip("=")


def decode_cursor(cursor: str) -> uuid.UUID:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        return uuid.UUID(bytes=raw)
    except (ValueError, binascii.Error):
        raise ValidationFailed("cursor is not valid; use next_cursor from the previous page",
                               {"cursor": ["Invalid cursor."]}) from None


def page(session: Session, query: sa.Select[Any], id_column: Any, cursor: str | None,
         limit: int | None) -> tuple[list[Any], str | None]:
    """Newest first. Returns the items and the cursor for the next page (None on the last page)."""
    limit = min(limit or DEFAULT_LIMIT, MAX_LIMIT)
    if cursor:
        query = query.where(id_column < decode_cursor(cursor))
    rows = list(session.scalars(query.order_by(id_column.desc()).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = encode_cursor(rows[-1].id) if more and rows else None
    return rows, next_cursor
