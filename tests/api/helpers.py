from __future__ import annotations

import io
from typing import Any

import sqlalchemy as sa
from flask import Flask

from referral.models import Image
from tests.world import Client, Practice, referral_body

CAPTURED_AT = "2026-01-05T10:30:00+00:00"


def new_referral(practice: Practice, **overrides: Any) -> str:
    response = practice.staff.post("/api/v1/referrals", referral_body(practice, **overrides))
    assert response.status_code == 201, response.get_json()
    return str(response.get_json()["id"])


def upload(client: Client, practice: Practice, referral_id: str, data: bytes, filename: str = "image.dcm",
           headers: dict[str, str] | None = None, **fields: Any) -> Any:
    form: dict[str, Any] = {
        "kind": "periapical",
        "teeth": "19",
        "reason": "Pain to cold, lower left",
        "captured_at": CAPTURED_AT,
        "captured_by_provider_id": practice.hygienist_provider_id,
    }
    form.update(fields)
    form = {key: value for key, value in form.items() if value is not None}
    form["file"] = (io.BytesIO(data), filename)
    return client.post(f"/api/v1/referrals/{referral_id}/images", data=form, content_type="multipart/form-data",
                       headers=headers)


def stored_state(app: Flask) -> tuple[int, list[str]]:
    """How many image rows exist and which image objects are in the store."""
    with app.app_context():
        factory = app.extensions["referral.sessionmaker"]
        with factory() as session:
            rows = session.scalar(sa.select(sa.func.count()).select_from(Image)) or 0
    keys = list(app.extensions["referral.storage"].keys("images/"))
    return rows, keys


def assert_nothing_stored(app: Flask) -> None:
    rows, keys = stored_state(app)
    assert rows == 0, f"{rows} image rows were left behind"
    assert keys == [], f"objects were left behind: {keys}"
