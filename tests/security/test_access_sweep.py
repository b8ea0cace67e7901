"""Object-level access, swept over the app's own route table (tests/support/routes.py).

One fixture world holds one of each object, owned by practice A, whose case is assigned to reader R of
reader practice E. Every route that takes an id is called, with every method it allows, by everyone who
must not see A's objects: each role of practice B, a specialist of another reader practice F, and R on A's
objects other than its case. Each must get 404, exactly as for an id that does not exist, and nothing may
change. The ids are put into the path by argument name, so a route added later is swept as soon as it
exists, or fails here naming the argument that has no object yet.
"""

from __future__ import annotations

import hashlib
import io
import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from referral.db import utcnow
from referral.fhir.bundle import STUDY_DIGEST_LENGTH
from referral.models import AuditEvent, ClaimBatch, PendingUpload
from tests.support import samples
from tests.support.api import CAPTURED_AT, draft_body, new_referral, ready_referral, submit, upload
from tests.support.edi import ClaimPaid, LinePaid, SetAcknowledged, acknowledgement_999, remittance_835
from tests.support.routes import ROUTES, Argument, Call
from tests.support.snapshots import SharedApp, changes, snapshot
from tests.support.web import PASSWORD, sign_in
from tests.support.world import PATIENT, Practice, Reader, World, organization_body, provider_body, referral_body

# Arguments that name the case itself (rather than the practice's other records).
CASE_ARGUMENTS = frozenset({"referral_id", "image_id", "upload_id"})
# Arguments whose objects are audited as ``denied`` when someone outside tries them (README, Access and audit).
AUDITED_ARGUMENTS = frozenset({"referral_id", "image_id", "patient_id", "webhook_id", "claim_id"})

# Documented exceptions to "404 for every outsider": (method, template) -> (status, why). Keep it small and
# justified; an entry here is a decision a reviewer should be able to read.
EXCEPTIONS: dict[tuple[str, str], tuple[int, str]] = {}

# Fields a client must never set; each added to a valid body must be refused with 422 naming it.
MASS_ASSIGNMENT = ("organization_id", "status", "storage_key", "sha256", "created_by")


@dataclass
class Actor:
    """Someone who calls the routes: a bearer token for the API; a signed-in browser (with its session's CSRF
    token) for the pages, and for the API as the pages call it."""

    label: str
    token: str
    browser: FlaskClient | None = None
    csrf: str = ""


@dataclass
class Sweep:
    shared: SharedApp
    world: World
    a: Practice
    b: Practice
    reader: Reader
    case: dict[str, str]
    other_case: dict[str, str]
    outsiders: list[Actor]
    reader_actor: Actor
    insiders: list[Actor]
    extra_values: dict[str, str] = field(default_factory=dict)


# -- the fixture world ------------------------------------------------------------------------------------


def _signed_in_actor(shared: SharedApp, world: World, label: str, organization_id: str, role: str, token: str,
                     provider_id: str | None = None) -> Actor:
    """A password user of the same practice and role as ``token``'s, signed in on a browser of its own."""
    email = f"sweep-{label}@{organization_id}.example.com"
    body: dict[str, Any] = {"email": email, "role": role, "password": PASSWORD}
    if provider_id:
        body["provider_id"] = provider_id
    created = world.admin.post(f"/api/v1/organizations/{organization_id}/users", body)
    assert created.status_code == 201, created.get_json()
    browser = shared.app.test_client()
    csrf = sign_in(browser, email)
    return Actor(label=label, token=token, browser=browser, csrf=csrf)


def _practice_actors(shared: SharedApp, world: World, practice: Practice, prefix: str) -> list[Actor]:
    providers = {"staff": practice.hygienist_provider_id, "dentist": practice.dentist_provider_id}
    clients = {"staff": practice.staff, "dentist": practice.dentist, "billing": practice.billing,
               "org_admin": practice.org_admin}
    return [_signed_in_actor(shared, world, f"{prefix}-{role}", practice.id, role, str(client.token),
                             providers.get(role)) for role, client in clients.items()]


