"""The authorization-code consent verbs of ``AuthorizationServer`` (RFC 6749 §4.1, RFC 9700 §4.4).

/authorize stores a pending request; the consent page opens it for the browser that started it;
a posted decision passes the anti-forgery check once (``ConsentForm``) and becomes a code or an
``access_denied`` redirect.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from oauth_server import consent, tokens
from oauth_server.audit import build as audit_events
from oauth_server.errors import (
    AccessDenied,
    AuthorizationFailed,
    ConsentForbidden,
    InvalidClient,
    InvalidRequest,
    InvalidScope,
)
from oauth_server.grants import authorization_code
from oauth_server.params import Params, single
from oauth_server.records import Client, PendingAuthorization
from oauth_server.server_base import ServerBase


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


class ConsentVerbs(ServerBase):
    """/authorize and the consent page's decisions."""

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
        # As the form's check read it: only its browser binding ever changes, and the approval
        # below takes it atomically (one statement on Postgres), so a second decision fails.
        pending = form.request.pending
        granted = tuple(
            s for s in pending.scopes
            if (allowed_scopes is None or s in allowed_scopes) and (selected_scopes is None or s in selected_scopes)
        )
        if pending.scopes and not granted:
            await self._take_pending(form)
            raise AuthorizationFailed(
                InvalidScope("the user may not grant any of the requested scopes"), pending.redirect_uri, pending.state
            )
        code = await authorization_code.approve_pending(self.model, self.settings, pending, subject, granted,
                                                        self.now(), audit=self.audit)
        if code is None:
            raise AuthorizationFailed(InvalidRequest("this authorization request was already answered"))
        return consent.add_query(pending.redirect_uri, {"code": code, "state": pending.state,
                                                        "iss": self.settings.issuer_url})

    async def deny(self, form: ConsentForm) -> str:
        """The user denied: RFC 6749 §4.1.2.1 ``access_denied`` back to the client."""
        pending = await self._take_pending(form)
        await self.audit.emit(audit_events.consent_denied(pending, self.now()))
        return consent.error_redirect(
            self.settings, pending.redirect_uri, AccessDenied("the user denied the request"), pending.state
        )

    def error_redirect(self, failure: AuthorizationFailed) -> str | None:
        """Where an /authorize or consent failure may be sent, or None: show it to the user."""
        if failure.redirect_uri is None:
            return None
        return consent.error_redirect(self.settings, failure.redirect_uri, failure.error, failure.state)
