"""A practice with its people, a patient and draft referrals, made through the running server's API, and the
HTTP client side of uploads (multipart bodies sent over kept-alive connections)."""

from __future__ import annotations

import http.client
import itertools
import json
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests

from bench.common import BenchError
from referral.validation import npi_with_check_digit

_npis = itertools.count(200_000_001 + (uuid.uuid4().int % 1000) * 10_000)

# The DICOM files of bench/dicoms.py are of this patient; intake refuses another patient's image.
PATIENT: dict[str, Any] = {
    "first_name": "Jane", "last_name": "Doe", "birth_date": "1980-01-01", "sex": "F", "state": "CA",
    "address": {"line1": "12 Oak Street", "city": "Sacramento", "zip": "95816"},
    "coverage": {"payer_id": "60054", "payer_name": "Example Dental Plan", "member_id": "W123456789"},
}
CAPTURED_AT = "2026-01-05T10:30:00+00:00"


def _npi() -> str:
    return npi_with_check_digit(str(next(_npis)))


def _check(response: requests.Response, what: str) -> dict[str, Any]:
    if response.status_code not in (200, 201):
        raise BenchError(f"{what}: HTTP {response.status_code} {response.text[:300]}")
    return dict(response.json())


@dataclass
class Practice:
    base: str
    organization_id: str
    staff_tokens: list[str]
    hygienist_id: str
    dentist_id: str
    patient_id: str
    referral_ids: list[str] = field(default_factory=list)

    @property
    def staff_headers(self) -> dict[str, str]:
        return self.headers_of(0)

    def headers_of(self, user: int) -> dict[str, str]:
        """The Authorization header of the practice's ``user``-th staff member (counting round)."""
        return {"Authorization": f"Bearer {self.staff_tokens[user % len(self.staff_tokens)]}"}


def make_practice(base: str, admin_token: str, *, referrals: int, users: int = 1) -> Practice:
    """A practice with ``users`` staff members: clients that stand for different people each use their own
    token, as the per-user upload limit expects."""
    admin = requests.Session()
    admin.headers["Authorization"] = f"Bearer {admin_token}"
    org = _check(admin.post(f"{base}/api/v1/organizations", timeout=30, json={
        "name": "Bench Family Dental", "npi": _npi(), "tax_id": "12-3456789",
        "address": {"line1": "100 Main St", "city": "Sacramento", "state": "CA", "zip": "95814"}}), "organization")
    providers = f"{base}/api/v1/organizations/{org['id']}/providers"
    person: dict[str, Any] = {"credentials": "DDS", "license_states": ["CA"], "accepting_referrals": True}
    dentist = _check(admin.post(providers, timeout=30, json={
        **person, "first_name": "Alex", "last_name": "Rivera", "npi": _npi(), "taxonomy": "1223G0001X",
        "specialty": "general"}), "dentist")
    hygienist = _check(admin.post(providers, timeout=30, json={
        **person, "first_name": "Sam", "last_name": "Lee", "credentials": "RDH", "npi": _npi(),
        "taxonomy": "124Q00000X", "specialty": "hygiene"}), "hygienist")
    tokens = [
        _check(admin.post(f"{base}/api/v1/organizations/{org['id']}/users", timeout=30, json={
            "email": f"staff-{uuid.uuid4().hex[:8]}@bench.example.com", "role": "staff",
            "provider_id": hygienist["id"]}), "staff user")["token"]
        for _ in range(users)
    ]
    practice = Practice(base, org["id"], tokens, hygienist["id"], dentist["id"], "")
    client = requests.Session()
    client.headers.update(practice.staff_headers)
    practice.patient_id = _check(client.post(f"{base}/api/v1/patients", json=PATIENT, timeout=30), "patient")["id"]
    for _ in range(referrals):
        referral = _check(client.post(f"{base}/api/v1/referrals", timeout=30, json={
            "patient_id": practice.patient_id, "referring_provider_id": dentist["id"], "specialty": "endodontics",
            "reason": "Lingering pain to cold on the lower left first molar", "teeth": ["19"],
            "urgency": "urgent", "mode": "asynchronous"}), "referral")
        practice.referral_ids.append(referral["id"])
    return practice


class MultipartUpload:
    """The multipart body of ``POST /api/v1/referrals/{id}/images`` around a file's bytes, built once."""

    def __init__(self, practice: Practice, filename: str = "radiograph.dcm") -> None:
        self.boundary = f"bench{uuid.uuid4().hex}"
        fields = {"kind": "periapical", "teeth": "19", "reason": "Pain to cold", "captured_at": CAPTURED_AT,
                  "captured_by_provider_id": practice.hygienist_id}
        parts = [f'--{self.boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
                 for name, value in fields.items()]
        parts.append(f'--{self.boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
                     "Content-Type: application/dicom\r\n\r\n")
        self.prefix = "".join(parts).encode()
        self.suffix = f"\r\n--{self.boundary}--\r\n".encode()
        self.content_type = f"multipart/form-data; boundary={self.boundary}"


class Connection:
    """One kept-alive HTTP/1.1 connection; reconnects when the server closed it."""

    def __init__(self, base: str, timeout: float = 120.0) -> None:
        parts = urlsplit(base)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        self.timeout = timeout
        self._connection: http.client.HTTPConnection | None = None

    def _open(self) -> http.client.HTTPConnection:
        if self._connection is None:
            self._connection = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        return self._connection

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def request(self, method: str, path: str, headers: dict[str, str],
                body: list[bytes | Path] | None = None) -> tuple[int, bytes]:
        """Send ``body`` (pieces written one after another, never joined; a Path is streamed from its file)
        and read the whole answer."""
        for attempt in (1, 2):
            connection = self._open()
            sent = False
            try:
                connection.putrequest(method, path, skip_accept_encoding=True)
                for name, value in headers.items():
                    connection.putheader(name, value)
                if body is not None:
                    length = sum(piece.stat().st_size if isinstance(piece, Path) else len(piece) for piece in body)
                    connection.putheader("Content-Length", str(length))
                connection.endheaders()
                sent = True
                for piece in body or ():
                    if isinstance(piece, Path):
                        with piece.open("rb") as source:
                            while chunk := source.read(1 << 20):
                                connection.send(chunk)
                    else:
                        connection.send(piece)
                response = connection.getresponse()
                data = response.read()
                if response.will_close:
                    self.close()
                return response.status, data
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                # A kept-alive connection the server had closed before our request reached it: retry once
                # on a new connection. Anything else, or a second failure, is the caller's error.
                self.close()
                if attempt == 2 or (sent and body):
                    raise
        raise BenchError("unreachable")

    def json(self, method: str, path: str, headers: dict[str, str]) -> tuple[int, Any]:
        status, data = self.request(method, path, headers)
        return status, json.loads(data) if data else None