def _reader_actor(shared: SharedApp, world: World, label: str, reader: Reader) -> Actor:
    return _signed_in_actor(shared, world, label, reader.organization_id, "specialist", str(reader.client.token),
                            reader.provider_id)


def _start_direct_upload(shared: SharedApp, practice: Practice, referral_id: str) -> str:
    """A pending direct upload of the referral: through the API on S3; the local store hands out no forms,
    so there the row the API would have made is written directly."""
    response = practice.staff.post(f"/api/v1/referrals/{referral_id}/images/uploads")
    if shared.backend.endswith("s3"):
        assert response.status_code == 201, response.get_json()
        return str(response.get_json()["upload_id"])
    assert response.status_code == 409, response.get_json()
    upload_id = uuid.uuid4()
    with shared.app.extensions["referral.sessionmaker"]() as session:
        session.add(PendingUpload(id=upload_id, referral_id=uuid.UUID(referral_id),
                                  uploaded_by_user_id=uuid.UUID(practice.users["staff"]),
                                  storage_key=f"uploads/{practice.id}/{referral_id}/{upload_id}",
                                  max_bytes=8 * 1024 * 1024, expires_at=utcnow() + timedelta(minutes=15)))
        session.commit()
    return str(upload_id)


def _first_image(practice: Practice, referral_id: str) -> str:
    response = practice.staff.get(f"/api/v1/referrals/{referral_id}")
    assert response.status_code == 200, response.get_json()
    return str(response.get_json()["images"][0]["id"])


def _payer_files(shared: SharedApp, practice: Practice) -> dict[str, str]:
    """An 837D interchange the practice sent, and an 835 and a 999 it posted (matching none of its claims)."""
    with shared.app.app_context(), shared.app.extensions["referral.sessionmaker"]() as session:
        batch = ClaimBatch(organization_id=uuid.UUID(practice.id), control_number=1, payer_id="60054",
                           claim_ids=[], interchange="ISA~")
        session.add(batch)
        session.commit()
        batch_id = str(batch.id)
    headers = {"Content-Type": "application/edi-x12"}
    remittance = practice.billing.post("/api/v1/remittances", headers=headers, data=remittance_835(
        [ClaimPaid("NOSUCHCLAIM", [LinePaid("D0140", "45", "45", "NOSUCHLINE")])], trace="SWEEP-1").encode())
    assert remittance.status_code == 201, remittance.get_json()
    acknowledgement = practice.billing.post("/api/v1/acknowledgements", headers=headers,
                                            data=acknowledgement_999("999999", [SetAcknowledged("0001")]).encode())
    assert acknowledgement.status_code == 201, acknowledgement.get_json()
    return {"batch_id": batch_id, "remittance_id": remittance.get_json()["id"],
            "acknowledgement_id": acknowledgement.get_json()["id"]}


