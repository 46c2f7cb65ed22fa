"""The ID-JAG grant (``urn:ietf:params:oauth:grant-type:jwt-bearer``; RFC 7523 §3,
draft-ietf-oauth-identity-assertion-authz-grant, MCP ext-auth enterprise-managed authorization
§5.1): every rule refuses its own broken assertion, and only the test identity provider's
well-formed ones get tokens. The provider's JWK Set is served through an injected transport."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from oauth_server import MemoryOAuthServerModel, OAuthServer, OAuthServerSettings, TrustedIdentityProvider, clients
from oauth_server.fetch import Fetcher, FetchPolicy
from oauth_server.grants.identity_providers import as_is_subject
from oauth_server.model.sqlalchemy import SQLAlchemyOAuthServerModel, metadata
from tests.conftest import ISSUER, RESOURCE, SCOPES, build_app
from tests.flows.identity_provider import IdentityProvider
from tests.helpers import FrozenClock

JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
JWKS_URI = "https://idp.example.com/jwks.json"
OTHER_RESOURCE = "http://localhost:8000/other"


class Network:
    """The identity provider's host, in memory: its JWK Set, or an outage."""

    def __init__(self, idp: IdentityProvider) -> None:
        self.idp = idp
        self.down = False
        self.fetches = 0

    def fetcher(self) -> Fetcher:
        async def resolver(host: str, port: int) -> list[str]:
            return ["93.184.216.34"]

        def answer(request: httpx.Request) -> httpx.Response:
            self.fetches += 1
            if self.down or (request.headers["host"], request.url.path) != ("idp.example.com", "/jwks.json"):
                return httpx.Response(503)
            return httpx.Response(200, json=self.idp.jwks, headers={"Cache-Control": "max-age=300"})

        return Fetcher(FetchPolicy(max_bytes=64 * 1024), resolver=resolver, transport=httpx.MockTransport(answer))


def settings(**changes: Any) -> OAuthServerSettings:
    defaults: dict[str, Any] = {"trusted_identity_providers": (TrustedIdentityProvider("https://idp.example.com",
                                                                                       JWKS_URI),)}
    defaults.update(changes)
    return OAuthServerSettings(issuer_url=ISSUER, resource_server_url=RESOURCE, authorization_url=f"{ISSUER}/consent",
                               scopes_supported=SCOPES, default_scopes=("mcp:tools",),
                               extra_resources=(OTHER_RESOURCE,), **defaults)


@pytest.fixture
def idp() -> IdentityProvider:
    return IdentityProvider()


@pytest.fixture
def network(idp: IdentityProvider) -> Network:
    return Network(idp)


@pytest.fixture
async def server(model: MemoryOAuthServerModel, clock: FrozenClock, network: Network) -> AsyncIterator[OAuthServer]:
    fetcher = network.fetcher()
    yield OAuthServer(model, settings(), clock=clock, identity_fetcher=fetcher)
    await fetcher.aclose()


@pytest.fixture
async def http(server: OAuthServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=build_app(server)), base_url=ISSUER) as client:
        yield client


async def enterprise_client(model: MemoryOAuthServerModel, clock: FrozenClock, **metadata: Any) -> dict[str, str]:
    """A client registered for the ID-JAG grant (client_secret_post): the form fields that authenticate it."""
    fields: dict[str, Any] = {"grant_types": [JWT_BEARER], "token_endpoint_auth_method": "client_secret_post",
                              "scope": "mcp:tools mcp:prompts"}
    fields.update(metadata)
    client, secret = clients.build_client(fields, settings(), int(clock.now))
    await model.save_client(client)
    return {"client_id": client.client_id, "client_secret": secret or ""}


@pytest.fixture
async def client(model: MemoryOAuthServerModel, clock: FrozenClock) -> dict[str, str]:
    return await enterprise_client(model, clock)


def assertion(idp: IdentityProvider, client: Mapping[str, str], clock: FrozenClock, **claims: Any) -> str:
    """An ID-JAG for ``client`` and our resource; ``claims`` override (None drops one)."""
    fields: dict[str, Any] = {"audience": ISSUER, "resource": RESOURCE, "client_id": client["client_id"],
                              "now": clock.now}
    fields.update(claims)
    return idp.id_jag(**fields)


