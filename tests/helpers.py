"""Shared test helpers: drive the OAuth flow over HTTP as a client and a browser would."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from oauth_server import pkce

VERIFIER = "v" * 43 + "-._~0123456789"
CHALLENGE = pkce.s256(VERIFIER)
REDIRECT = "http://127.0.0.1:33418/callback"


class FrozenClock:
    """A clock tests move by hand instead of sleeping."""

    def __init__(self, now: float = 1_800_000_000) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query, keep_blank_values=True).items()}


def form_fields(html: str) -> dict[str, str]:
    """The hidden inputs of a rendered consent page."""
    return dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', html))


@dataclass
class Registered:
    client_id: str
    client_secret: str | None
    body: dict[str, Any]


async def register(http: httpx.AsyncClient, **metadata: Any) -> Registered:
    payload: dict[str, Any] = {"redirect_uris": [REDIRECT], "token_endpoint_auth_method": "none",
                               "client_name": "Test client"}
    payload.update(metadata)
    response = await http.post("/register", json=payload)
    assert response.status_code == 201, response.text
    body = response.json()
    return Registered(body["client_id"], body.get("client_secret"), body)


def authorize_params(client_id: str, **overrides: Any) -> dict[str, Any]:
    params = {
        "response_type": "code", "client_id": client_id, "redirect_uri": REDIRECT,
        "code_challenge": CHALLENGE, "code_challenge_method": "S256", "state": "xyz",
        "scope": "mcp:tools",
    }
    params.update(overrides)
    return {k: v for k, v in params.items() if v is not None}


async def open_consent(http: httpx.AsyncClient, client_id: str, **overrides: Any) -> tuple[str, dict[str, str]]:
    """GET /authorize, follow to the consent page; return its URL and hidden fields."""
    response = await http.get("/authorize", params=authorize_params(client_id, **overrides))
    assert response.status_code == 303, response.text
    consent_url = response.headers["location"]
    page = await http.get(consent_url)
    assert page.status_code == 200, page.text
    return consent_url, form_fields(page.text)


async def get_code(http: httpx.AsyncClient, client_id: str, **overrides: Any) -> str:
    _, fields = await open_consent(http, client_id, **overrides)
    response = await http.post("/consent", data={**fields, "decision": "approve"})
    assert response.status_code == 303, response.text
    params = query(response.headers["location"])
    assert "code" in params, params
    return params["code"]


async def exchange(http: httpx.AsyncClient, client_id: str, code: str, **extra: Any) -> httpx.Response:
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT,
            "code_verifier": VERIFIER, "client_id": client_id}
    data.update(extra)
    return await http.post("/token", data={k: v for k, v in data.items() if v is not None})


async def tokens_for(http: httpx.AsyncClient, client_id: str, **overrides: Any) -> dict[str, Any]:
    code = await get_code(http, client_id, **overrides)
    response = await exchange(http, client_id, code)
    assert response.status_code == 200, response.text
    return dict(response.json())
