"""Registering DICOM devices: the organization's admin adds, lists and removes them; others cannot."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from flask import Flask

from referral.models import DicomDevice
from tests.support.world import Practice, World


def _path(practice: Practice) -> str:
    return f"/api/v1/organizations/{practice.id}/dicom-devices"


def _count(app: Flask) -> int:
    with app.app_context(), app.extensions["referral.sessionmaker"]() as session:
        return int(session.scalar(sa.select(sa.func.count()).select_from(DicomDevice)) or 0)


def test_an_org_admin_registers_lists_and_removes_a_device(app: Flask, riverside: Practice):
    created = riverside.org_admin.post(_path(riverside), {"ae_title": " SENSOR1 ", "host": "10.0.0.7",
                                                          "description": "Operatory 2 sensor"})
    assert created.status_code == 201, created.get_json()
    device = created.get_json()
    assert device["ae_title"] == "SENSOR1"
    assert device["host"] == "10.0.0.7"
    assert device["organization_id"] == riverside.id

    without_host = riverside.org_admin.post(_path(riverside), {"ae_title": "PANO", "description": "Panoramic"})
    assert without_host.status_code == 201
    assert without_host.get_json()["host"] is None

    listed = riverside.org_admin.get(_path(riverside))
    assert listed.status_code == 200
    assert [d["ae_title"] for d in listed.get_json()["items"]] == ["PANO", "SENSOR1"]

    removed = riverside.org_admin.delete(f"{_path(riverside)}/{device['id']}")
    assert removed.status_code == 204
    assert [d["ae_title"] for d in riverside.org_admin.get(_path(riverside)).get_json()["items"]] == ["PANO"]
    assert riverside.org_admin.delete(f"{_path(riverside)}/{device['id']}").status_code == 404


@pytest.mark.parametrize(("body", "field"), [
    ({"ae_title": "A" * 17, "description": "x"}, "ae_title"),
    ({"ae_title": "BAD\\TITLE", "description": "x"}, "ae_title"),
    ({"ae_title": "BAD\tTITLE", "description": "x"}, "ae_title"),
    ({"ae_title": "   ", "description": "x"}, "ae_title"),
    ({"ae_title": "", "description": "x"}, "ae_title"),
    ({"ae_title": "CAFÉ", "description": "x"}, "ae_title"),
    ({"ae_title": "OK", "host": "not a host!", "description": "x"}, "host"),
    ({"ae_title": "OK"}, "description"),
    ({"ae_title": "OK", "description": "x", "port": 104}, "port"),
])
def test_bad_devices_are_refused_with_nothing_stored(app: Flask, riverside: Practice, body: dict[str, object],
                                                     field: str):
    response = riverside.org_admin.post(_path(riverside), body)
    assert response.status_code == 422, response.get_json()
    assert field in str(response.get_json())
    assert _count(app) == 0


def test_an_ae_title_is_registered_once(app: Flask, riverside: Practice, hillside: Practice):
    assert riverside.org_admin.post(_path(riverside), {"ae_title": "SENSOR1", "description": "a"}).status_code == 201
    again = riverside.org_admin.post(_path(riverside), {"ae_title": "SENSOR1", "description": "b"})
    assert again.status_code == 409
    elsewhere = hillside.org_admin.post(_path(hillside), {"ae_title": "SENSOR1", "description": "c"})
    assert elsewhere.status_code == 409
    assert _count(app) == 1


def test_outsiders_get_404_and_other_roles_403(app: Flask, world: World, riverside: Practice, hillside: Practice):
    device = riverside.org_admin.post(_path(riverside), {"ae_title": "SENSOR1", "description": "a"}).get_json()
    for client in (hillside.org_admin, hillside.staff, hillside.dentist, hillside.billing):
        assert client.get(_path(riverside)).status_code == 404
        assert client.post(_path(riverside), {"ae_title": "MINE", "description": "x"}).status_code == 404
        assert client.delete(f"{_path(riverside)}/{device['id']}").status_code == 404
    # Another practice's device id under one's own organization is unknown too.
    assert hillside.org_admin.delete(f"{_path(hillside)}/{device['id']}").status_code == 404
    for client in (riverside.staff, riverside.dentist, riverside.billing):
        assert client.get(_path(riverside)).status_code == 403
        assert client.post(_path(riverside), {"ae_title": "MINE", "description": "x"}).status_code == 403
        assert client.delete(f"{_path(riverside)}/{device['id']}").status_code == 403
    assert world.anonymous.get(_path(riverside)).status_code == 401
    assert _count(app) == 1