async def exchange(http: httpx.AsyncClient, client: Mapping[str, str], jag: str, **form: str) -> httpx.Response:
    return await http.post("/token", data={"grant_type": JWT_BEARER, "assertion": jag, **client, **form})


async def refused(http: httpx.AsyncClient, client: Mapping[str, str], jag: str, error: str = "invalid_grant",
                  **form: str) -> str:
    response = await exchange(http, client, jag, **form)
    assert response.status_code == 400, response.text
    assert response.json()["error"] == error, response.text
    return str(response.json().get("error_description", ""))


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


async def test_id_jag_grant_issues_an_access_token_for_the_namespaced_user(
    http: httpx.AsyncClient, idp: IdentityProvider, client: dict[str, str], clock: FrozenClock
) -> None:
    """ext-auth §5.2: an access token; sub is ``{iss}#{sub}`` by default (iss+sub is unique);
    no refresh token (the draft's "SHOULD NOT return a Refresh Token")."""
    response = await exchange(http, client, assertion(idp, client, clock))
    assert response.status_code == 200, response.text
    body = response.json()
    assert "refresh_token" not in body and body["scope"] == "mcp:tools"
    answer = (await http.post("/introspect", data={"token": body["access_token"], **client})).json()
    assert answer["sub"] == "https://idp.example.com#alice" and answer["client_id"] == client["client_id"]
    assert answer["aud"] == RESOURCE
    assert (await http.post("/mcp", headers={"Authorization": f"Bearer {body['access_token']}"})).status_code == 200


async def test_id_jag_no_refresh_token_even_when_registered_for_refresh(
    http: httpx.AsyncClient, idp: IdentityProvider, model: MemoryOAuthServerModel, clock: FrozenClock
) -> None:
    refreshing = await enterprise_client(model, clock, grant_types=[JWT_BEARER, "refresh_token"])
    body = (await exchange(http, refreshing, assertion(idp, refreshing, clock))).json()
    assert "refresh_token" not in body


async def test_id_jag_bad_signature_refused(http: httpx.AsyncClient, idp: IdentityProvider, client: dict[str, str],
                                            clock: FrozenClock) -> None:
    """RFC 7523 §3 item 9: signed by a key that is not the provider's (same kid): refused."""
    impostor = IdentityProvider()
    impostor.jwk = idp.jwk
    assert "signature" in await refused(http, client, assertion(impostor, client, clock))


async def test_id_jag_wrong_typ_refused(http: httpx.AsyncClient, idp: IdentityProvider, client: dict[str, str],
                                        clock: FrozenClock) -> None:
    """ext-auth §5.1 / RFC 8725 §3.11: ``typ`` must be ``oauth-id-jag+jwt``; an ID token or a
    plain JWT of the same provider is not an authorization grant."""
    for typ in ("JWT", "at+jwt", "id-jag+jwt"):
        assert "typ" in await refused(http, client, assertion(idp, client, clock, typ=typ))


async def test_id_jag_untrusted_issuer_refused(http: httpx.AsyncClient, idp: IdentityProvider,
                                               client: dict[str, str], clock: FrozenClock) -> None:
    """RFC 7523 §3 item 1: only configured providers; the same key under another ``iss`` is refused."""
    assert "trusted" in await refused(http, client, assertion(idp, client, clock, iss="https://evil.example.com"))


async def test_id_jag_wrong_audience_refused(http: httpx.AsyncClient, idp: IdentityProvider,
                                             client: dict[str, str], clock: FrozenClock) -> None:
    """ext-auth §5.1: ``aud`` MUST be our issuer (not the resource, not another AS)."""
    for aud in ("https://other-as.example.com", RESOURCE, [RESOURCE]):
        assert "aud" in await refused(http, client, assertion(idp, client, clock, aud=aud))
    assert (await exchange(http, client, assertion(idp, client, clock, aud=[ISSUER + "/"]))).status_code == 200


async def test_id_jag_wrong_client_id_refused(http: httpx.AsyncClient, idp: IdentityProvider,
                                              model: MemoryOAuthServerModel, client: dict[str, str],
                                              clock: FrozenClock) -> None:
    """ext-auth §5.1: the ``client_id`` claim MUST be the authenticated client: an ID-JAG stolen
    from another client is useless to this one."""
    other = await enterprise_client(model, clock)
    jag = assertion(idp, other, clock)
    assert "another client" in await refused(http, client, jag)
    assert "another client" in await refused(http, client, assertion(idp, client, clock, client_id=None))


