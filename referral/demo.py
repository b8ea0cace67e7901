"""Demo data for a development server: two practices, their people, patients and cases in several states.

Everything is made through the JSON API (in-process, with the people's own tokens), so the demo holds exactly
what a practice would have made by hand, with the same checks, audit rows and claims.
"""

from __future__ import annotations

import io
import logging
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from PIL import Image as PilImage
from sqlalchemy.orm import Session, sessionmaker

from referral.models import Organization, User
from referral.services.organizations import set_up_platform_admin
from referral.validation import npi_with_check_digit

DEMO_ADMIN = "demo-admin@example.com"
GENERAL_NPI = npi_with_check_digit("174000001")
ENDO_NPI = npi_with_check_digit("174000002")


class DemoRefused(Exception):
    """The demo cannot be loaded here (it is already loaded, or the API refused a step)."""


@dataclass
class _Person:
    email: str
    role: str
    practice: str
    password: str
    token: str = ""


@dataclass
class _Demo:
    client: FlaskClient
    people: list[_Person] = field(default_factory=list)
    cases: list[tuple[str, str, str]] = field(default_factory=list)

    def call(self, token: str, method: str, path: str, body: Any = None, *, expect: int = 200,
             **kwargs: Any) -> Any:
        headers = {"Authorization": f"Bearer {token}"}
        if body is not None:
            kwargs["json"] = body
        response = self.client.open(path, method=method, headers=headers, **kwargs)
        if response.status_code != expect:
            raise DemoRefused(f"the demo could not {method} {path}: {response.status_code} "
                              f"{(response.get_json(silent=True) or {}).get('message', '')}")
        return response.get_json(silent=True)


def _password() -> str:
    # Four random words' worth of entropy in a form that is easy to type from a terminal.
    return "-".join(secrets.token_hex(3) for _ in range(4))


def _radiograph_png(seed: int) -> bytes:
    """A small grey gradient that stands in for a radiograph."""
    picture = PilImage.linear_gradient("L").resize((96, 72)).rotate(seed * 37 % 360)
    out = io.BytesIO()
    picture.save(out, format="PNG")
    return out.getvalue()


def build_demo(app: Flask) -> str:
    """Load the demo into the app's (empty) database; the printed summary lists the sign-ins."""
    factory = cast(sessionmaker[Session], app.extensions["referral.sessionmaker"])
    with factory() as session:
        if session.scalar(sa.select(Organization.id).where(Organization.npi.in_([GENERAL_NPI, ENDO_NPI]))):
            raise DemoRefused("the demo practices are already loaded in this database")
        if session.scalar(sa.select(User.id).where(User.email == DEMO_ADMIN)):
            raise DemoRefused(f"{DEMO_ADMIN} already exists in this database")
        admin_password = _password()
        admin = set_up_platform_admin(session, DEMO_ADMIN, admin_password)
    demo = _Demo(client=app.test_client())
    demo.people.append(_Person(DEMO_ADMIN, "admin", "Platform administration", admin_password, admin.token))
    # The in-process requests would each print an access-log line around the summary people need to read.
    access_log = logging.getLogger("referral.access")
    was_disabled, access_log.disabled = access_log.disabled, True
    try:
        _build(demo, admin.token, factory)
    finally:
        access_log.disabled = was_disabled
    return _summary(demo)


def _org(demo: _Demo, admin: str, body: dict[str, Any]) -> str:
    return str(demo.call(admin, "POST", "/api/v1/organizations", body, expect=201)["id"])


def _provider(demo: _Demo, admin: str, org: str, body: dict[str, Any]) -> str:
    return str(demo.call(admin, "POST", f"/api/v1/organizations/{org}/providers", body, expect=201)["id"])


def _user(demo: _Demo, admin: str, org: str, practice: str, email: str, role: str,
          provider: str | None = None) -> str:
    password = _password()
    body: dict[str, Any] = {"email": email, "role": role, "password": password}
    if provider:
        body["provider_id"] = provider
    created = demo.call(admin, "POST", f"/api/v1/organizations/{org}/users", body, expect=201)
    demo.people.append(_Person(email, role, practice, password, created["token"]))
    return str(created["token"])


