"""OAuthServer: every rule of the authorization server, framework-free.

The web layer (``oauth_server.web``) parses HTTP and renders results; the model stores and
atomically consumes records; everything in between is here. ``OAuthServer`` also implements
the MCP SDK's ``OAuthAuthorizationServerProvider`` and ``TokenVerifier`` (see
``sdk_provider.py``), so it can be handed to ``MCPServer(auth_server_provider=...)`` too.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from typing import Any

from oauth_server import clients, consent, tokens
from oauth_server.errors import (
    AccessDenied,
    AuthorizationFailed,
    ConsentForbidden,
    InvalidRequest,
    InvalidScope,
    InvalidTarget,
    OAuthError,
    UnauthorizedClient,
    UnsupportedGrantType,
)
from oauth_server.grants import authorization_code, refresh_token
from oauth_server.model.base import OAuthServerModel
from oauth_server.records import AccessToken, AuthorizationCode, Client, PendingAuthorization
from oauth_server.sdk_provider import SDKProviderMixin
from oauth_server.settings import OAuthServerSettings

logger = logging.getLogger("oauth_server")


class ConsentRequest:
    """What a consent page shows: the pending request and its client."""

    __slots__ = ("client", "pending", "request_id")

    def __init__(self, request_id: str, pending: PendingAuthorization, client: Client) -> None:
        self.request_id = request_id
        self.pending = pending
        self.client = client


class OAuthServer(SDKProviderMixin):
    """An OAuth 2.1 authorization server for one MCP resource server.

    Args:
        model: where records live (``MemoryOAuthServerModel``, ``SQLAlchemyOAuthServerModel``, yours).
        issuer_url: RFC 8414 issuer, used exactly as given (no trailing slash is added).
        resource_server_url: the MCP endpoint; tokens are audience-bound to it (RFC 8707).
        authorization_url: the consent page /authorize sends the browser to, with ``request_id``.
        scopes_supported: every scope a client may ask for.
        clock: seconds since the epoch; tests inject a frozen clock.
        **options: the other fields of ``OAuthServerSettings`` (lifetimes, default_scopes, ...).
    """

    def __init__(
        self,
        model: OAuthServerModel,
        *,
        issuer_url: str,
        resource_server_url: str,
        authorization_url: str,
        scopes_supported: Iterable[str] = (),
        default_scopes: Iterable[str] | None = None,
        clock: Callable[[], float] = time.time,
        **options: Any,
    ) -> None:
        self.model = model
        self.clock = clock
        self.settings = OAuthServerSettings(
            issuer_url=issuer_url,
            resource_server_url=resource_server_url,
            authorization_url=authorization_url,
            scopes_supported=tuple(scopes_supported),
            default_scopes=None if default_scopes is None else tuple(default_scopes),
            **options,
        )

    def now(self) -> int:
        return int(self.clock())

    # -- clients --------------------------------------------------------------------------
    async def register(self, metadata: Mapping[str, Any]) -> dict[str, Any]:
        """RFC 7591 §3.1: validate, store, return the client information response."""
        if not self.settings.dynamic_client_registration:
            raise UnauthorizedClient("dynamic client registration is disabled")
        client, secret = clients.build_client(metadata, self.settings, self.now())
        await self.model.save_client(client)
        return clients.client_information(client, secret)

    async def authenticate_client(self, credentials: clients.ClientCredentials) -> Client:
        client = await self.model.get_client(credentials.client_id)
        return clients.authenticate(client, credentials, self.now())

    # -- authorization --------------------------------------------------------------------
    async def start_authorization(
        self, params: Mapping[str, Sequence[str]], browser_secret: str | None
    ) -> consent.AuthorizationStart:
        """Validate an /authorize request and store it as pending. Raises ``AuthorizationFailed``."""
        client_ids = params.get("client_id") or []
        client = await self.model.get_client(client_ids[0]) if len(client_ids) == 1 and client_ids[0] else None
        client, redirect_uri, explicit = consent.trusted_redirect(client, params)
        start = consent.validate_request(
            self.settings, client, redirect_uri, explicit, params, self.now(), browser_secret
        )
        await self.model.save_pending_authorization(start.pending)
        return start

    async def get_consent_request(self, request_id: str) -> ConsentRequest:
        """The pending request a consent page is about. Raises if unknown or expired."""
        pending = await self.model.get_pending_authorization(tokens.digest(request_id))
        if pending is None or pending.expires_at <= self.now():
            raise AuthorizationFailed(InvalidRequest("this authorization request has expired or was already answered"))
        client = await self.model.get_client(pending.client_id)
        if client is None:
            raise AuthorizationFailed(InvalidRequest("the client of this request no longer exists"))
        return ConsentRequest(request_id, pending, client)

    async def claim_consent_request(self, request: ConsentRequest, browser_secret: str) -> bool:
        """Bind an unbound request (made through the SDK provider path) to the viewing browser."""
        if request.pending.browser_digest is not None:
            return request.pending.browser_digest == tokens.digest(browser_secret)
        browser_digest = tokens.digest(browser_secret)
        return await self.model.bind_pending_authorization(request.pending.request_digest, browser_digest)

    async def _take_pending(
        self, request_id: str, browser_secret: str | None, token: str | None
    ) -> PendingAuthorization:
        request = await self.get_consent_request(request_id)
        if not consent.is_bound_to(request.pending, request_id, browser_secret, token):
            raise AuthorizationFailed(ConsentForbidden("the consent form is not valid for this browser and request"))
        pending = await self.model.consume_pending_authorization(request.pending.request_digest)
        if pending is None:
            raise AuthorizationFailed(InvalidRequest("this authorization request was already answered"))
        return pending

    async def approve(
        self,
        request_id: str,
        subject: str,
        *,
        browser_secret: str | None,
        form_token: str | None,
        allowed_scopes: Collection[str] | None = None,
        selected_scopes: Collection[str] | None = None,
    ) -> str:
        """The user approved: issue a code. Returns the redirect URL (``code``, ``state``, ``iss``).

        The code carries the requested scopes, narrowed to ``selected_scopes`` (what the user
        ticked) and ``allowed_scopes`` (what this user may grant at all).
        """
        if not subject:
            raise ValueError("subject is required")
        pending = await self._take_pending(request_id, browser_secret, form_token)
        granted = tuple(
            s for s in pending.scopes
            if (allowed_scopes is None or s in allowed_scopes) and (selected_scopes is None or s in selected_scopes)
        )
        if pending.scopes and not granted:
            raise AuthorizationFailed(
                InvalidScope("the user may not grant any of the requested scopes"), pending.redirect_uri, pending.state
            )
        return await self._issue_code(pending, subject, granted)

    async def deny(self, request_id: str, *, browser_secret: str | None, form_token: str | None) -> str:
        """The user denied: RFC 6749 §4.1.2.1 ``access_denied`` back to the client."""
        pending = await self._take_pending(request_id, browser_secret, form_token)
        return consent.error_redirect(
            self.settings, pending.redirect_uri, AccessDenied("the user denied the request"), pending.state
        )

    async def _issue_code(self, pending: PendingAuthorization, subject: str, scopes: tuple[str, ...]) -> str:
        code = tokens.new_token()
        now = self.now()
        await self.model.save_authorization_code(AuthorizationCode(
            code_digest=tokens.digest(code),
            grant_id=tokens.new_id(),
            client_id=pending.client_id,
            subject=subject,
            redirect_uri=pending.redirect_uri,
            redirect_uri_provided_explicitly=pending.redirect_uri_provided_explicitly,
            scopes=scopes,
            code_challenge=pending.code_challenge,
            resource=pending.resource,
            expires_at=now + self.settings.authorization_code_lifetime,
        ))
        return consent.add_query(pending.redirect_uri, {"code": code, "state": pending.state,
                                                        "iss": self.settings.issuer_url})

    def error_redirect(self, failure: AuthorizationFailed) -> str | None:
        if failure.redirect_uri is None:
            return None
        return consent.error_redirect(self.settings, failure.redirect_uri, failure.error, failure.state)

    # -- token endpoint -------------------------------------------------------------------
    async def token(self, client: Client, form: Mapping[str, Sequence[str]]) -> dict[str, Any]:
        """RFC 6749 §4.1.3 / §6: the token endpoint, after client authentication."""
        def one(name: str) -> str | None:
            values = form.get(name) or []
            if len(values) > 1 and name != "resource":
                raise InvalidRequest(f"{name} must not be repeated")
            return values[0] if values else None

        resources = form.get("resource") or []
        if len(resources) > 1:
            raise InvalidTarget("only one resource may be requested")
        # Compared with the grant's resource after the code is consumed, so a mismatch burns it.
        resource = resources[0] if resources else None
        grant_type = one("grant_type")
        now = self.now()
        if grant_type == "authorization_code":
            issuance = await authorization_code.redeem(
                self.model, self.settings, now, client,
                one("code") or "", one("code_verifier"), one("redirect_uri"), resource,
            )
        elif grant_type == "refresh_token":
            issuance = await refresh_token.refresh(
                self.model, self.settings, now, client, one("refresh_token") or "", one("scope"), resource,
            )
        elif not grant_type:
            raise InvalidRequest("grant_type is required")
        else:
            raise UnsupportedGrantType("grant_type must be authorization_code or refresh_token")
        return issuance.response(self.settings)

    # -- revocation (RFC 7009) ------------------------------------------------------------
    async def revoke(self, client: Client, token: str, token_type_hint: str | None = None) -> None:
        """Revoke an access or refresh token of ``client``, and with it the whole grant.

        Unknown tokens succeed silently (RFC 7009 §2.2). Another client's token stays valid:
        a confidential caller is told so, a public one gets the same silent success, since
        client ids are public and an error would tell an attacker the token exists.
        """
        token_digest = tokens.digest(token)
        record: AccessToken | Any | None
        if token_type_hint == "refresh_token":
            record = await self.model.get_refresh_token(token_digest) or await self.model.get_access_token(token_digest)
        else:
            record = await self.model.get_access_token(token_digest) or await self.model.get_refresh_token(token_digest)
        if record is None:
            return
        if record.client_id != client.client_id:
            logger.warning("client %s tried to revoke a token of client %s", client.client_id, record.client_id)
            if client.is_public:
                return
            raise UnauthorizedClient("the token was not issued to this client")
        await self.model.revoke_grant(record.grant_id)

    # -- resource server side -------------------------------------------------------------
    async def verify_access_token(self, token: str) -> AccessToken | None:
        """The live access token for ``token``, or None (unknown, expired, revoked, other audience)."""
        if not token or len(token) > 512:
            return None
        record = await self.model.get_access_token(tokens.digest(token))
        if record is None or record.expires_at <= self.now():
            return None
        if record.resource not in self.settings.resources:
            return None
        return record

    async def introspect(self, token: str) -> dict[str, Any]:
        """RFC 7662 §2.2 response for an access token (``active: false`` for anything else)."""
        record = await self.verify_access_token(token)
        if record is None:
            return {"active": False}
        return {
            "active": True, "client_id": record.client_id, "sub": record.subject,
            "scope": " ".join(record.scopes), "aud": record.resource, "iss": self.settings.issuer_url,
            "exp": record.expires_at, "token_type": "Bearer",
        }

    async def purge_expired(self, batch: int = 1000, busy_share: float = 0.25) -> int:
        """Delete every record expired by now, ``batch`` rows per kind at a time; how many went.

        The model deletes one short batch per call, so no statement holds locks for long; this
        loop calls it until nothing expired is left, so a backlog of any size is cleared (one
        batch per periodic call would fall behind any server issuing more tokens than that).
        Between batches it sleeps, so that the purge keeps the database busy at most
        ``busy_share`` of the time and requests served meanwhile keep their latency
        (``bench/scale.py`` measures it). Records expiring after the call began are left for the
        next call, so the loop always ends.
        """
        if not 0 < busy_share <= 1:
            raise ValueError("busy_share must be in (0, 1]")
        now = self.now()
        total = 0
        while True:
            started = time.monotonic()
            removed = await self.model.purge_expired(now, batch)
            total += removed
            if removed == 0:
                return total
            await asyncio.sleep((time.monotonic() - started) * (1 - busy_share) / busy_share)


__all__ = ["ConsentRequest", "OAuthError", "OAuthServer"]
