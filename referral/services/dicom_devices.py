"""The devices (imaging software, sensors) a practice lets use the DICOM listener, by AE title and host."""

from __future__ import annotations

import ipaddress
import re
import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from referral.errors import Conflict, Forbidden, NotFound, ValidationFailed
from referral.models import DicomDevice
from referral.models.enums import Role
from referral.services import access, audit
from referral.services.actor import Actor
from referral.services.organizations import add_unique

AE_TITLE_MAX_LENGTH = 16
_HOST_NAME = re.compile(r"(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}"
                        r"[A-Za-z0-9])?)*\.?")
_MANAGERS = (Role.ADMIN, Role.ORG_ADMIN)


def ae_title_problem(value: str) -> str | None:
    """Why ``value`` (already stripped of surrounding spaces) cannot be an AE title, or None."""
    if not value:
        return "An AE title needs at least one character other than a space."
    if len(value) > AE_TITLE_MAX_LENGTH:
        return f"An AE title has at most {AE_TITLE_MAX_LENGTH} characters."
    if "\\" in value:
        return "An AE title cannot contain a backslash."
    if any(ord(ch) < 32 or ord(ch) > 126 for ch in value):
        return "An AE title holds plain letters, digits, spaces and punctuation only (no control characters)."
    return None


def normalize_host(value: str) -> str:
    """An IP address in its canonical form, or a host name in lower case; anything else is refused."""
    text = value.strip()
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        pass
    if _HOST_NAME.fullmatch(text) and not text.replace(".", "").isdigit():
        return text.rstrip(".").lower()
    raise ValidationFailed("The host must be an IP address or a host name",
                           {"host": ["Not an IP address or host name."]})


def register_device(session: Session, actor: Actor, organization_id: uuid.UUID,
                    data: dict[str, Any]) -> DicomDevice:
    org = access.get_organization(session, actor, organization_id)
    access.require_role(actor, *_MANAGERS)
    ae_title = data["ae_title"].strip()
    problem = ae_title_problem(ae_title)
    if problem:
        raise ValidationFailed(problem, {"ae_title": [problem]})
    host = normalize_host(data["host"]) if data.get("host") else None
    if actor.user_id is None:
        raise Forbidden("Devices are registered by a signed-in administrator")
    device = DicomDevice(organization_id=org.id, ae_title=ae_title, host=host,
                         description=data["description"], created_by_user_id=actor.user_id)
    add_unique(session, device, Conflict(
        "A device with this AE title is already registered; give each device its own AE title",
        {"ae_title": ["Already registered."]}))
    audit.record(session, actor, "dicom_device.create", object_type="dicom_device", object_id=device.id,
                 organization_id=org.id)
    session.commit()
    return device


def list_devices(session: Session, actor: Actor, organization_id: uuid.UUID) -> list[DicomDevice]:
    org = access.get_organization(session, actor, organization_id)
    access.require_role(actor, *_MANAGERS)
    devices = list(session.scalars(sa.select(DicomDevice).where(DicomDevice.organization_id == org.id)
                                   .order_by(DicomDevice.ae_title)))
    session.commit()
    return devices


def delete_device(session: Session, actor: Actor, organization_id: uuid.UUID, device_id: uuid.UUID) -> None:
    org = access.get_organization(session, actor, organization_id)
    access.require_role(actor, *_MANAGERS)
    device = session.get(DicomDevice, device_id)
    if device is None or device.organization_id != org.id:
        raise NotFound("DICOM device not found")
    session.delete(device)
    audit.record(session, actor, "dicom_device.delete", object_type="dicom_device", object_id=device_id,
                 organization_id=org.id, details={"ae_title": device.ae_title})
    session.commit()
