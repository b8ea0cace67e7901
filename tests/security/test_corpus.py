"""The bad-input corpus (tests/corpus/): every file is sent where its manifest entry says, to the real app on
both backends, and must get the status the entry names, never a 5xx. A refused request leaves the database
and the store exactly as they were. Files that are stored are checked for how they come back: under a
server-made name, as an attachment of a fixed type, and with any markup they carry shown escaped or not at
all. A file in the corpus that no entry names fails the suite, so the corpus cannot grow untested.
"""

from __future__ import annotations

import html
import io
import json
import urllib.parse
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from werkzeug.datastructures import FileStorage
from werkzeug.test import TestResponse, encode_multipart

from tests.support.api import new_referral
from tests.support.routes import ROUTES
from tests.support.snapshots import SharedApp, changes, snapshot
from tests.support.web import PASSWORD, sign_in
from tests.support.world import Practice, World

CORPUS = Path(__file__).resolve().parent.parent / "corpus"
MANIFEST = json.loads((CORPUS / "manifest.json").read_text())
EVERY_JSON_ROUTE = "every JSON route"
LOCATIONS = ("json", "form", "files", "query", "headers")


@dataclass(frozen=True)
class Case:
    id: str
    entry: dict[str, Any]
    method: str
    path: str

    @property
    def request(self) -> dict[str, Any]:
        return dict(self.entry["request"])

    @property
    def expect(self) -> dict[str, Any]:
        return dict(self.entry["expect"])

    def body(self) -> bytes:
        return (CORPUS / self.entry["file"]).read_bytes()


def _cases() -> list[Case]:
    cases: list[Case] = []
    for entry in MANIFEST["entries"]:
        name = entry.get("file") or entry["name"]
        request = entry["request"]
        if request["path"] == EVERY_JSON_ROUTE:
            # The JSON parser is shared by every blueprint; each route that reads JSON gets the file, so a
            # blueprint built another way is caught.
            calls = [c for c in ROUTES.calls if any(s.location == "json" for s in c.schemas)]
            assert calls, "the route table lists no JSON route"
            cases.extend(Case(f"{name} -> {c.id}", entry, c.method, c.openapi_template) for c in calls)
        else:
            cases.append(Case(name, entry, request["method"], request["path"]))
    return cases


CASES = _cases()


def test_every_corpus_file_has_a_manifest_entry_and_every_entry_its_file() -> None:
    on_disk = {p.name for p in CORPUS.iterdir() if p.name != "manifest.json"}
    named = [e["file"] for e in MANIFEST["entries"] if "file" in e]
    assert len(named) == len(set(named)), "a file is named by two entries"
    assert on_disk - set(named) == set(), f"corpus files with no manifest entry: {sorted(on_disk - set(named))}"
    assert set(named) - on_disk == set(), f"manifest entries whose file is missing: {sorted(set(named) - on_disk)}"
    for entry in MANIFEST["entries"]:
        assert ("file" in entry) != ("generate" in entry), entry.get("file") or entry.get("name")
        assert entry["why"], entry
        assert entry["expect"]["status"], entry


# -- the world the corpus is sent to -------------------------------------------------------------------------


@dataclass
class Target:
    shared: SharedApp
    practice: Practice
    ids: dict[str, str]
    browser: FlaskClient

    def token(self, role: str) -> str:
        return str(getattr(self.practice, role).token)


@pytest.fixture(scope="module")
def target(shared_app: SharedApp) -> Target:
    world = World(shared_app.app, shared_app.client)
    practice = world.practice("Corpus Dental")
    referral_id = new_referral(practice)
    email = f"corpus-staff@{practice.id}.example.com"
    created = world.admin.post(f"/api/v1/organizations/{practice.id}/users",
                               {"email": email, "role": "staff", "password": PASSWORD,
                                "provider_id": practice.hygienist_provider_id})
    assert created.status_code == 201, created.get_json()
    browser = shared_app.app.test_client()
    sign_in(browser, email)
    ids = {"referral_id": referral_id, "organization_id": practice.id, "patient_id": practice.patient_id,
           "hygienist_provider_id": practice.hygienist_provider_id}
    return Target(shared=shared_app, practice=practice, ids=ids, browser=browser)


def _fill(template: str, ids: dict[str, str]) -> str:
    """Put the world's ids into a path or form value; an id the world has no object for is a fresh UUID, since
    these bodies are refused before anything is looked up."""
    while "{" in template:
        start = template.index("{")
        end = template.index("}", start)
        name = template[start + 1:end]
        template = template[:start] + ids.get(name, str(uuid.uuid4())) + template[end + 1:]
    return template


def _limit(expression: str, target: Target) -> int:
    name, _, extra = expression.partition("+")
    return int(target.shared.app.config[name]) + int(extra or 0)


