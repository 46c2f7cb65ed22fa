"""A foreign authorization server for unit tests: metadata, JWKS and introspection served
through an ``httpx.MockTransport`` behind our real ``Fetcher``, with keys made in the test.

Every request is counted per path, so tests can assert how often the resource server asked.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections import Counter
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

from oauth_server.fetch import Fetcher
from oauth_server.resource import (
    IssuerConfig,
    ResourceServer,
    oauth_metadata_url,
    oidc_metadata_url,
    resource_fetch_policy,
)
from tests.helpers import FrozenClock

ISSUER = "https://auth.example/tenant"
RESOURCE = "https://mcp.example/mcp"
RS_CLIENT = ("mcp-resource", "rs-secret")

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey


class SigningKey:
    """A private key of the issuer, its algorithm and its public JWK."""

    def __init__(self, alg: str, kid: str) -> None:
        self.alg, self.kid = alg, kid
        self.private: PrivateKey
        if alg.startswith(("RS", "PS")):
            self.private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            self.jwk = json.loads(RSAAlgorithm.to_jwk(self.private.public_key()))
        elif alg == "ES256":
            self.private = ec.generate_private_key(ec.SECP256R1())
            self.jwk = json.loads(ECAlgorithm.to_jwk(self.private.public_key()))
        else:
            self.private = ed25519.Ed25519PrivateKey.generate()
            self.jwk = json.loads(OKPAlgorithm.to_jwk(self.private.public_key()))
        self.jwk.update(kid=kid, use="sig")

    def public_pem(self) -> bytes:
        return self.private.public_key().public_bytes(serialization.Encoding.PEM,
                                                      serialization.PublicFormat.SubjectPublicKeyInfo)

    def sign(self, claims: Mapping[str, Any], **header: Any) -> str:
        headers = {"kid": self.kid, "typ": "at+jwt", **header}
        if headers["kid"] is None:
            del headers["kid"]  # a None typ stays: pyjwt then omits the header instead of adding "JWT"
        return jwt.encode(dict(claims), self.private, algorithm=self.alg, headers=headers)


def claims(now: float, **overrides: Any) -> dict[str, Any]:
    """RFC 9068 §2.2 claims of a good token for RESOURCE, issued at ``now``."""
    base: dict[str, Any] = {"iss": ISSUER, "sub": "alice", "aud": RESOURCE, "client_id": "inspector",
                            "iat": int(now), "exp": int(now) + 300, "jti": "t-1", "scope": "mcp:tools"}
    base.update(overrides)
    return {name: value for name, value in base.items() if value is not None}


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned_token(header: Mapping[str, Any], payload: Mapping[str, Any], secret: bytes | None = None) -> str:
    """A JWS built by hand: ``alg: none`` (empty signature) or HS256 with ``secret``, which pyjwt
    would refuse to produce from a PEM key."""
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(payload).encode())}"
    signature = b"" if secret is None else hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(signature)}"


class _Body(httpx.AsyncByteStream):
    """A streamed body: the fetcher reads raw chunks with a cap, as from a real connection (a
    ``Response(json=...)`` would arrive already read)."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield self.data


def respond(status: int, body: object = None, *, content: bytes | None = None,
            headers: Mapping[str, str] | None = None) -> httpx.Response:
    data = content if content is not None else json.dumps(body).encode()
    all_headers = {"content-type": "application/json", "content-length": str(len(data)), **(headers or {})}
    return httpx.Response(status, headers=all_headers, stream=_Body(data))


class FakeIssuer:
    """The issuer's HTTP side. ``fail[path] = status`` makes that path answer an error."""

    def __init__(self, *keys: SigningKey, issuer: str = ISSUER) -> None:
        self.issuer = issuer
        self.host = urlsplit(issuer).netloc
        self.keys = list(keys)
        self.hits: Counter[str] = Counter()
        self.fail: dict[str, int] = {}
        self.bodies: dict[str, bytes] = {}
        self.jwks_uri = f"{issuer}/jwks"
        self.introspection_endpoint = f"{issuer}/introspect"
        self.metadata: dict[str, Any] = {"issuer": issuer, "jwks_uri": self.jwks_uri,
                                         "introspection_endpoint": self.introspection_endpoint}
        self.metadata_paths = {urlsplit(oauth_metadata_url(issuer)).path, urlsplit(oidc_metadata_url(issuer)).path}
        self.jwks_headers = {"cache-control": "max-age=600"}
        self.introspect: Callable[[str], dict[str, Any]] = lambda token: {"active": False}
        self.authorizations: list[str] = []

    def handle(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        self.hits[path] += 1
        if path in self.fail:
            return respond(self.fail[path], {"error": "nope"})
        if path in self.bodies:
            return respond(200, content=self.bodies[path])
        if path in self.metadata_paths:
            return respond(200, self.metadata)
        if path == urlsplit(self.jwks_uri).path:
            return respond(200, {"keys": [key.jwk for key in self.keys]}, headers=self.jwks_headers)
        if path == urlsplit(self.introspection_endpoint).path and request.method == "POST":
            self.authorizations.append(request.headers.get("authorization", ""))
            form = {name: values[0] for name, values in parse_qs(request.content.decode()).items()}
            return respond(200, self.introspect(form["token"]))
        return respond(404, {"error": "not_found"})


async def private_address(host: str, port: int) -> list[str]:
    """The resolver: every name is a private-network address (allowed for configured issuers)."""
    return ["10.0.0.7"]


def fetcher_for(*issuers: FakeIssuer) -> Fetcher:
    """Our real ``Fetcher``; its transport hands each request to the issuer its Host names."""
    by_host = {issuer.host: issuer for issuer in issuers}

    def handle(request: httpx.Request) -> httpx.Response:
        return by_host[request.headers["host"]].handle(request)

    return Fetcher(resource_fetch_policy(), resolver=private_address, transport=httpx.MockTransport(handle))


def resource_server(
    clock: FrozenClock, *configs: IssuerConfig | str, issuers: tuple[FakeIssuer, ...]
) -> ResourceServer:
    return ResourceServer(RESOURCE, configs, fetcher=fetcher_for(*issuers), clock=clock)
