"""``AuthorizationServer``: every rule of the authorization server, framework-free.

The web layer (``oauth_server.web``) parses HTTP and renders results; the model stores and
atomically consumes records; everything in between is here, in our own vocabulary. The MCP
SDK's provider interface is a separate adapter on top (``oauth_server.integrations.mcp_sdk``),
so this class imports neither a web framework nor ``mcp``.

One class in four modules, one concern each: ``server_base`` (state, client lookups and the
RFC 7591/7592 client verbs), ``server_consent`` (/authorize and the consent decisions),
``server_device`` (the RFC 8628 page verbs), and here the token endpoint, revocation,
connected apps, the resource side, signing keys, introspection and housekeeping.
"""

from __future__ import annotations

import logging
from typing import Any

from oauth_server import audit, connected_apps, housekeeping, introspection, jwt_access, tokens
from oauth_server.audit import build as audit_events
from oauth_server.errors import UnauthorizedClient
from oauth_server.grants import dispatch
from oauth_server.params import Params, single
from oauth_server.records import AccessToken, Client, RefreshToken
from oauth_server.server_consent import ConsentForm, ConsentRequest, ConsentVerbs
from oauth_server.server_device import DeviceVerbs

logger = logging.getLogger("oauth_server")

#: Opaque tokens are 43 characters; an RS256 JWT access token is under 1 KiB. Longer is not ours.
MAX_ACCESS_TOKEN_LENGTH = 4096
#: How many checked JWT signatures a process remembers (a few hundred KiB at most).
CHECKED_JWTS = 10_000

__all__ = ["AuthorizationServer", "ConsentForm", "ConsentRequest"]