def _build(demo: _Demo, admin: str, factory: sessionmaker[Session]) -> None:
    general = _org(demo, admin, {
        "name": "Riverside Family Dental", "npi": GENERAL_NPI, "tax_id": "94-1234567", "phone": "916-555-0100",
        "address": {"line1": "100 Main Street", "city": "Sacramento", "state": "CA", "zip": "95814-2903"},
        "time_zone": "America/Los_Angeles"})
    endo = _org(demo, admin, {
        "name": "Summit Endodontics", "npi": ENDO_NPI, "tax_id": "94-7654321", "phone": "415-555-0199",
        "address": {"line1": "450 Sutter Street", "city": "San Francisco", "state": "CA", "zip": "94108-4001"},
        "time_zone": "America/Los_Angeles"})
    dentist = _provider(demo, admin, general, {
        "first_name": "Maria", "last_name": "Chen", "credentials": "DDS", "npi": npi_with_check_digit("174000011"),
        "taxonomy": "1223G0001X", "specialty": "general", "license_states": ["CA"]})
    hygienist = _provider(demo, admin, general, {
        "first_name": "Sam", "last_name": "Lee", "credentials": "RDH", "npi": npi_with_check_digit("174000012"),
        "taxonomy": "124Q00000X", "specialty": "hygiene", "license_states": ["CA"],
        "accepting_referrals": False})
    assistant = _provider(demo, admin, general, {
        "first_name": "Nia", "last_name": "Park", "credentials": "RDA", "npi": npi_with_check_digit("174000013"),
        "taxonomy": "126800000X", "specialty": "assistant", "license_states": ["CA"],
        "accepting_referrals": False})
    endodontist = _provider(demo, admin, endo, {
        "first_name": "Priya", "last_name": "Natarajan", "credentials": "DDS, MS",
        "npi": npi_with_check_digit("174000021"), "taxonomy": "1223E0200X", "specialty": "endodontics",
        "license_states": ["CA", "NV", "OR"]})
    riverside, summit = "Riverside Family Dental", "Summit Endodontics"
    _user(demo, admin, general, riverside, "admin@riverside.example.com", "org_admin")
    _user(demo, admin, general, riverside, "dentist@riverside.example.com", "dentist", dentist)
    staff = _user(demo, admin, general, riverside, "hygienist@riverside.example.com", "staff", hygienist)
    _user(demo, admin, general, riverside, "assistant@riverside.example.com", "staff", assistant)
    _user(demo, admin, general, riverside, "billing@riverside.example.com", "billing")
    _user(demo, admin, endo, summit, "admin@summit.example.com", "org_admin")
    reader = _user(demo, admin, endo, summit, "reader@summit.example.com", "specialist", endodontist)
    _user(demo, admin, endo, summit, "billing@summit.example.com", "billing")
    demo.call(admin, "PUT", f"/api/v1/organizations/{general}/fee-schedule",
              {"D0140": "65.00", "D0220": "32.00", "D0230": "28.00", "D0350": "45.00", "D9996": "30.00",
               "D9995": "40.00"})
    demo.call(admin, "PUT", f"/api/v1/organizations/{endo}/fee-schedule",
              {"D0140": "95.00", "D0170": "85.00", "D0391": "60.00", "D9995": "55.00", "D9996": "55.00",
               "D0350": "45.00"})

    home = {"line1": "12 Oak Street", "city": "Sacramento", "zip": "95816-1234"}
    jane = demo.call(staff, "POST", "/api/v1/patients", {
        "first_name": "Jane", "last_name": "Doe", "birth_date": "1984-03-14", "sex": "F", "state": "CA",
        "address": home, "coverage": {"payer_id": "60054", "payer_name": "Example Dental Plan",
                                      "member_id": "W123456789", "group_number": "GRP-1001"}}, expect=201)["id"]
    today = datetime.now(UTC).date()
    child_birth = today.replace(year=today.year - 9, day=1)
    liam = demo.call(staff, "POST", "/api/v1/patients", {
        "first_name": "Liam", "last_name": "Doe", "birth_date": child_birth.isoformat(), "sex": "M", "state": "CA",
        "address": home, "coverage": {"payer_id": "60054", "payer_name": "Example Dental Plan",
                                      "member_id": "W123456789", "group_number": "GRP-1001",
                                      "relationship": "child",
                                      "subscriber": {"first_name": "Jane", "last_name": "Doe",
                                                     "birth_date": "1984-03-14", "sex": "F",
                                                     "address": {**home, "state": "CA"}}}}, expect=201)["id"]
    marcus = demo.call(staff, "POST", "/api/v1/patients", {
        "first_name": "Marcus", "last_name": "Green", "birth_date": "1961-11-02", "sex": "M", "state": "CA",
        "address": {"line1": "88 River Road", "city": "West Sacramento", "zip": "95691"}}, expect=201)["id"]
    ana = demo.call(staff, "POST", "/api/v1/patients", {
        "first_name": "Ana", "last_name": "Torres", "birth_date": "1992-07-21", "sex": "F", "state": "CA",
        "address": {"line1": "5 Elm Court", "city": "Davis", "zip": "95616"},
        "coverage": {"payer_id": "CDCA1", "payer_name": "Golden State Dental", "member_id": "GS44556677"}},
        expect=201)["id"]

    now = datetime.now(UTC)
    consent = {"given_by": "patient", "method": "verbal", "given_at": (now - timedelta(hours=2)).isoformat()}
    guardian = {"given_by": "guardian", "method": "written", "given_at": (now - timedelta(hours=2)).isoformat()}

    def case(patient: str, tooth: str, reason: str, consent_given: dict[str, Any], images: bool = True) -> str:
        created = demo.call(staff, "POST", "/api/v1/referrals", {
            "patient_id": patient, "referring_provider_id": dentist, "specialty": "endodontics", "reason": reason,
            "teeth": [tooth], "urgency": "routine", "mode": "asynchronous", "consent": consent_given}, expect=201)
        if images:
            demo.call(staff, "POST", f"/api/v1/referrals/{created['id']}/images", expect=201,
                      content_type="multipart/form-data", data={
                          "kind": "periapical", "teeth": tooth, "reason": reason,
                          "captured_at": (now - timedelta(hours=1)).isoformat(),
                          "captured_by_provider_id": hygienist,
                          "file": (io.BytesIO(_radiograph_png(int(tooth))), f"tooth-{tooth}.png")})
        return str(created["id"])

    draft = case(marcus, "30", "Cracked cusp, pain on biting, lower right first molar", consent, images=False)
    demo.cases.append(("draft", "Marcus Green, tooth 30", draft))
    sent = case(jane, "14", "Sensitivity to cold lingering a minute, upper left first molar", consent)
    demo.call(staff, "POST", f"/api/v1/referrals/{sent}/submit")
    demo.cases.append(("sent, waiting for the endodontist", "Jane Doe, tooth 14", sent))
    accepted = case(ana, "19", "Swelling near the lower left first molar", consent)
    demo.call(staff, "POST", f"/api/v1/referrals/{accepted}/submit")
    demo.call(reader, "POST", f"/api/v1/referrals/{accepted}/accept")
    demo.cases.append(("accepted, report not yet written", "Ana Torres, tooth 19", accepted))
    signed = case(liam, "30", "Deep caries near the pulp, lower right first molar", guardian)
    demo.call(staff, "POST", f"/api/v1/referrals/{signed}/submit")
    demo.call(reader, "POST", f"/api/v1/referrals/{signed}/accept")
    images = [i["id"] for i in demo.call(reader, "GET", f"/api/v1/referrals/{signed}")["images"]]
    demo.call(reader, "PUT", f"/api/v1/referrals/{signed}/report", {
        "findings": [{"image_id": image, "crown": "Deep occlusal caries approaching the pulp",
                      "roots": "Two roots, open apices", "pdl_space": "Within normal limits",
                      "lamina_dura": "Intact", "periapical_area": "No radiolucency",
                      "bone_levels": "Within normal limits", "other": None, "diagnostic_quality": "adequate"}
                     for image in images],
        "impression": "Reversible pulpitis, tooth 30", "recommendation": "Indirect pulp cap and restoration",
        "evaluation_performed": False})
    demo.call(reader, "POST", f"/api/v1/referrals/{signed}/report/sign")
    demo.cases.append(("report signed, claims made for both practices", "Liam Doe, tooth 30", signed))


def _summary(demo: _Demo) -> str:
    lines = ["Demo loaded. Sign in at /login with any of these (passwords are shown only now):", ""]
    width = max(len(p.email) for p in demo.people)
    for person in demo.people:
        lines.append(f"  {person.email:<{width}}  {person.password}  {person.role.replace('_', ' ')}"
                     f" · {person.practice}")
    lines += ["", "Cases:"]
    lines += [f"  {state:<45} {who:<24} /referrals/{referral_id}" for state, who, referral_id in demo.cases]
    return "\n".join(lines)