async def test_id_jag_expired_refused(http: httpx.AsyncClient, idp: IdentityProvider, client: dict[str, str],
                                      clock: FrozenClock) -> None:
    """RFC 7523 §3 item 4: past ``exp`` (beyond 30 s of leeway) is refused; within it, accepted;
    more than an hour ahead is refused (the server "MAY reject ... unreasonably far in the future")."""
    assert "expired" in await refused(http, client, assertion(idp, client, clock, exp=int(clock.now) - 31))
    assert (await exchange(http, client, assertion(idp, client, clock, exp=int(clock.now) - 29))).status_code == 200
    assert "exp" in await refused(http, client, assertion(idp, client, clock, exp=None))
    for far in (int(clock.now) + 3700, 10**30, 1e300):  # "unreasonably far in the future": no 500 either
        assert "exp" in await refused(http, client, assertion(idp, client, clock, exp=far))


async def test_id_jag_future_iat_refused(http: httpx.AsyncClient, idp: IdentityProvider, client: dict[str, str],
                                         clock: FrozenClock) -> None:
    """RFC 7523 §3 items 5-6: issued (or valid from) more than the leeway in the future: refused."""
    future = int(clock.now) + 120
    assert "future" in await refused(http, client, assertion(idp, client, clock, iat=future, exp=future + 300))
    assert "future" in await refused(http, client, assertion(idp, client, clock, nbf=future))
    assert "iat" in await refused(http, client, assertion(idp, client, clock, iat=None))


async def test_id_jag_replayed_jti_refused(http: httpx.AsyncClient, idp: IdentityProvider, client: dict[str, str],
                                           clock: FrozenClock) -> None:
    """RFC 7523 §3 item 7: an ID-JAG is used once; the same ``jti`` in a new assertion too."""
    jag = assertion(idp, client, clock, jti="one-time")
    assert (await exchange(http, client, jag)).status_code == 200
    assert "already used" in await refused(http, client, jag)
    assert "already used" in await refused(http, client, assertion(idp, client, clock, jti="one-time"))
    assert "jti" in await refused(http, client, assertion(idp, client, clock, jti=None))


