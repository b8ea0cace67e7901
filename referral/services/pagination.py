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
    parameters: dict[str, Any] | None = None,
) -> tuple[list[Any], str | None]:
    """One page of ``query`` sorted by ``order`` (which must end with a unique column), and the cursor
    for the next page (None on the last page). ``parameters`` binds the query's own bound parameters."""
    paging, size = keyset_parameters(order, cursor, limit)
    bounded = keyset(query, order, after=bool(cursor), descending=descending)
    return page_of(list(session.scalars(bounded, {**(parameters or {}), **paging})), order, size)


def keyset(query: sa.Select[Any], order: Sequence[InstrumentedAttribute[Any]], *, after: bool,
           descending: bool = False) -> sa.Select[Any]:
    """``query`` sorted by ``order``, narrowed (``after``) to the rows after a cursor, and limited to one row beyond
    the page (which tells whether another page follows); the cursor's values and the number of rows are bound
    parameters (``keyset_parameters``), so that a statement built once serves every page."""
    if after:
        keys = sa.tuple_(*order)
        bound = sa.tuple_(*(sa.bindparam(f"after_{n}", type_=column.type) for n, column in enumerate(order)))
        query = query.where(keys < bound if descending else keys > bound)
    return query.order_by(*ordering(order, descending=descending)).limit(sa.bindparam("page_rows", type_=sa.Integer))


def keyset_parameters(order: Sequence[InstrumentedAttribute[Any]], cursor: str | None,
                      limit: int | None) -> tuple[dict[str, Any], int]:
    """The parameters of ``keyset``'s statement for the page after ``cursor`` (from its start when None), and the
    page's size."""
    size = min(limit or DEFAULT_LIMIT, MAX_LIMIT)
    parameters: dict[str, Any] = {"page_rows": size + 1}
    if cursor:
        parameters.update((f"after_{n}", value) for n, value in enumerate(decode_cursor(cursor, order)))
    return parameters, size


def ordering(order: Sequence[InstrumentedAttribute[Any]], *, descending: bool = False) -> list[Any]:
    return [column.desc() if descending else column.asc() for column in order]


def page_of(rows: list[Any], order: Sequence[InstrumentedAttribute[Any]], limit: int) -> tuple[list[Any], str | None]:
    """The page of ``rows`` read with ``keyset`` (at most ``limit`` + 1 of them), and the next page's cursor."""
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = None
    if more and rows:
        next_cursor = encode_cursor([getattr(rows[-1], column.key) for column in order])
    return rows, next_cursor
