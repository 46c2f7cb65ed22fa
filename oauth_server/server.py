"""``AuthorizationServer``: every rule of the authorization server, framework-free.

The web layer (``oauth_server.web``) parses HTTP and renders results; the model stores and
atomically consumes records; everything in between is here, in our own vocabulary. The MCP
SDK's provider interface is a separate adapter on top (``oauth_server.integrations.mcp_sdk``),
so this class imports neither a web framework nor ``mcp``.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

from oauth_server import (
    audit,
    cimd,
    client_assertion,
    client_management,
    clients,
    connected_apps,
    consent,
    device_authorization,
    housekeeping,
    introspection,
    jwt_access,
    tokens,
    user_codes,
)
from oauth_server.audit import build as audit_events
from oauth_server.errors import (
    AccessDenied,
    AuthorizationFailed,
    ConsentForbidden,
    InvalidClient,
    InvalidRequest,
    InvalidScope,
    InvalidToken,
    UnauthorizedClient,
)
from oauth_server.fetch import Fetcher
from oauth_server.grants import authorization_code, dispatch
from oauth_server.grants.identity_providers import IdentityProviders, SubjectMapper
from oauth_server.grants.issue import GrantContext
from oauth_server.model.base import OAuthServerModel
from oauth_server.params import Params, single
from oauth_server.records import AccessToken, Client, PendingAuthorization, RefreshToken
from oauth_server.settings import OAuthServerSettings
from oauth_server.signing import SigningKeys

logger = logging.getLogger("oauth_server")

#: Opaque tokens are 43 characters; an RS256 JWT access token is under 1 KiB. Longer is not ours.
MAX_ACCESS_TOKEN_LENGTH = 4096
#: How many checked JWT signatures a process remembers (a few hundred KiB at most).
CHECKED_JWTS = 10_000


@dataclass(frozen=True, slots=True)
class ConsentRequest:
    """What a consent page shows: the pending request and its client."""

    request_id: str
    pending: PendingAuthorization
    client: Client


@dataclass(frozen=True, slots=True)
class ConsentForm:
    """A posted consent form that passed the anti-forgery check (``check_consent_form``).

    Only that check makes one, and ``approve``/``deny`` take only this, so no decision can be
    acted on without the check, and the check is made exactly once (RFC 9700 §4.4).
    """

    request: ConsentRequest


class AuthorizationServer:
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

    def __init__(
        self, model: OAuthServerModel, settings: OAuthServerSettings, *, clock: Callable[[], float] = time.time,
        cimd_policy: cimd.Policy | None = None, cimd_fetcher: Fetcher | None = None,
        identity_subject: SubjectMapper | None = None, identity_fetcher: Fetcher | None = None,
        on_event: audit.EventHook | None = audit.log_event,
    ) -> None:
        self.model = model
        self.settings = settings
        self.clock = clock
        model.use_clock(clock)
        #: Where audit events go (the ``on_event`` hook, failures contained).
        self.audit = audit.AuditTrail(on_event)
        #: The keys that sign JWT access tokens and the JWKS that publishes them; None for opaque tokens.
        self.signing = (SigningKeys(model, settings, clock)
                        if settings.access_token_format == "jwt" or settings.signing_keys else None)
        # Digests of JWTs whose signature this process already checked (bounded, oldest out).
        self._checked_jwts: OrderedDict[str, None] = OrderedDict()
        #: Public keys of ``private_key_jwt`` clients (RFC 7523): inline, or fetched from their
        #: ``jwks_uri`` through the guarded fetcher, never to loopback outside development.
        self.client_keys = client_assertion.ClientKeys(allow_loopback=settings.cimd_allow_loopback)
        #: Client ID metadata documents (None when ``client_id_metadata_documents`` is off).
        self.client_documents = (cimd.ClientDocuments(model, settings, clock, fetcher=cimd_fetcher, policy=cimd_policy,
                                                      audit=self.audit)
                                 if settings.client_id_metadata_documents else None)
        #: The trusted enterprise identity providers (ID-JAG); None when none are configured.
        self.identity_providers = (
            IdentityProviders(settings.trusted_identity_providers, subject=identity_subject,
                              fetcher=identity_fetcher, clock=clock)
            if settings.trusted_identity_providers else None)
        #: grant_type -> handler: what /token accepts and metadata advertises.
        self.grants = dispatch.grant_table(self.identity_providers, device=settings.device_authorization_grant)

    def now(self) -> int:
        return int(self.clock())

    async def _grant_context(self, client: Client) -> GrantContext:
        signing_key = None
        if self.signing is not None and self.settings.access_token_format == "jwt":
            signing_key = await self.signing.signer()
        return GrantContext(self.model, self.settings, self.now(), client, signing_key, self.audit)

    # -- clients --------------------------------------------------------------------------
    async def register(self, metadata: dict[str, Any]) -> dict[str, Any]:
        """RFC 7591 §3.1: validate, store, return the client information response."""
        if not self.settings.dynamic_client_registration:
            raise UnauthorizedClient("dynamic client registration is disabled")
        client, secret = clients.build_client(metadata, self.settings, self.now(),
                                             allow_client_credentials=self.settings.dcr_client_credentials)
        client, registration_token = client_management.with_registration_token(client)  # RFC 7592 §3
        await self.model.save_client(client)
        await self.audit.emit(audit_events.client_registered(client, self.now()))
        return client_management.information(client, self.settings, secret, registration_token)

    # -- client management (RFC 7592), authorized by the registration access token ----------
    async def _managed_client(self, client_id: str, registration_token: str | None) -> Client:
        return client_management.check_token(await self.model.get_client(client_id), registration_token)

    async def read_client(self, client_id: str, registration_token: str | None) -> dict[str, Any]:
        """RFC 7592 §2.1: the client's current information (``InvalidToken`` unless the token manages it)."""
        client = await self._managed_client(client_id, registration_token)
        return client_management.information(client, self.settings)

    async def update_client(self, client_id: str, registration_token: str | None,
                            metadata: dict[str, Any]) -> dict[str, Any]:
        """RFC 7592 §2.2: replace the client's metadata, validated as at registration."""
        current = await self._managed_client(client_id, registration_token)
        client, secret = client_management.updated(current, metadata, self.settings, self.now())
        if not await self.model.replace_client(client):  # deleted meanwhile: as if unknown (§2.2)
            raise InvalidToken("the registration access token is invalid for this client")
        await self.audit.emit(audit_events.client_updated(client, self.now(), secret_rotated=secret is not None))
        return client_management.information(client, self.settings, secret)

    async def delete_client(self, client_id: str, registration_token: str | None) -> None:
        """RFC 7592 §2.3: delete the client; every grant of it is revoked with it, so its
        tokens stop working at once, in every process (``OAuthServerModel.delete_client``)."""
        client = await self._managed_client(client_id, registration_token)
        await self.model.delete_client(client.client_id, self.now())
        await self.audit.emit(audit.ClientDeleted(time=self.now(), client_id=client.client_id))

    async def authenticate_client(self, credentials: clients.ClientCredentials) -> Client:
        """RFC 6749 §2.3 / OAuth 2.1 §2.4: the client the credentials prove, or ``invalid_client``."""
        client = await self._client(credentials.client_id)
        return await clients.authenticate(client, credentials, self.now(), model=self.model,
                                          keys=self.client_keys, issuer=self.settings.issuer_url)

    async def _client(self, client_id: str) -> Client | None:
        """The client ``client_id`` names: a metadata document URL through ``cimd`` (fetched or
        cached; an unusable one raises ``InvalidClient``), any other id from the model.

        With documents turned off, a cached document client is unknown, like any URL.
        """
        if cimd.looks_like_url(client_id):
            if self.client_documents is None:
                return None
            return await self.client_documents.resolve(client_id)
        client = await self.model.get_client(client_id)
        return None if client is None or client.metadata_document_expires_at is not None else client

    # -- authorization --------------------------------------------------------------------
    async def start_authorization(self, params: Params, browser_secret: str | None) -> consent.AuthorizationStart:
        """Validate an /authorize request and store it as pending. Raises ``AuthorizationFailed``."""
        try:
            client_id = single(params, "client_id")
        except InvalidRequest as exc:
            raise AuthorizationFailed(exc) from None
        try:  # draft-ietf-oauth-client-id-metadata-document §4.1: an unusable document means an
            # untrusted client, so its error is shown to the user and never redirected
            client = await self._client(client_id) if client_id else None
        except InvalidClient as exc:
            raise AuthorizationFailed(exc) from None
        redirect = consent.trusted_redirect(client, params)
        request = consent.validate_request(self.settings, redirect, params)
        return await self.save_pending(request, browser_secret)

    async def save_pending(
        self, request: consent.AuthorizationRequest, browser_secret: str | None
    ) -> consent.AuthorizationStart:
        """Store a valid request as pending until the user decides (bound to the browser, if known)."""
        start = consent.new_pending(self.settings, request, self.now(), browser_secret)
        await self.model.save_pending_authorization(start.pending)
        return start

    async def _consent_request(self, request_id: str) -> ConsentRequest:
        pending = await self.model.get_pending_authorization(tokens.digest(request_id))
        if pending is None or pending.expires_at <= self.now():
            raise AuthorizationFailed(InvalidRequest("this authorization request has expired or was already answered"))
        try:
            client = await self._client(pending.client_id)
        except InvalidClient as exc:
            raise AuthorizationFailed(exc) from None
        if client is None:
            raise AuthorizationFailed(InvalidRequest("the client of this request no longer exists"))
        return ConsentRequest(request_id, pending, client)

    async def open_consent(self, request_id: str, browser_secret: str) -> ConsentRequest:
        """The pending request a consent page shows to this browser.

        A request started through /authorize is bound to the browser that started it; one
        started through the SDK adapter has no browser yet, and the first to open it claims it.
        Any other browser is refused, so a request id leaked to an attacker is useless.
        """
        request = await self._consent_request(request_id)
        browser_digest = tokens.digest(browser_secret)
        if request.pending.browser_digest is None:
            bound = await self.model.bind_pending_authorization(request.pending.request_digest, browser_digest)
        else:
            bound = tokens.digest_matches(browser_secret, request.pending.browser_digest)
        if not bound:
            raise AuthorizationFailed(ConsentForbidden("this authorization was started in another browser"))
        return request

    async def check_consent_form(
        self, request_id: str, browser_secret: str | None, form_token: str | None
    ) -> ConsentForm:
        """The anti-forgery check of a posted decision: same browser, same request (see ``consent``)."""
        request = await self._consent_request(request_id)
        if not consent.is_bound_to(request.pending, request_id, browser_secret, form_token):
            raise AuthorizationFailed(ConsentForbidden("the consent form is not valid for this browser and request"))
        return ConsentForm(request)

    async def _take_pending(self, form: ConsentForm) -> PendingAuthorization:
        pending = await self.model.consume_pending_authorization(form.request.pending.request_digest)
        if pending is None:
            raise AuthorizationFailed(InvalidRequest("this authorization request was already answered"))
        return pending

    async def approve(
        self,
        form: ConsentForm,
        subject: str,
        *,
        allowed_scopes: Collection[str] | None = None,
        selected_scopes: Collection[str] | None = None,
    ) -> str:
        """The user approved: issue a code. Returns the redirect URL (``code``, ``state``, ``iss``).

        The code carries the requested scopes, narrowed to ``selected_scopes`` (what the user
        ticked) and ``allowed_scopes`` (what this user may grant at all).
        """
        if not subject:
            raise ValueError("subject is required")
        pending = await self._take_pending(form)
        granted = tuple(
            s for s in pending.scopes
            if (allowed_scopes is None or s in allowed_scopes) and (selected_scopes is None or s in selected_scopes)
        )
        if pending.scopes and not granted:
            raise AuthorizationFailed(
                InvalidScope("the user may not grant any of the requested scopes"), pending.redirect_uri, pending.state
            )
        return await self._issue_code(pending, subject, granted)

    async def deny(self, form: ConsentForm) -> str:
        """The user denied: RFC 6749 §4.1.2.1 ``access_denied`` back to the client."""
        pending = await self._take_pending(form)
        await self.audit.emit(audit_events.consent_denied(pending, self.now()))
        return consent.error_redirect(
            self.settings, pending.redirect_uri, AccessDenied("the user denied the request"), pending.state
        )

    async def _issue_code(self, pending: PendingAuthorization, subject: str, scopes: tuple[str, ...]) -> str:
        """A new grant and its code, stored together (RFC 6749 §4.1.2)."""
        code = await authorization_code.issue_code(self.model, self.settings, pending, subject, scopes, self.now(),
                                                   audit=self.audit)
        return consent.add_query(pending.redirect_uri, {"code": code, "state": pending.state,
                                                        "iss": self.settings.issuer_url})

    def error_redirect(self, failure: AuthorizationFailed) -> str | None:
        """Where an /authorize or consent failure may be sent, or None: show it to the user."""
        if failure.redirect_uri is None:
            return None
        return consent.error_redirect(self.settings, failure.redirect_uri, failure.error, failure.state)

    # -- device authorization grant (RFC 8628) -----------------------------------------------
    async def start_device_authorization(self, client: Client, params: Params) -> dict[str, Any]:
        """RFC 8628 §3.1-§3.2: ``/device_authorization`` after client authentication."""
        if not self.settings.device_authorization_grant:
            raise UnauthorizedClient("the device authorization grant is not enabled")
        return await device_authorization.start(self.model, self.settings, client, params, self.now())

    async def open_device_request(self, user_code: str, browser_secret: str | None,
                                  form_token: str | None) -> device_authorization.DeviceRequest:
        """The verification page's lookup of a code typed into its entry form (RFC 8628 §3.3).

        Anything but a pending, unexpired code of an existing client is the same ``InvalidRequest``.
        """
        if not device_authorization.form_is_genuine(browser_secret, form_token):
            raise ConsentForbidden("the form is not valid for this browser; reload the page")
        code, record = await device_authorization.find(self.model, user_code, self.now())
        try:
            client = await self._client(record.client_id)
        except InvalidClient:
            client = None
        if client is None:
            raise InvalidRequest(device_authorization.INVALID_CODE)
        return device_authorization.DeviceRequest(code, record, client)

    async def check_device_form(self, user_code: str, browser_secret: str | None,
                                form_token: str | None) -> device_authorization.DeviceForm:
        """The anti-forgery check of a posted decision: this browser, this code."""
        code = user_codes.normalize(user_code) or ""
        if not device_authorization.form_is_genuine(browser_secret, form_token, code):
            raise ConsentForbidden("the form is not valid for this browser and code; reload the page")
        request = await self.open_device_request(
            code, browser_secret, device_authorization.entry_token(browser_secret or ""))
        return device_authorization.DeviceForm(request)

    async def approve_device(self, form: device_authorization.DeviceForm, subject: str, *,
                             allowed_scopes: Collection[str] | None = None,
                             selected_scopes: Collection[str] | None = None) -> None:
        """The signed-in user approved: a grant for them, which the device's next poll redeems."""
        if not subject:
            raise ValueError("subject is required")
        record = form.request.record
        scopes = device_authorization.granted_scopes(record, allowed_scopes, selected_scopes)
        grant = device_authorization.new_grant(self.settings, record, subject, scopes, self.now())
        if not await self.model.approve_device_authorization(record.user_code_digest, self.now(), grant):
            raise InvalidRequest(device_authorization.INVALID_CODE)
        await self.audit.emit(audit.ConsentApproved(
            time=grant.created_at, client_id=record.client_id, subject=subject, grant_id=grant.grant_id,
            scopes=scopes, requested_scopes=record.scopes, resource=record.resource))

    async def deny_device(self, form: device_authorization.DeviceForm) -> None:
        """The user denied: the device's next poll gets ``access_denied`` (RFC 8628 §3.5)."""
        record = form.request.record
        if not await self.model.deny_device_authorization(record.user_code_digest, self.now()):
            raise InvalidRequest(device_authorization.INVALID_CODE)
        await self.audit.emit(audit.ConsentDenied(time=self.now(), client_id=record.client_id,
                                                  requested_scopes=record.scopes, resource=record.resource))

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
        return await connected_apps.revoke(self.model, subject, grant_id, self.now())

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