async def test_id_jag_replay_refused_across_processes(
    idp: IdentityProvider, network: Network, clock: FrozenClock, tmp_path: Path
) -> None:
    """Two servers, each with its own SQLAlchemy model (own engine and pool, as two processes
    have) on one database: the jti recorded through one (``consume_assertion_jti``) refuses the
    assertion at the other. The contract suite proves the verb atomic on SQLite and Postgres."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'oauth.db'}"
    engine = create_async_engine(url, poolclass=NullPool)
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    await engine.dispose()
    models = [SQLAlchemyOAuthServerModel(url), SQLAlchemyOAuthServerModel(url)]
    client, secret = clients.build_client({"grant_types": [JWT_BEARER], "token_endpoint_auth_method":
                                           "client_secret_post"}, settings(), int(clock.now))
    await models[0].save_client(client)
    creds = {"client_id": client.client_id, "client_secret": secret or ""}
    jag = assertion(idp, creds, clock)
    answers = []
    for model in models:
        fetcher = network.fetcher()
        server = OAuthServer(model, settings(), clock=clock, identity_fetcher=fetcher)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=build_app(server)), base_url=ISSUER) as http:
            answers.append(await exchange(http, creds, jag))
        await fetcher.aclose()
        await model.close()
    assert [a.status_code for a in answers] == [200, 400]
    assert answers[1].json()["error_description"] == "the assertion was already used"


async def test_id_jag_wrong_resource_refused(http: httpx.AsyncClient, idp: IdentityProvider,
                                             client: dict[str, str], clock: FrozenClock) -> None:
    """RFC 8707 §2 / ext-auth §4.3: the ``resource`` claim must be ours, and a ``resource``
    parameter must name the same one; the token is bound to it."""
    await refused(http, client, assertion(idp, client, clock, resource="https://elsewhere.example/mcp"),
                  "invalid_target")
    await refused(http, client, assertion(idp, client, clock), "invalid_target", resource=OTHER_RESOURCE)
    assert "resource" in await refused(http, client, assertion(idp, client, clock, resource=None))
    other = await exchange(http, client, assertion(idp, client, clock, resource=OTHER_RESOURCE),
                           resource=OTHER_RESOURCE + "/")
    answer = (await http.post("/introspect", data={"token": other.json()["access_token"], **client})).json()
    assert answer["aud"] == OTHER_RESOURCE


async def test_id_jag_alg_none_and_hmac_refused(http: httpx.AsyncClient, idp: IdentityProvider,
                                                client: dict[str, str], clock: FrozenClock) -> None:
    """RFC 8725 §3.1-3.2: ``none`` proves nothing, and an HMAC keyed with the provider's public
    key (key confusion) is not a signature of the provider."""
    claims = jwt.decode(assertion(idp, client, clock), options={"verify_signature": False})
    body = _b64(json.dumps(claims).encode())
    unsigned = _b64(json.dumps({"alg": "none", "typ": "oauth-id-jag+jwt"}).encode()) + "." + body + "."
    assert "alg" in await refused(http, client, unsigned)
    header = _b64(json.dumps({"alg": "HS256", "typ": "oauth-id-jag+jwt", "kid": idp.jwk["kid"]}).encode())
    public = json.dumps(idp.jwk).encode()
    mac = hmac.new(public, f"{header}.{body}".encode(), hashlib.sha256).digest()
    assert "alg" in await refused(http, client, f"{header}.{body}.{_b64(mac)}")


async def test_id_jag_scope_escalation_refused(http: httpx.AsyncClient, idp: IdentityProvider,
                                               client: dict[str, str], clock: FrozenClock) -> None:
    """RFC 6749 §5.2 ``invalid_scope``: the scope is requested ∩ the assertion's ∩ the client's;
    asking beyond the assertion or beyond the client's registration is refused."""
    await refused(http, client, assertion(idp, client, clock, scope="mcp:tools"), "invalid_scope",
                  scope="mcp:tools mcp:prompts")
    await refused(http, client, assertion(idp, client, clock, scope="mcp:tools mcp:admin"), "invalid_scope",
                  scope="mcp:admin")
    granted = await exchange(http, client, assertion(idp, client, clock, scope="mcp:tools mcp:admin mcp:prompts"))
    assert granted.json()["scope"] == "mcp:tools mcp:prompts"  # admin: the client is not registered for it
    await refused(http, client, assertion(idp, client, clock, scope="mcp:admin"), "invalid_scope")


async def test_id_jag_client_must_be_confidential_and_registered(
    http: httpx.AsyncClient, idp: IdentityProvider, model: MemoryOAuthServerModel, clock: FrozenClock
) -> None:
    """RFC 6749 §5.2 ``unauthorized_client``: only a client registered for the grant, and it
    authenticates (the assertion names the client; only authentication proves the caller is it)."""
    code_client = await enterprise_client(model, clock, grant_types=["authorization_code"],
                                          redirect_uris=["https://app.example/cb"])
    await refused(http, code_client, assertion(idp, code_client, clock), "unauthorized_client")
    public_id = (await http.post("/register", json={"redirect_uris": ["https://app.example/cb"],
                                                    "token_endpoint_auth_method": "none"})).json()["client_id"]
    await refused(http, {"client_id": public_id}, assertion(idp, {"client_id": public_id}, clock),
                  "unauthorized_client")


async def test_id_jag_malformed_requests(http: httpx.AsyncClient, client: dict[str, str]) -> None:
    """No assertion: ``invalid_request``; not a JWT, or far too long: ``invalid_grant``; never a 500."""
    response = await http.post("/token", data={"grant_type": JWT_BEARER, **client})
    assert response.status_code == 400 and response.json()["error"] == "invalid_request"
    for junk in ("not-a-jwt", "a.b.c", "x" * 20_000, "e30.e30.", "W10.W10.sig"):
        await refused(http, client, junk)


async def test_id_jag_keys_unavailable_is_503(http: httpx.AsyncClient, idp: IdentityProvider,
                                              network: Network, client: dict[str, str], clock: FrozenClock) -> None:
    """The provider's JWK Set cannot be fetched: 503 ``temporarily_unavailable``, never a token
    and never a 500 (the client may retry)."""
    network.down = True
    response = await exchange(http, client, assertion(idp, client, clock))
    assert response.status_code == 503 and response.json()["error"] == "temporarily_unavailable"