@pytest.fixture(scope="module")
def sweep(shared_app: SharedApp) -> Sweep:
    shared = shared_app
    world = World(shared.app, shared.client)
    a = world.practice("Practice A Dental")
    b = world.practice("Practice B Dental")
    reader = world.reader(world.reader_practice("Reader Practice E"), last_name="Assigned")
    stranger = world.reader(world.reader_practice("Reader Practice F"), last_name="Stranger")

    # The case: consent and its scanned form, a radiograph, a direct upload still pending, routed to R,
    # accepted, reported, signed and corrected by an addendum; signing made the claims.
    case_id = ready_referral(a, target_provider_id=reader.provider_id)
    form = a.staff.client.put(f"/api/v1/referrals/{case_id}/consent/form",
                              data={"file": (io.BytesIO(samples.png_bytes()), "consent.png")},
                              content_type="multipart/form-data", headers={"Authorization": f"Bearer {a.staff.token}"})
    assert form.status_code == 200, form.get_json()
    case_upload = _start_direct_upload(shared, a, case_id)
    routed = submit(a, case_id)
    assert routed.get_json()["assigned_provider_id"] == reader.provider_id, routed.get_json()
    assert reader.client.post(f"/api/v1/referrals/{case_id}/accept").status_code == 200
    case_image = _first_image(a, case_id)
    assert reader.client.put(f"/api/v1/referrals/{case_id}/report", draft_body([case_image])).status_code == 200
    assert reader.client.post(f"/api/v1/referrals/{case_id}/report/sign").status_code == 200
    addendum = reader.client.post(f"/api/v1/referrals/{case_id}/report/addenda", {"text": "Tooth 19 only."})
    assert addendum.status_code == 201, addendum.get_json()
    claims = a.billing.get(f"/api/v1/referrals/{case_id}/claims").get_json()["claims"]
    assert len(claims) == 1, claims
    webhook = a.org_admin.post("/api/v1/webhooks", {"url": "http://127.0.0.1:9/hooks", "events": ["report.signed"],
                                                    "secret": "s" * 40})
    assert webhook.status_code == 201, webhook.get_json()
    device = a.org_admin.post(f"/api/v1/organizations/{a.id}/dicom-devices",
                              {"ae_title": "SWEEPSENSOR", "description": "Operatory 1"})
    assert device.status_code == 201, device.get_json()

    # Another referral of practice A that was never sent to R: a draft with an image and a pending upload.
    other_id = new_referral(a)
    assert upload(a.staff, a, other_id, samples.dicom_bytes(teeth=())).status_code == 201
    other_upload = _start_direct_upload(shared, a, other_id)

    # A phrase of A's dentist (a reader role): only its owner may delete it.
    phrase = a.dentist.post("/api/v1/me/phrases", {"text": "Within normal limits."})
    assert phrase.status_code == 201, phrase.get_json()
    # A second dentist login for A's dentist provider, asked by A's org admin: only A's dentist may answer it.
    link_request = a.org_admin.post(f"/api/v1/organizations/{a.id}/users",
                                    {"email": "sweep-second-dentist@practice-a.example.com", "role": "dentist",
                                     "provider_id": a.dentist_provider_id, "request_link_confirmation": True})
    assert link_request.status_code == 202, link_request.get_json()
    case = {"organization_id": a.id, "patient_id": a.patient_id, "referral_id": case_id, "image_id": case_image,
            "upload_id": case_upload, "claim_id": claims[0]["id"], "webhook_id": webhook.get_json()["id"],
            "user_id": a.users["staff"], "provider_id": a.hygienist_provider_id,
            "token_id": a.staff.get("/api/v1/tokens").get_json()["items"][0]["id"],
            "device_id": device.get_json()["id"], "phrase_id": phrase.get_json()["id"],
            "link_request_id": link_request.get_json()["link_request_id"], **_payer_files(shared, a)}
    other_case = dict(case, referral_id=other_id, image_id=_first_image(a, other_id), upload_id=other_upload)

    outsiders = _practice_actors(shared, world, b, "b")
    outsiders.append(_reader_actor(shared, world, "f-specialist", stranger))
    reader_actor = _reader_actor(shared, world, "e-reader", reader)
    # The practice's own people and the platform admin only call the API (the mass-assignment probe).
    insiders = [Actor(label=f"a-{role}", token=str(getattr(a, role).token))
                for role in ("staff", "dentist", "billing", "org_admin")]
    insiders += [reader_actor, Actor(label="platform-admin", token=str(world.admin.token))]
    return Sweep(shared=shared, world=world, a=a, b=b, reader=reader, case=case, other_case=other_case,
                 outsiders=outsiders, reader_actor=reader_actor, insiders=insiders,
                 extra_values={"organization_id": b.id, "status": "reported", "storage_key": "images/x/y/z",
                               "sha256": "0" * 64, "created_by": b.users["staff"]})


# -- valid bodies, by request schema ----------------------------------------------------------------------

Body = dict[str, Any]


def _image_form(s: Sweep, ids: dict[str, str]) -> Body:
    return {"kind": "periapical", "teeth": "19", "reason": "Pain to cold, lower left", "captured_at": CAPTURED_AT,
            "captured_by_provider_id": s.a.hygienist_provider_id}


