"""Signing in to the web pages through the Flask test client: users with a password, the sign-in form and its
CSRF token."""

from __future__ import annotations

import re
from typing import Any

from flask.testing import FlaskClient

from tests.support.world import Practice, World

PASSWORD = "correct horse battery staple"


def user_with_password(world: World, practice: Practice, role: str = "staff", email: str | None = None) -> str:
    email = email or f"web-{role}@{practice.id}.example.com"
    body = {"email": email, "role": role, "password": PASSWORD}
    if role in ("staff", "dentist"):
        body["provider_id"] = practice.hygienist_provider_id if role == "staff" else practice.dentist_provider_id
    created = world.admin.post(f"/api/v1/organizations/{practice.id}/users", body)
    assert created.status_code == 201, created.get_json()
    assert "password" not in created.get_json()
    return email


def form_token(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, html
    return match.group(1)


def try_sign_in(client: FlaskClient, email: str, password: str, **kwargs: object) -> Any:
    token = form_token(client.get("/login", **kwargs).get_data(as_text=True))  # type: ignore[arg-type]
    return client.post("/login", data={"email": email, "password": password, "csrf_token": token},
                       **kwargs)  # type: ignore[arg-type]


def sign_in(client: FlaskClient, email: str) -> str:
    """Sign in with PASSWORD and land on the home page; returns the session's CSRF token."""
    response = try_sign_in(client, email, PASSWORD)
    assert response.status_code == 303, response.get_data(as_text=True)
    assert response.headers["Location"] == "/"
    home = client.get("/", follow_redirects=True)  # a platform admin's home is the practices page
    assert home.status_code == 200
    return form_token(home.get_data(as_text=True))