async def test_id_jag_subject_hook(model: MemoryOAuthServerModel, idp: IdentityProvider, network: Network,
                                   clock: FrozenClock) -> None:
    """The subject hook decides who the user is here; None refuses the assertion."""
    async def directory(provider: TrustedIdentityProvider, claims: Mapping[str, Any]) -> str | None:
        return {"alice": "user-1"}.get(claims["sub"])

    for hook, expected in ((as_is_subject, "alice"), (directory, "user-1")):
        fetcher = network.fetcher()
        server = OAuthServer(model, settings(), clock=clock, identity_fetcher=fetcher, identity_subject=hook)
        client = await enterprise_client(model, clock)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=build_app(server)), base_url=ISSUER) as http:
            body = (await exchange(http, client, assertion(idp, client, clock))).json()
            answer = (await http.post("/introspect", data={"token": body["access_token"], **client})).json()
            assert answer["sub"] == expected
            if hook is directory:
                assert "subject" in await refused(http, client, assertion(idp, client, clock, sub="mallory"))
        await fetcher.aclose()


async def test_id_jag_grant_off_without_trusted_providers(model: MemoryOAuthServerModel, clock: FrozenClock,
                                                          idp: IdentityProvider) -> None:
    """RFC 8414 §2: metadata lists exactly the grants /token accepts; without providers the
    grant is ``unsupported_grant_type`` and registration refuses it."""
    server = OAuthServer(model, settings(trusted_identity_providers=()), clock=clock)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=build_app(server)), base_url=ISSUER) as http:
        doc = (await http.get("/.well-known/oauth-authorization-server")).json()
        assert doc["grant_types_supported"] == ["authorization_code", "refresh_token", "client_credentials"]
        registered = (await http.post("/register", json={"redirect_uris": ["https://app.example/cb"],
                                                         "token_endpoint_auth_method": "client_secret_post"})).json()
        creds = {"client_id": registered["client_id"], "client_secret": registered["client_secret"]}
        await refused(http, creds, assertion(idp, creds, clock), "unsupported_grant_type")
        response = await http.post("/register", json={"grant_types": [JWT_BEARER]})
        assert response.json()["error"] == "invalid_client_metadata"


async def test_id_jag_grant_advertised_and_registrable_when_enabled(http: httpx.AsyncClient) -> None:
    doc = (await http.get("/.well-known/oauth-authorization-server")).json()
    assert doc["grant_types_supported"] == ["authorization_code", "refresh_token", "client_credentials", JWT_BEARER]
    registered = await http.post("/register", json={"grant_types": [JWT_BEARER]})
    assert registered.status_code == 201 and registered.json()["grant_types"] == [JWT_BEARER]
    public = await http.post("/register", json={"grant_types": [JWT_BEARER], "token_endpoint_auth_method": "none"})
    assert public.json()["error"] == "invalid_client_metadata"


@pytest.mark.parametrize(("changes", "message"), [
    ({"algorithms": ("HS256",)}, "algorithms"),
    ({"algorithms": ("none",)}, "algorithms"),
    ({"algorithms": ()}, "algorithms"),
    ({"jwks_uri": "http://idp.example.com/jwks.json"}, "https"),
    ({"issuer": "https://idp.example.com#frag"}, "fragment"),
    ({"issuer": "idp.example.com"}, "absolute"),
])
def test_trusted_provider_settings_refuse_what_cannot_be_safe(changes: dict[str, Any], message: str) -> None:
    """RFC 8725 §3.1: no symmetric or ``none`` algorithm can be configured; keys over https
    (plain http on localhost only); an issuer URL without fragment, so ``{iss}#{sub}`` is unambiguous."""
    fields: dict[str, Any] = {"issuer": "https://idp.example.com", "jwks_uri": JWKS_URI, **changes}
    with pytest.raises(ValueError, match=message):
        TrustedIdentityProvider(**fields)
    twice = TrustedIdentityProvider("https://idp.example.com", JWKS_URI)
    with pytest.raises(ValueError, match="twice"):
        settings(trusted_identity_providers=(twice, twice))