def _completion(s: Sweep, ids: dict[str, str]) -> Body:
    data = samples.dicom_bytes(teeth=())
    form = _image_form(s, ids)
    return dict(form, teeth=["19"], size=len(data), sha256=hashlib.sha256(data).hexdigest())


# A body that passes each request schema, so that a call is refused by the access check and not by
# validation. A schema that is not here fails the sweep, naming it.
VALID_BODIES: dict[str, Callable[[Sweep, dict[str, str]], Body]] = {
    "OrganizationCreateSchema": lambda s, ids: organization_body("Probe Dental"),
    "OrganizationUpdateSchema": lambda s, ids: {"image_retention_days": 3650},
    "ProviderCreateSchema": lambda s, ids: provider_body(),
    "UserCreateSchema": lambda s, ids: {"email": f"probe-{uuid.uuid4().hex[:8]}@example.com", "role": "billing"},
    "UserUpdateSchema": lambda s, ids: {"role": "billing", "provider_id": None},
    "ProviderUpdateSchema": lambda s, ids: {"accepting_referrals": False},
    "FeeScheduleSchema": lambda s, ids: {"D0140": "45.00"},
    "PatientCreateSchema": lambda s, ids: dict(PATIENT),
    "PatientUpdateSchema": lambda s, ids: {"first_name": "Janet"},
    "ReferralCreateSchema": lambda s, ids: referral_body(s.a),
    "DeclineSchema": lambda s, ids: {"reason": "Outside my scope"},
    "RetakeRequestSchema": lambda s, ids: {"image_ids": [ids["image_id"]], "reason": "Apex cut off"},
    "CancelSchema": lambda s, ids: {"reason": "Patient moved away"},
    "ConsentSchema": lambda s, ids: {"given_by": "patient", "method": "verbal", "given_at": "2026-01-05T09:00:00Z"},
    "ConsentFormFieldsSchema": lambda s, ids: {},
    "ImageFileSchema": lambda s, ids: {"file": (io.BytesIO(samples.png_bytes()), "probe.png")},
    "ImageUploadFormSchema": _image_form,
    "DirectUploadStartSchema": lambda s, ids: {"sha256": hashlib.sha256(samples.dicom_bytes(teeth=())).hexdigest()},
    "DirectUploadCompleteSchema": _completion,
    "ImagePatchSchema": lambda s, ids: {"teeth": ["19"]},
    "ReportDraftSchema": lambda s, ids: draft_body([ids["image_id"]]),
    "AddendumCreateSchema": lambda s, ids: {"text": "A correction"},
    "NotificationPreferencesUpdateSchema": lambda s, ids: {"message": True},
    "MessageCreateSchema": lambda s, ids: {"body": "Is the apex visible?", "image_id": ids["image_id"]},
    "PhraseCreateSchema": lambda s, ids: {"text": "No periapical radiolucency."},
    "NarrativeSchema": lambda s, ids: {"narrative": "Probe narrative"},
    "ClaimBatchRequestSchema": lambda s, ids: {"claim_ids": [ids["claim_id"]]},
    "WebhookCreateSchema": lambda s, ids: {"url": "http://127.0.0.1:9/probe", "events": ["report.signed"],
                                           "secret": "p" * 40},
    "CapturerSchema": lambda s, ids: {"captured_by_provider_id": s.a.hygienist_provider_id},
    "DicomDeviceCreateSchema": lambda s, ids: {"ae_title": f"P{uuid.uuid4().hex[:8].upper()}",
                                               "description": "Probe sensor"},
    "CorrectionSchema": lambda s, ids: {"frequency": "7", "payer_claim_number": "PCN-PROBE"},
    "AppealSchema": lambda s, ids: {"note": "Probe appeal"},
    "EmergencyAccessRequestSchema": lambda s, ids: {"reason": "Covering for the assigned reader, patient in pain"},
}


