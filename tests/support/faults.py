"""What every fault test ends with: the acknowledged images, and only they, are stored intact, and after a
repair the store holds nothing the database does not name."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from flask import Flask

from referral.models import Image

VERDICT_KEYS = ("orphan_objects", "missing_objects", "checksum_mismatches")
ALL_ZERO = dict.fromkeys(VERDICT_KEYS, 0)


def storage_check(app: Flask, *options: str) -> tuple[int, dict[str, Any]]:
    """``flask storage check`` with ``options``: its exit status and the JSON it printed."""
    result = app.test_cli_runner().invoke(args=["storage", "check", *options])
    assert result.stdout, result.output
    return result.exit_code, json.loads(result.stdout)


def verdict(report: dict[str, Any]) -> dict[str, int]:
    return {key: report[key] for key in VERDICT_KEYS}


def stored_images(app: Flask) -> dict[str, str]:
    """Every image row: id -> recorded SHA-256."""
    with app.app_context(), app.extensions["referral.sessionmaker"]() as session:
        return {str(image_id): sha256 for image_id, sha256 in session.execute(sa.select(Image.id, Image.sha256))}


def assert_nothing_lost_and_nothing_extra(app: Flask, acknowledged: dict[str, str],
                                          download: Callable[[str], bytes]) -> None:
    """``acknowledged`` maps each image id the client was given a 201 for to the SHA-256 of what it sent."""
    assert stored_images(app) == acknowledged, "image rows differ from the uploads that were acknowledged"
    for image_id, sha256 in acknowledged.items():
        assert hashlib.sha256(download(image_id)).hexdigest() == sha256, f"image {image_id} came back altered"
    status, repaired = storage_check(app, "--repair", "--grace-minutes", "0")
    assert repaired["missing_objects"] == repaired["checksum_mismatches"] == 0, repaired["problems"]
    assert repaired["orphans_removed"] == repaired["orphan_objects"]
    assert status == 0
    status, after = storage_check(app)
    assert (status, verdict(after)) == (0, ALL_ZERO), after["problems"]
    assert after["checksums_verified"] == len(acknowledged)


def image_keys(app: Flask) -> list[str]:
    return sorted(app.extensions["referral.storage"].keys("images/"))