class AuthorizationServer(ConsentVerbs, DeviceVerbs):
    """The rules of an OAuth 2.1 authorization server for MCP resource servers.

    Args:
        model: where records live (``MemoryOAuthServerModel``, ``SQLAlchemyOAuthServerModel``, yours).
        settings: issuer, resources, scopes, lifetimes: ``OAuthServerSettings``.
        clock: seconds since the epoch; tests inject a frozen clock. The model gets it too
            (``OAuthServerModel.use_clock``), so both agree on what has expired.
        cimd_policy: the application's say over client ID metadata document URLs (True: may be
            fetched), asked after the host lists of the settings. A keyword here, not a setting,
            because the settings are a frozen, comparable value and a callable is neither.
        cimd_fetcher: replaces the guarded fetcher built from the ``cimd_*`` settings (tests
            inject a resolver and transport; build it with ``cimd.fetch_policy(settings)``).
        identity_subject: maps a verified ID-JAG to our subject (``grants.identity_providers``;
            default ``namespaced_subject``: ``{issuer}#{sub}``).
        identity_fetcher: replaces the fetchers of the trusted identity providers' JWK Sets.
        on_event: ``hook(event)``, plain or async, receives every audit event (``oauth_server.audit``:
            tokens issued, reuse detected, ...). Default: one JSON line each on the
            ``oauth_server.audit`` logger; ``audit.SQLAuditSink(model)`` stores them; None: off.
            A hook that raises is logged and never fails the request.
    """

    # -- token endpoint -------------------------------------------------------------------
    async def token(self, client: Client, params: Params) -> dict[str, Any]:
        """RFC 6749 §3.2: the token endpoint, after client authentication; the grant handlers
        are ``self.grants`` (``grants.dispatch``)."""
        ctx = await self._grant_context(client)
        issuance = await dispatch.run(self.grants, ctx, params)
        await self.audit.emit(audit_events.tokens_issued(single(params, "grant_type") or "", issuance, ctx.now))
        return issuance.response(self.settings)

    # -- revocation (RFC 7009) ------------------------------------------------------------
    async def revoke(self, client: Client, token: str, token_type_hint: str | None = None) -> None:
        """Revoke an access or refresh token of ``client``, and with it the whole grant.

        Unknown tokens succeed silently (RFC 7009 §2.2). Another client's token stays valid:
        a confidential caller is told so, a public one gets the same silent success, since
        client ids are public and an error would tell an attacker the token exists.
        """
        token_digest = tokens.digest(token)
        record: AccessToken | RefreshToken | None
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
        await self.model.revoke_grant(record.grant_id, self.now())
        await self.audit.emit(audit_events.token_revoked(record, self.now()))

    # -- a user's connected apps (see ``connected_apps``) ----------------------------------
    async def list_grants(self, subject: str) -> list[connected_apps.ConnectedApp]:
        """The apps ``subject`` granted access to and that can still use it, newest first."""
        return await connected_apps.list_apps(self.model, subject, self.now())

    async def revoke_user_grant(self, subject: str, grant_id: str) -> bool:
        """End ``subject``'s own grant and every token of it; False for an unknown grant id and
        for another user's alike, so the answer tells nothing about other users' grants."""
        revoked = await connected_apps.revoke(self.model, subject, grant_id, self.now())
        if revoked:
            await self.audit.emit(audit.GrantRevokedByUser(time=self.now(), subject=subject, grant_id=grant_id))
        return revoked

    # -- resource server side -------------------------------------------------------------
    async def verify_access_token(self, token: str) -> AccessToken | None:
        """The live access token for ``token``, or None (unknown, expired, revoked, other audience).

        Opaque or JWT, the model decides: a revoked token is gone from it. A JWT is checked
        locally first (signature, ``iss``, ``aud``, ``exp``: ``jwt_access.verify_own``), once per
        process, so a forged one costs no database read; a token already checked skips that.
        """
        if not token or len(token) > MAX_ACCESS_TOKEN_LENGTH:
            return None
        token_digest = tokens.digest(token)
        now = self.now()
        if self.signing is not None and jwt_access.looks_like_jwt(token) and token_digest not in self._checked_jwts:
            if not await jwt_access.verify_own(token, self.signing, self.settings, now):
                return None
            self._checked_jwts[token_digest] = None
            if len(self._checked_jwts) > CHECKED_JWTS:
                self._checked_jwts.popitem(last=False)
        record = await self.model.get_access_token(token_digest)
        if record is None or record.expires_at <= now:
            return None
        if record.resource not in self.settings.resources:
            return None
        return record

    # -- JWT signing keys (RFC 9068, RFC 7517) --------------------------------------------
    async def jwks(self) -> dict[str, Any]:
        """The JWK Set that ``/.well-known/jwks.json`` serves (empty for opaque tokens)."""
        return {"keys": []} if self.signing is None else await self.signing.jwks()

    async def rotate_signing_keys(self) -> str:
        """Publish a new managed signing key now; it signs after ``signing_key_propagation``
        seconds, and the keys it replaces stay published until their last token expires."""
        if self.signing is None:
            raise RuntimeError("rotate_signing_keys needs access_token_format='jwt'")
        return await self.signing.rotate()

    # -- introspection (RFC 7662) ---------------------------------------------------------
    async def introspect(self, client: Client, token: str, token_type_hint: str | None = None) -> dict[str, Any]:
        """RFC 7662 §2.2: what ``client`` may learn about ``token``; ``{"active": false}`` otherwise.

        §2.1 leaves who may ask to the server: an authenticated confidential client (a resource
        server's own credentials) may introspect any access token; a public client only access
        tokens issued to itself; a refresh token only the client it was issued to. Unknown,
        expired, revoked and rotated tokens, and anything the caller may not see, are inactive
        alike (§2.2), so the answer tells nothing about tokens the caller has no business with.
        """
        if not token or len(token) > MAX_ACCESS_TOKEN_LENGTH:
            return {"active": False}
        answer, record = await self._introspection(client, token, token_type_hint)
        await self.audit.emit(audit_events.token_introspected(client, tokens.digest(token), record, answer, self.now()))
        return answer

    async def _introspection(self, client: Client, token: str, token_type_hint: str | None
                             ) -> tuple[dict[str, Any], AccessToken | RefreshToken | None]:
        """``introspect``'s answer, and the record it describes (None when it describes none)."""
        now = self.now()
        if token_type_hint != "refresh_token":
            access = await self.verify_access_token(token)
            if access is not None:
                if client.is_public and access.client_id != client.client_id:
                    return {"active": False}, None
                return introspection.access_token_answer(self.settings, access), access
        refresh = await self.model.get_refresh_token(tokens.digest(token))
        return introspection.refresh_token_answer(self.settings, client, refresh, now), refresh

    # -- housekeeping ---------------------------------------------------------------------
    async def purge_expired(self, batch: int = 1000, busy_share: float = 0.25) -> int:
        """Delete every record expired by now, ``batch`` rows per kind at a time; how many went.

        The model deletes one short batch per call, so no statement holds locks for long; this
        loop calls it until nothing expired is left, so a backlog of any size is cleared (one
        batch per periodic call would fall behind any server issuing more tokens than that).
        Between batches it sleeps, so that the purge keeps the database busy at most
        ``busy_share`` of the time and requests served meanwhile keep their latency
        (``bench/scale.py`` measures it). Records expiring after the call began are left for the
        next call, so the loop always ends. Stored audit events older than ``audit_retention``
        go too (``audit.SQLAuditSink``).
        """
        now = self.now()
        removed = await housekeeping.purge_expired(self.model, now, batch, busy_share)
        before = now - self.settings.audit_retention
        return removed + await audit.purge_events(self.audit.hook, before, batch, busy_share)