def _body(s: Sweep, call: Call, ids: dict[str, str]) -> tuple[str | None, Body]:
    """(content kind, body) for a call: JSON, multipart, or nothing."""
    kind: str | None = None
    body: Body = {}
    for schema in call.body_schemas():
        factory = VALID_BODIES.get(schema.name)
        if factory is None:
            pytest.fail(f"new request body {schema.name} ({call.id}): add a valid body for it to VALID_BODIES")
        body.update(factory(s, ids))
        kind = "json" if schema.location == "json" else "multipart"
    return kind, body


def _path(call: Call, ids: dict[str, str]) -> str:
    try:
        return call.path(ids)
    except KeyError as missing:
        pytest.fail(f"new route argument {missing.args[0]}: add an object for it to the sweep's world ({call.id})")


def _send(s: Sweep, actor: Actor, call: Call, ids: dict[str, str], *, body: tuple[str | None, Body] | None = None,
          query: str = "", session: bool = False) -> TestResponse:
    """The call as ``actor``: pages always through the browser session, the API with the bearer token or,
    with ``session``, with the session cookie and the X-CSRF-Token header as the pages' script sends it."""
    path = _path(call, ids) + query
    kind, payload = body if body is not None else _body(s, call, ids)
    if not call.is_api or session:
        assert actor.browser is not None, f"{actor.label} has no browser session"
        client, headers = actor.browser, {"X-CSRF-Token": actor.csrf}
    else:
        client, headers = s.shared.client, {"Authorization": f"Bearer {actor.token}"}
    if not call.is_api:
        return client.open(path, method=call.method)
    if kind == "json":
        return client.open(path, method=call.method, data=json.dumps(payload), content_type="application/json",
                           headers=headers)
    if kind == "multipart":
        return client.open(path, method=call.method, data=payload, content_type="multipart/form-data",
                           headers=headers)
    return client.open(path, method=call.method, headers=headers)


def _denied_count(s: Sweep) -> int:
    with s.shared.app.extensions["referral.sessionmaker"]() as session:
        return session.scalar(sa.select(sa.func.count()).select_from(AuditEvent)
                              .where(AuditEvent.outcome == "denied")) or 0


@pytest.fixture
def unchanged(sweep: Sweep) -> Iterator[None]:
    """Whatever a test sends, the world (rows and stored objects) must be exactly as it was."""
    before = snapshot(sweep.shared.app)
    yield
    after = snapshot(sweep.shared.app)
    assert after == before, f"refused requests changed the world: {changes(before, after)}"


def _describe(response: TestResponse) -> str:
    text = response.get_data(as_text=True) if response.mimetype in ("application/json", "text/html") else ""
    return f"{response.status_code} {response.mimetype} {text[:200]}"


# -- the sweep --------------------------------------------------------------------------------------------

SWEPT = [c for c in ROUTES.calls if c.arguments]


def _outsiders_for(s: Sweep, call: Call) -> list[Actor]:
    # R may see the case itself; on A's other records R is an outsider like anyone else.
    if call.argument_names & CASE_ARGUMENTS:
        return s.outsiders
    return [*s.outsiders, s.reader_actor]


@pytest.mark.parametrize("call", SWEPT, ids=lambda c: c.id)
def test_outsiders_get_404_on_every_route_that_takes_an_id(sweep: Sweep, call: Call, unchanged: None) -> None:
    """Each outsider, by token and (for the API as the pages call it) by session, gets what an id that does
    not exist gets, and a patient, referral, image, claim or webhook tried from outside is audited as denied."""
    expected, _why = EXCEPTIONS.get((call.method, call.template), (404, ""))
    wrong: list[str] = []
    for actor in _outsiders_for(sweep, call):
        for session in (False, True) if call.is_api else (True,):
            denied = _denied_count(sweep)
            response = _send(sweep, actor, call, sweep.case, session=session)
            who = f"{actor.label} ({'session' if session else 'token'})"
            if response.status_code != expected:
                wrong.append(f"{who}: {_describe(response)}")
            elif call.argument_names & AUDITED_ARGUMENTS and _denied_count(sweep) <= denied:
                wrong.append(f"{who}: {expected} but no audit row with outcome denied")
    assert not wrong, f"{call.id} must answer {expected} to outsiders:\n" + "\n".join(wrong)


