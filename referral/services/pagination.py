"""Keyset pagination: a page costs the same at the millionth row as at the first.

The cursor is the sort key of the last row handed out, made opaque; the next page starts strictly
after it. Every ordering ends with the id, so keys are unique and no row is skipped or repeated.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import InstrumentedAttribute, Session

from referral.errors import ValidationFailed

DEFAULT_LIMIT = 25
MAX_LIMIT = 100


def _encode_value(value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def _decode_value(column: InstrumentedAttribute[Any], raw: Any) -> Any:
    if not isinstance(raw, str):
        raise ValueError("cursor values are strings")
    python_type = column.type.python_type
    if python_type is datetime:
        value = datetime.fromisoformat(raw)
        if value.tzinfo is None:
            raise ValueError("cursor timestamps carry their offset")
        return value
    if python_type is uuid.UUID:
        return uuid.UUID(raw)
    return python_type(raw)


def encode_cursor(values: Sequence[Any]) -> str:
    raw = json.dumps([_encode_value(v) for v in values], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, columns: Sequence[InstrumentedAttribute[Any]]) -> list[Any]:
    try:
        raw = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not isinstance(raw, list) or len(raw) != len(columns):
            raise ValueError("wrong shape")
        return [_decode_value(column, value) for column, value in zip(columns, raw, strict=True)]
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        raise ValidationFailed("cursor is not valid; use next_cursor from the previous page",
                               {"cursor": ["Invalid cursor."]}) from None


def page(
    session: Session,
    query: sa.Select[Any],
    order: Sequence[InstrumentedAttribute[Any]],
    cursor: str | None,
    limit: int | None,
    *,
    descending: bool = False,
) -> tuple[list[Any], str | None]:
    """One page of ``query`` sorted by ``order`` (which must end with a unique column), and the cursor
    for the next page (None on the last page)."""
    limit = min(limit or DEFAULT_LIMIT, MAX_LIMIT)
    if cursor:
        after = decode_cursor(cursor, order)
        keys = sa.tuple_(*order)
        bound = sa.tuple_(*(sa.literal(value, column.type) for column, value in zip(order, after, strict=True)))
        query = query.where(keys < bound if descending else keys > bound)
    ordering = [column.desc() if descending else column.asc() for column in order]
    rows = list(session.scalars(query.order_by(*ordering).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = None
    if more and rows:
        next_cursor = encode_cursor([getattr(rows[-1], column.key) for column in order])
    return rows, next_cursor