def _send(target: Target, case: Case) -> tuple[TestResponse, io.BytesIO | None]:
    request, client = case.request, target.shared.client
    path = _fill(case.path, target.ids)
    headers = {"Authorization": f"Bearer {target.token(request['as'])}"}
    generate = case.entry.get("generate", {})
    if "declared_length" in generate:
        # A real client declares the length it is about to send; the test client would measure the stream.
        stream = io.BytesIO(b"--x\r\n" + b"a" * 1024)
        content_type = "multipart/form-data; boundary=x" if request["body"] == "multipart" else request["content_type"]
        response = client.open(path, method=case.method, input_stream=stream, headers=headers,
                               environ_overrides={"CONTENT_LENGTH": str(_limit(generate["declared_length"], target)),
                                                  "CONTENT_TYPE": content_type})
        return response, stream
    if request["body"] == "query":
        query = urllib.parse.urlencode({request["parameter"]: case.body().decode("latin-1")})
        return client.open(f"{path}?{query}", method=case.method, headers=headers), None
    if request["body"] == "json":
        return client.open(path, method=case.method, data=case.body(), content_type=request["content_type"],
                           headers=headers), None
    data = b"\0" * _limit(generate["size"], target) if "size" in generate else case.body()
    form = dict(MANIFEST["form_defaults"].get(request["path"], {}))
    form.update(request.get("form", {}))
    fields: dict[str, Any] = {k: _fill(v, target.ids) for k, v in form.items() if v is not None}
    fields[request["field"]] = FileStorage(io.BytesIO(data), filename=request["filename"],
                                           content_type=request["content_type"])
    # Encoded in memory: the test client would spool a large body to a file it never closes.
    boundary, body = encode_multipart(fields)
    return client.open(path, method=case.method, data=body, content_type=f"multipart/form-data; boundary={boundary}",
                       headers=headers), None


def _error_texts(errors: Any) -> list[str]:
    if isinstance(errors, dict):
        return [text for value in errors.values() for text in _error_texts(value)]
    if isinstance(errors, list):
        return [text for value in errors for text in _error_texts(value)]
    return [str(errors)]


def _error_names(errors: Any) -> set[str]:
    names: set[str] = set()
    if isinstance(errors, dict):
        for key, value in errors.items():
            names.add(str(key))
            if key in LOCATIONS and isinstance(value, dict):
                names.update(str(k) for k in value)
    return names


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_each_corpus_file_gets_the_status_its_manifest_names(target: Target, case: Case) -> None:
    expect = case.expect
    before = snapshot(target.shared.app)

    response, stream = _send(target, case)

    assert response.status_code < 500, f"{response.status_code}: {response.get_data(as_text=True)[:300]}"
    body = response.get_json(silent=True)
    assert response.status_code == expect["status"], body
    if expect["status"] >= 400:
        assert body is not None, response.get_data(as_text=True)[:300]
        assert body["code"] == expect["status"], body
        if "message" in expect:
            said = " ".join([body["message"], *_error_texts(body.get("errors"))]).lower()
            # Field names are said in words in the summary ("first_name" reads "first name").
            assert expect["message"].lower() in said or expect["message"].lower().replace("_", " ") in said, body
        missing = set(expect.get("errors", [])) - _error_names(body.get("errors"))
        assert not missing, f"errors do not name {sorted(missing)}: {body.get('errors')}"
        after = snapshot(target.shared.app)
        assert after == before, f"a refused request stored something: {changes(before, after)}"
    if expect.get("body_read") is False:
        assert stream is not None
        assert stream.tell() == 0, "the server read a body it refused by its declared length"
    if expect["status"] == 201:
        _check_stored(target, case, body)


# -- what comes back out of a stored file ---------------------------------------------------------------------


def _check_stored(target: Target, case: Case, image: dict[str, Any]) -> None:
    expect = case.expect
    staff = {"Authorization": f"Bearer {target.token('staff')}"}
    client = target.shared.client
    content = client.get(f"/api/v1/images/{image['id']}/content", headers=staff)
    assert content.status_code == 200
    # The download is named by the server, never by the uploader, and can never be shown in place.
    extension = {"image/jpeg": "jpg", "image/png": "png", "image/tiff": "tif", "application/dicom": "dcm"}
    assert content.headers["Content-Disposition"] == \
        f'attachment; filename="image-{image["id"]}.{extension[image["content_type"]]}"'
    assert content.headers["X-Content-Type-Options"] == "nosniff"
    assert content.data == case.body(), "the original is not kept byte for byte"
    if "stored_filename" in expect:
        assert image["original_filename"] == expect["stored_filename"]
        assert not any(ch in image["original_filename"] for ch in "/\\\0\u202e")
    if "served_as" in expect:
        assert content.mimetype == expect["served_as"]
        preview = client.get(f"/api/v1/images/{image['id']}/preview", headers=staff)
        assert preview.status_code == 200
        assert preview.mimetype == "image/jpeg"
        assert b"<script" not in preview.data.lower(), "the preview kept the bytes after the picture"
    if "markup" in expect:
        _check_markup_is_escaped(target, image, expect["markup"])


def _check_markup_is_escaped(target: Target, image: dict[str, Any], markup: list[str]) -> None:
    """Every rendering of the case shows the header's markup escaped or not at all, and at least one shows it
    escaped, so the check is about something that is really rendered."""
    staff = {"Authorization": f"Bearer {target.token('staff')}"}
    client, referral_id = target.shared.client, target.ids["referral_id"]
    renderings = {
        "image JSON": client.get(f"/api/v1/images/{image['id']}", headers=staff),
        "referral JSON": client.get(f"/api/v1/referrals/{referral_id}", headers=staff),
        "FHIR bundle": client.get(f"/api/v1/referrals/{referral_id}/fhir", headers=staff),
        "capture note": client.get(f"/api/v1/referrals/{referral_id}/documents/capture-note.html", headers=staff),
        "referral page": target.browser.get(f"/referrals/{referral_id}"),
    }
    escaped_somewhere = False
    for where, response in renderings.items():
        assert response.status_code == 200, where
        assert response.headers["X-Content-Type-Options"] == "nosniff", where
        text = response.get_data(as_text=True)
        for fragment in markup:
            assert fragment not in text, f"{where} carries {fragment!r} unescaped"
            escaped_somewhere |= html.escape(fragment) in text
    assert escaped_somewhere, "no rendering shows the header text at all, so escaping was not exercised"