def test_an_id_for_which_the_world_has_no_object_fails_the_sweep_by_name() -> None:
    """The mechanism that keeps later routes covered: an argument nobody made an object for is a failure
    that names it, never a silent skip."""
    unknown = Call(method="GET", rule="/api/v1/gadgets/<uuid:gadget_id>",
                   arguments=(Argument("gadget_id", "UUIDConverter"),), schemas=(), responses=())
    with pytest.raises(pytest.fail.Exception, match="new route argument gadget_id: add an object for it"):
        _path(unknown, {"referral_id": str(uuid.uuid4())})


@pytest.mark.parametrize("call", [c for c in SWEPT if c.argument_names & CASE_ARGUMENTS], ids=lambda c: c.id)
def test_the_assigned_reader_gets_404_on_the_practices_other_referrals(sweep: Sweep, call: Call,
                                                                      unchanged: None) -> None:
    response = _send(sweep, sweep.reader_actor, call, sweep.other_case)

    assert response.status_code == 404, _describe(response)


# Reads of the case as a whole: everything about it but the pending upload, which is its sender's business.
CASE_READS = [c for c in SWEPT if c.method == "GET" and c.argument_names <= {"referral_id", "image_id", "name"}]


@pytest.mark.parametrize("call", CASE_READS, ids=lambda c: c.id)
def test_the_assigned_reader_reads_every_part_of_the_case(sweep: Sweep, call: Call, unchanged: None) -> None:
    response = _send(sweep, sweep.reader_actor, call, sweep.case)

    assert response.status_code == 200, _describe(response)


def _is_image(response: TestResponse) -> bool:
    return response.mimetype.startswith("image/") or response.mimetype in ("application/octet-stream",
                                                                            "application/dicom")


def _embeds_image(response: TestResponse) -> bool:
    return response.mimetype == "text/html" and "data:image/" in response.get_data(as_text=True)


# Downloads that are scans of paperwork rather than pictures of the patient: both sides of the case, billing
# included, may read them (README: the consent form is read by "both sides"), so they are not swept here.
PAPERWORK = {"/api/v1/referrals/{referral_id}/consent/form": "the signed teledentistry consent form a claim may need"}
BYTE_CANDIDATES = [c for c in SWEPT if c.method == "GET" and c.is_api and c.template not in PAPERWORK
                   and c.argument_names & {"referral_id", "image_id"} and "upload_id" not in c.argument_names]


@pytest.mark.parametrize("call", BYTE_CANDIDATES, ids=lambda c: c.id)
def test_billing_and_org_admins_of_the_practice_get_no_image_bytes(sweep: Sweep, call: Call, unchanged: None) -> None:
    """Image bytes (the original, its preview and thumbnail) are 403 to billing and practice admins, a
    short-lived store URL too, and no document they read carries the pictures."""
    staff = Actor("a-staff", str(sweep.a.staff.token), sweep.shared.client)
    staff_gets_bytes = _is_image(_send(sweep, staff, call, sweep.case))
    query_fields = {f for s in call.schemas if s.location == "query" for f in s.fields}
    for role in ("billing", "org_admin"):
        actor = Actor(f"a-{role}", str(getattr(sweep.a, role).token), sweep.shared.client)
        response = _send(sweep, actor, call, sweep.case)
        assert not _is_image(response), f"{role}: {_describe(response)}"
        assert not _embeds_image(response), f"{role} got a document with the pictures in it"
        if staff_gets_bytes:
            assert response.status_code == 403, f"{role}: {_describe(response)}"
        if "redirect" in query_fields:
            redirected = _send(sweep, actor, call, sweep.case, query="?redirect=true")
            assert redirected.status_code == 403, f"{role}: {_describe(redirected)}"
            assert "Location" not in redirected.headers


