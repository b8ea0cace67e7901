"""CORS on DICOMweb for browser viewers served from their own origin (OHIF): only the origins listed in
DICOMWEB_CORS_ORIGINS, only under /dicomweb, errors included; preflights need no token and tell nothing."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import requests
from flask import Flask

from referral import create_app
from referral.config import ConfigError, Settings, load_settings
from storage import Storage
from tests.dicomweb.conftest import Case
from tests.support.dicomweb import raw, values
from tests.support.fhir import audit_rows
from tests.support.settings import make_settings
from tests.support.world import Practice

VIEWER = "https://viewer.example.org"
LOCAL_VIEWER = "http://localhost:3000"
STRANGER = "https://viewer.example.net"
CORS_HEADERS = ("Access-Control-Allow-Origin", "Access-Control-Allow-Methods", "Access-Control-Allow-Headers",
                "Access-Control-Max-Age", "Access-Control-Expose-Headers", "Access-Control-Allow-Credentials")


@pytest.fixture
def app_settings(tmp_path: Path, database_url: str) -> Settings:
    return make_settings(tmp_path, database_url, dicomweb_cors_origins=(VIEWER, LOCAL_VIEWER))


def _root(dicomweb_url: str) -> str:
    return dicomweb_url.removesuffix("/dicomweb")


def _cors_of(response: requests.Response) -> dict[str, str]:
    return {name: response.headers[name] for name in CORS_HEADERS if name in response.headers}


def _preflight(url: str, origin: str, method: str = "GET",
               headers: str = "authorization,accept") -> requests.Response:
    return requests.options(url, headers={"Origin": origin, "Access-Control-Request-Method": method,
                                          "Access-Control-Request-Headers": headers}, timeout=30)


def _instance_path(case: Case) -> str:
    return f"/studies/{case.study}/series/{case.series}/instances/{case.sops[0]}"


def _assert_allowed(response: requests.Response, origin: str) -> None:
    assert response.headers["Access-Control-Allow-Origin"] == origin
    assert "Origin" in response.headers.get("Vary", "")
    exposed = {name.strip() for name in response.headers["Access-Control-Expose-Headers"].split(",")}
    assert {"Content-Type", "Content-Length", "Content-Location", "Warning"} <= exposed
    assert "Access-Control-Allow-Credentials" not in response.headers


# --- preflight ---------------------------------------------------------------------------------------------------


def test_a_preflight_from_a_listed_origin_is_answered_without_a_token(app: Flask, dicomweb_url: str, case: Case):
    audited = len(audit_rows(app, "image.list", "image.download", "image.read"))
    for path, method, asked in (("/studies", "GET", "authorization,accept"),
                                (_instance_path(case), "GET", "authorization,accept"),
                                ("/studies", "POST", "authorization,accept,content-type")):
        for origin in (VIEWER, LOCAL_VIEWER):
            response = _preflight(dicomweb_url + path, origin, method, asked)
            assert response.status_code == 204, (path, response.status_code, response.text)
            assert response.content == b""
            assert response.headers["Access-Control-Allow-Origin"] == origin
            assert "Origin" in response.headers["Vary"]
            methods = {m.strip() for m in response.headers["Access-Control-Allow-Methods"].split(",")}
            assert methods == {"GET", "POST", "OPTIONS"}
            allowed = {h.strip().lower() for h in response.headers["Access-Control-Allow-Headers"].split(",")}
            assert {"authorization", "accept", "content-type"} <= allowed
            assert int(response.headers["Access-Control-Max-Age"]) > 0
            assert "Access-Control-Allow-Credentials" not in response.headers
    # Nothing was looked up for it: no image read was audited, and an unknown study gets the very same answer.
    assert len(audit_rows(app, "image.list", "image.download", "image.read")) == audited
    known = _preflight(dicomweb_url + _instance_path(case), VIEWER)
    unknown = _preflight(dicomweb_url + "/studies/1.2.3/series/4.5.6/instances/7.8.9", VIEWER)
    assert (unknown.status_code, unknown.content, _cors_of(unknown)) == \
        (known.status_code, known.content, _cors_of(known))


def test_a_preflight_from_another_origin_is_refused_without_cors_headers(dicomweb_url: str, case: Case):
    for origin in (STRANGER, "null", "https://viewer.example.org.example.net", VIEWER.upper(), VIEWER + ":8443"):
        for path in ("/studies", _instance_path(case), "/studies/1.2.3"):
            response = _preflight(dicomweb_url + path, origin)
            assert response.status_code == 403, (origin, path, response.status_code)
            assert _cors_of(response) == {}, (origin, path)
            assert response.json()["code"] == 403
            assert case.study not in response.text
            assert "DICOMWEB_CORS_ORIGINS" in response.text


def test_without_origins_configured_there_is_no_cors(app_settings: Settings, store: Storage, riverside: Practice,
                                                     case: Case):
    """The default: an app without DICOMWEB_CORS_ORIGINS refuses every preflight and adds no CORS header."""
    plain = create_app(dataclasses.replace(app_settings, dicomweb_cors_origins=()), store=store)
    try:
        client = plain.test_client()
        preflight = client.options("/dicomweb/studies", headers={"Origin": VIEWER,
                                                                 "Access-Control-Request-Method": "GET"})
        assert preflight.status_code == 403
        assert not any(name in preflight.headers for name in CORS_HEADERS)
        search = client.get("/dicomweb/studies", headers={"Origin": VIEWER,
                                                          "Authorization": f"Bearer {riverside.staff.token}"})
        assert search.status_code == 200
        assert [values(s, "0020000D")[0] for s in search.get_json()] == [case.study]
        assert not any(name in search.headers for name in CORS_HEADERS)
        assert "Origin" not in search.headers.get("Vary", "")
    finally:
        plain.extensions["referral.engine"].dispose()


# --- actual calls --------------------------------------------------------------------------------------------------


def test_a_search_carries_the_headers_only_for_a_listed_origin(dicomweb_url: str, riverside: Practice, case: Case):
    path = "/studies?AccessionNumber=*&colour=blue"  # an ignored parameter: the answer has a Warning to expose
    allowed = raw(dicomweb_url, path, riverside.staff, headers={"Origin": VIEWER})
    assert allowed.status_code == 200
    assert [values(s, "0020000D")[0] for s in allowed.json()] == [case.study]
    assert "Warning" in allowed.headers
    _assert_allowed(allowed, VIEWER)
    for headers in ({"Origin": STRANGER}, {}):
        other = raw(dicomweb_url, path, riverside.staff, headers=headers)
        assert other.status_code == 200
        assert other.json() == allowed.json()
        assert _cors_of(other) == {}, headers
        assert "Origin" in other.headers.get("Vary", ""), "the answer depends on the origin, for caches"


def test_a_retrieve_carries_the_headers_only_for_a_listed_origin(dicomweb_url: str, riverside: Practice,
                                                                 case: Case):
    for path in (_instance_path(case), _instance_path(case) + "/thumbnail", f"/studies/{case.study}/metadata"):
        allowed = raw(dicomweb_url, path, riverside.staff, headers={"Origin": LOCAL_VIEWER})
        assert allowed.status_code == 200, path
        _assert_allowed(allowed, LOCAL_VIEWER)
        other = raw(dicomweb_url, path, riverside.staff, headers={"Origin": STRANGER})
        assert other.status_code == 200, path
        assert other.headers["Content-Type"].split(";")[0] == allowed.headers["Content-Type"].split(";")[0]
        assert _cors_of(other) == {}, path
    instance = raw(dicomweb_url, _instance_path(case), riverside.staff, headers={"Origin": VIEWER})
    assert case.files[0] in instance.content, "the stored file itself, in its multipart part"


def test_error_answers_carry_the_allow_origin_for_a_listed_origin(dicomweb_url: str, riverside: Practice,
                                                                  hillside: Practice, case: Case):
    """The viewer must be able to read why a call failed: 401 (no token, a wrong one), 404 and 406."""
    calls = [
        (None, "/studies", {}, 401),
        (None, "/studies", {"Authorization": "Bearer not-a-token"}, 401),
        (riverside.staff, "/studies/1.2.3.4/series", {}, 200),  # an unknown study searched: empty, not an error
        (riverside.staff, "/studies/1.2.3.4", {}, 404),
        (hillside.staff, _instance_path(case), {}, 404),  # another practice's instance: not found
        (riverside.staff, "/no-such-route", {}, 404),
        (riverside.staff, "/studies", {"Accept": "image/png"}, 406),
    ]
    for who, path, headers, status in calls:
        allowed = raw(dicomweb_url, path, who, headers={**headers, "Origin": VIEWER})
        assert allowed.status_code == status, (path, allowed.status_code, allowed.text)
        _assert_allowed(allowed, VIEWER)
        other = raw(dicomweb_url, path, who, headers={**headers, "Origin": STRANGER})
        assert other.status_code == status, path
        assert _cors_of(other) == {}, path
        if status == 404:
            assert case.study not in allowed.text


def test_other_routes_never_carry_cors_headers(dicomweb_url: str, riverside: Practice, case: Case):
    root = _root(dicomweb_url)
    token = {"Authorization": f"Bearer {riverside.staff.token}", "Origin": VIEWER}
    for method, path, headers in (
        ("GET", f"/api/v1/referrals/{case.referral_id}", token),
        ("GET", "/api/v1/referrals/00000000-0000-0000-0000-000000000000", token),
        ("GET", "/api/v1/referrals", {"Origin": VIEWER}),
        ("GET", "/fhir/R4/metadata", token),
        ("GET", "/login", {"Origin": VIEWER}),
        ("GET", "/", {"Origin": VIEWER}),
        ("GET", "/dicomweb-studies", token),
        ("OPTIONS", "/api/v1/referrals", {"Origin": VIEWER, "Access-Control-Request-Method": "GET"}),
        ("OPTIONS", "/login", {"Origin": VIEWER, "Access-Control-Request-Method": "POST"}),
        ("OPTIONS", "/fhir/R4/metadata", {"Origin": VIEWER, "Access-Control-Request-Method": "GET"}),
    ):
        response = requests.request(method, root + path, headers=headers, timeout=30, allow_redirects=False)
        assert _cors_of(response) == {}, (method, path, response.status_code)
        assert "Origin" not in response.headers.get("Vary", ""), (method, path)


# --- the setting ---------------------------------------------------------------------------------------------------


def test_the_setting_reads_exact_origins(tmp_path: Path):
    base = {"APP_ENV": "test", "INSTANCE_PATH": str(tmp_path)}
    assert load_settings(base).dicomweb_cors_origins == ()
    assert load_settings({**base, "DICOMWEB_CORS_ORIGINS": " "}).dicomweb_cors_origins == ()
    chosen = load_settings({**base, "DICOMWEB_CORS_ORIGINS":
                            " https://Viewer.Example.org:443 , http://localhost:3000,https://viewer.example.org,"
                            "http://[::1]:8080"})
    assert chosen.dicomweb_cors_origins == ("https://viewer.example.org", "http://localhost:3000",
                                            "http://[::1]:8080")
    assert chosen.to_flask_config()["DICOMWEB_CORS_ORIGINS"] == chosen.dicomweb_cors_origins


@pytest.mark.parametrize(("value", "message"), [
    ("*", "'\\*' \\(any site\\) is refused"),
    ("https://viewer.example.org, *", "is refused"),
    ("https://*.example.org", "is refused"),
    ("viewer.example.org", "not an origin"),
    ("https://viewer.example.org/", "not an origin"),
    ("https://viewer.example.org/ohif", "not an origin"),
    ("https://viewer.example.org?x=1", "not an origin"),
    ("https://user@viewer.example.org", "not an origin"),
    ("https://viewer.example.org:99999", "not an origin"),
    ("ftp://viewer.example.org", "not an origin"),
    ("null", "not an origin"),
])
def test_the_setting_refuses_what_is_not_an_exact_origin(tmp_path: Path, value: str, message: str):
    with pytest.raises(ConfigError, match="DICOMWEB_CORS_ORIGINS") as raised:
        load_settings({"APP_ENV": "test", "INSTANCE_PATH": str(tmp_path), "DICOMWEB_CORS_ORIGINS": value})
    assert raised.match(message)
