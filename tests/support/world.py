"""A small world of two practices built through the API, for tests that need real actors."""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from referral.billing.catalogue import CATALOGUE
from referral.services.organizations import create_platform_admin
from referral.validation import npi_with_check_digit

_npi_counter = itertools.count(100_000_001)


def new_npi() -> str:
    return npi_with_check_digit(str(next(_npi_counter)))


class Client:
    """The Flask test client with a bearer token and JSON by default."""

    def __init__(self, client: FlaskClient, token: str | None) -> None:
        self.client = client
        self.token = token

    def _headers(self, extra: dict[str, str] | None) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        headers.update(extra or {})
        return headers

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.client.get(path, headers=self._headers(kwargs.pop("headers", None)), **kwargs)

    def post(self, path: str, json_body: Any = None, **kwargs: Any) -> Any:
        headers = self._headers(kwargs.pop("headers", None))
        if json_body is not None:
            return self.client.post(path, data=json.dumps(json_body), content_type="application/json",
                                    headers=headers, **kwargs)
        return self.client.post(path, headers=headers, **kwargs)

    def put(self, path: str, json_body: Any = None, **kwargs: Any) -> Any:
        headers = self._headers(kwargs.pop("headers", None))
        return self.client.put(path, data=json.dumps(json_body), content_type="application/json",
                               headers=headers, **kwargs)

    def patch(self, path: str, json_body: Any = None, **kwargs: Any) -> Any:
        headers = self._headers(kwargs.pop("headers", None))
        return self.client.patch(path, data=json.dumps(json_body), content_type="application/json",
                                 headers=headers, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> Any:
        return self.client.delete(path, headers=self._headers(kwargs.pop("headers", None)), **kwargs)


@dataclass
class Practice:
    id: str
    npi: str
    staff: Client
    dentist: Client
    billing: Client
    org_admin: Client
    dentist_provider_id: str
    hygienist_provider_id: str
    patient_id: str
    users: dict[str, str] = field(default_factory=dict)


# A fee for every code the engine bills, so that the world's claims can be exported; the series codes cost more
# than a few periapicals, as in practice (a lower series fee would start rebundling warnings).
FEES: dict[str, str] = {**dict.fromkeys(CATALOGUE, "40.00"), "D0210": "150.00", "D0709": "110.00"}


def organization_body(name: str = "Riverside Family Dental", **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": name,
        "npi": new_npi(),
        "tax_id": "12-3456789",
        "phone": "916-555-0142",
        "address": {"line1": "100 Main St", "city": "Sacramento", "state": "CA", "zip": "95814-1234"},
    }
    body.update(overrides)
    return body


def provider_body(specialty: str = "general", **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "first_name": "Alex",
        "last_name": "Rivera",
        "credentials": "DDS",
        "npi": new_npi(),
        "taxonomy": "1223G0001X",
        "specialty": specialty,
        "license_states": ["CA"],
        "accepting_referrals": True,
    }
    body.update(overrides)
    return body


PATIENT = {"first_name": "Jane", "last_name": "Doe", "birth_date": "1980-01-01", "sex": "F", "state": "CA",
           "address": {"line1": "12 Oak Street", "city": "Sacramento", "zip": "95816"},
           "coverage": {"payer_id": "60054", "payer_name": "Example Dental Plan", "member_id": "W123456789"}}


def referral_body(practice: Practice, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "patient_id": practice.patient_id,
        "referring_provider_id": practice.dentist_provider_id,
        "specialty": "endodontics",
        "reason": "Lingering pain to cold on the lower left first molar",
        "teeth": ["19"],
        "urgency": "urgent",
        "mode": "asynchronous",
    }
    body.update(overrides)
    return body


@dataclass
class Reader:
    provider_id: str
    client: Client
    organization_id: str


class World:
    def __init__(self, app: Flask, client: FlaskClient) -> None:
        self.app = app
        self.client = client
        with app.app_context():
            factory = app.extensions["referral.sessionmaker"]
            with factory() as session:
                user, token = create_platform_admin(session, "operator@example.com")
        self.admin_id = str(user.id)
        self.admin = Client(client, token)
        self.anonymous = Client(client, None)

    def as_token(self, token: str) -> Client:
        return Client(self.client, token)

    def practice(self, name: str, fees: dict[str, str] | None = None, **overrides: Any) -> Practice:
        """A practice with a dentist, a hygienist, a user of each role and a patient; its fee schedule prices every
        code (``fees`` replaces it; ``{}`` leaves it empty), and ``overrides`` change its registration."""
        org = self.admin.post("/api/v1/organizations", organization_body(name, **overrides))
        assert org.status_code == 201, org.get_json()
        org_id = org.get_json()["id"]
        self.set_fees(org_id, FEES if fees is None else fees)
        dentist = self.admin.post(f"/api/v1/organizations/{org_id}/providers", provider_body("general"))
        hygienist = self.admin.post(
            f"/api/v1/organizations/{org_id}/providers",
            provider_body("hygiene", first_name="Sam", last_name="Lee", credentials="RDH", taxonomy="124Q00000X"),
        )
        assert dentist.status_code == 201
        assert hygienist.status_code == 201
        dentist_id, hygienist_id = dentist.get_json()["id"], hygienist.get_json()["id"]
        slug = name.lower().replace(" ", "-")
        clients: dict[str, Client] = {}
        users: dict[str, str] = {}
        for role, provider in (("staff", hygienist_id), ("dentist", dentist_id), ("billing", None),
                               ("org_admin", None)):
            body: dict[str, Any] = {"email": f"{role}@{slug}.example.com", "role": role}
            if provider:
                body["provider_id"] = provider
            created = self.admin.post(f"/api/v1/organizations/{org_id}/users", body)
            assert created.status_code == 201, created.get_json()
            clients[role] = Client(self.client, created.get_json()["token"])
            users[role] = created.get_json()["id"]
        patient = clients["staff"].post("/api/v1/patients", PATIENT)
        assert patient.status_code == 201, patient.get_json()
        return Practice(
            id=org_id,
            npi=org.get_json()["npi"],
            staff=clients["staff"],
            dentist=clients["dentist"],
            billing=clients["billing"],
            org_admin=clients["org_admin"],
            dentist_provider_id=dentist_id,
            hygienist_provider_id=hygienist_id,
            patient_id=patient.get_json()["id"],
            users=users,
        )

    def set_fees(self, organization_id: str, fees: dict[str, str]) -> None:
        if fees:
            response = self.admin.put(f"/api/v1/organizations/{organization_id}/fee-schedule", fees)
            assert response.status_code == 200, response.get_json()

    def reader_practice(self, name: str, fees: dict[str, str] | None = None, **overrides: Any) -> str:
        org = self.admin.post("/api/v1/organizations", organization_body(name, **overrides))
        assert org.status_code == 201, org.get_json()
        self.set_fees(str(org.get_json()["id"]), FEES if fees is None else fees)
        return str(org.get_json()["id"])

    def reader(self, organization_id: str, specialty: str = "endodontics", states: tuple[str, ...] = ("CA",),
               accepting: bool = True, role: str | None = "specialist", last_name: str = "Endo") -> Reader:
        """A provider who reads, with a login (unless role is None)."""
        provider = self.admin.post(
            f"/api/v1/organizations/{organization_id}/providers",
            provider_body(specialty, last_name=last_name, license_states=list(states), accepting_referrals=accepting,
                          taxonomy="1223E0200X" if specialty == "endodontics" else "1223G0001X"),
        )
        assert provider.status_code == 201, provider.get_json()
        provider_id = str(provider.get_json()["id"])
        token = ""
        if role is not None:
            user = self.admin.post(f"/api/v1/organizations/{organization_id}/users",
                                   {"email": f"{provider_id}@readers.example.com", "role": role,
                                    "provider_id": provider_id})
            assert user.status_code == 201, user.get_json()
            token = user.get_json()["token"]
        return Reader(provider_id=provider_id, client=Client(self.client, token), organization_id=organization_id)