def test_the_byte_check_above_is_not_vacuous(sweep: Sweep) -> None:
    """Staff do get pictures from the content, preview and thumbnail routes and from the report, so the
    billing test compares against something real."""
    staff = Actor("a-staff", str(sweep.a.staff.token), sweep.shared.client)
    served = set()
    for call in BYTE_CANDIDATES:
        response = _send(sweep, staff, call, sweep.case)
        if call.template not in PAPERWORK and (_is_image(response) or _embeds_image(response)):
            served.add(call.template)
    assert {"/api/v1/images/{image_id}/content", "/api/v1/images/{image_id}/preview",
            "/api/v1/images/{image_id}/thumbnail", "/api/v1/referrals/{referral_id}/documents/report.html"} <= served, \
        served


# -- mass assignment --------------------------------------------------------------------------------------

BODY_CALLS = [c for c in ROUTES.calls if c.is_api and c.body_schemas()]


@pytest.mark.parametrize("call", BODY_CALLS, ids=lambda c: c.id)
def test_fields_a_client_must_not_set_are_refused_with_422(sweep: Sweep, call: Call, unchanged: None) -> None:
    """A valid body plus organization_id, status, storage_key, sha256 and created_by (those the schema does
    not declare as input) is refused naming each of them, whoever sends it, and nothing changes."""
    kind, _ = _body(sweep, call, sweep.case)
    declared = {name for schema in call.body_schemas() for name in schema.fields}
    extra = {name: sweep.extra_values[name] for name in MASS_ASSIGNMENT if name not in declared}
    assert extra, f"{call.id} declares every probed field"
    # Extra fields travel where the body's fields do: in the JSON, or as form fields beside a file.
    location = "json" if kind == "json" else "form"
    refused_by_validation = []
    for actor in sweep.insiders:
        _, fresh = _body(sweep, call, sweep.case)
        response = _send(sweep, actor, call, sweep.case, body=(kind or "multipart", dict(fresh, **extra)))
        assert 400 <= response.status_code < 500, f"{actor.label}: {_describe(response)}"
        if response.status_code == 422:
            errors = response.get_json()["errors"]
            named = errors.get(location, errors)
            # Exactly the probed fields: the rest of the body is valid, so they alone were the reason.
            assert set(named) == set(extra), f"{actor.label}: {named}"
            refused_by_validation.append(actor.label)
    assert refused_by_validation, f"{call.id}: nobody got 422 for {sorted(extra)}"


# -- the sweep covers what the app serves ----------------------------------------------------------------


def test_the_sweep_covers_every_id_rule_and_every_documented_path() -> None:
    swept_rules = {c.rule for c in SWEPT}
    assert ROUTES.id_rules <= swept_rules, sorted(ROUTES.id_rules - swept_rules)
    documented = {p for p in ROUTES.openapi_paths if "{" in p}
    templates = {c.openapi_template for c in SWEPT}
    assert documented <= templates, sorted(documented - templates)
    assert len(SWEPT) >= 40, len(SWEPT)
    stale = set(EXCEPTIONS) - {(c.method, c.template) for c in SWEPT}
    assert not stale, f"exceptions for routes that no longer exist: {sorted(stale)}"


# -- the FHIR read API -----------------------------------------------------------------------------------
# Its routes take FHIR ids as plain strings (/fhir/R4/<type>/<id>), so the URL map sweep above does not see
# them: every type it serves is swept here, with an object of the same world for each.

# The object type the access functions audit as denied when an outsider tries each FHIR type.
FHIR_DENIED_AS = {"ServiceRequest": "referral", "Task": "referral", "ImagingStudy": "referral",
                  "Observation": "image", "DiagnosticReport": "report", "Composition": "report",
                  "Encounter": "report", "Patient": "patient", "Coverage": "patient", "Claim": "claim"}
FHIR_CASE_TYPES = ("ServiceRequest", "Task", "ImagingStudy", "Observation", "DiagnosticReport", "Composition",
                   "Encounter")


def _imaging_study_id(s: Sweep, case: dict[str, Any]) -> str:
    """The ImagingStudy id of the case's image: the referral's id, with a digest of the DICOM study UID when the
    image came with one."""
    image = s.a.staff.get(f"/api/v1/images/{case['image_id']}")
    assert image.status_code == 200, image.get_json()
    study_uid = (image.get_json().get("dicom") or {}).get("study_instance_uid")
    if not study_uid:
        return str(case["referral_id"])
    return f"{case['referral_id']}-{hashlib.sha256(study_uid.encode()).hexdigest()[:STUDY_DIGEST_LENGTH]}"


def _fhir_ids(s: Sweep) -> dict[str, str]:
    report = s.a.staff.get(f"/api/v1/referrals/{s.case['referral_id']}/report")
    assert report.status_code == 200, report.get_json()
    return {"ServiceRequest": s.case["referral_id"], "Task": s.case["referral_id"],
            "ImagingStudy": _imaging_study_id(s, s.case), "Observation": s.case["image_id"],
            "DiagnosticReport": report.get_json()["id"], "Composition": report.get_json()["id"],
            "Encounter": report.get_json()["id"], "Patient": s.case["patient_id"], "Coverage": s.case["patient_id"],
            "Organization": s.case["organization_id"], "Practitioner": s.case["provider_id"],
            "PractitionerRole": s.case["provider_id"], "Claim": s.case["claim_id"]}


def _fhir_get(s: Sweep, actor: Actor, path: str) -> TestResponse:
    return s.shared.client.get(f"/fhir/R4/{path}", headers={"Authorization": f"Bearer {actor.token}"})


def test_the_fhir_sweep_covers_every_type_the_read_api_serves() -> None:
    from referral.fhir.capability import READABLE_TYPES

    assert set(READABLE_TYPES) - {"Media"} == set(FHIR_DENIED_AS) | {"Organization", "Practitioner",
                                                                     "PractitionerRole"}


@pytest.mark.parametrize("resource_type", sorted(set(FHIR_DENIED_AS) | {"Organization", "Practitioner",
                                                                        "PractitionerRole"}))
def test_outsiders_get_404_on_every_fhir_read(sweep: Sweep, resource_type: str, unchanged: None) -> None:
    ids = _fhir_ids(sweep)
    if resource_type != "Claim":
        # The object is really there for its own practice (a claim read would record an export, a change to the
        # world this test forbids; tests/fhir/test_read_api.py reads it).
        insider = Actor("a-staff", str(sweep.a.staff.token))
        assert _fhir_get(sweep, insider, f"{resource_type}/{ids[resource_type]}").status_code == 200
    outsiders = sweep.outsiders if resource_type in FHIR_CASE_TYPES else [*sweep.outsiders, sweep.reader_actor]
    wrong = []
    for actor in outsiders:
        denied = _denied_count(sweep)
        response = _fhir_get(sweep, actor, f"{resource_type}/{ids[resource_type]}")
        if response.status_code != 404 or response.mimetype != "application/fhir+json":
            wrong.append(f"{actor.label}: {response.status_code} {response.get_data(as_text=True)[:200]}")
        elif resource_type in FHIR_DENIED_AS and _denied_count(sweep) <= denied:
            wrong.append(f"{actor.label}: 404 but no audit row with outcome denied")
    assert not wrong, f"/fhir/R4/{resource_type} must answer 404 to outsiders:\n" + "\n".join(wrong)


@pytest.mark.parametrize("resource_type", FHIR_CASE_TYPES)
def test_the_assigned_reader_reads_the_case_by_fhir_but_not_the_practices_other_referrals(
        sweep: Sweep, resource_type: str, unchanged: None) -> None:
    ids = _fhir_ids(sweep)
    other = dict(ids, ServiceRequest=sweep.other_case["referral_id"], Task=sweep.other_case["referral_id"],
                 ImagingStudy=_imaging_study_id(sweep, sweep.other_case))

    assert _fhir_get(sweep, sweep.reader_actor, f"{resource_type}/{ids[resource_type]}").status_code == 200
    if resource_type in ("ServiceRequest", "Task", "ImagingStudy"):
        assert _fhir_get(sweep, sweep.reader_actor, f"{resource_type}/{other[resource_type]}").status_code == 404
