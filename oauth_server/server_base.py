"""``ServerBase``: what every verb group of ``AuthorizationServer`` shares.

The rules class is one class in several modules, one per concern (design.md keeps modules
small): this holds its state (built from the constructor arguments ``AuthorizationServer``
documents), its clock, the client lookups every flow starts from, and the client verbs
(RFC 7591 registration, RFC 7592 management, RFC 6749 §2.3 authentication);
``server_consent`` the authorization-code consent verbs; ``server_device`` the device grant's
page verbs (RFC 8628); ``server`` the token, revocation, resource-side and housekeeping verbs.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from oauth_server import audit, cimd, client_assertion, client_management, clients
from oauth_server.audit import build as audit_events
from oauth_server.errors import InvalidToken, UnauthorizedClient
from oauth_server.fetch import Fetcher
from oauth_server.grants import dispatch
from oauth_server.grants.identity_providers import IdentityProviders, SubjectMapper
from oauth_server.grants.issue import GrantContext
from oauth_server.model.base import OAuthServerModel
from oauth_server.records import Client
from oauth_server.settings import OAuthServerSettings
from oauth_server.signing import SigningKeys


class ServerBase:
    """State and client verbs of ``AuthorizationServer`` (its docstring lists the arguments)."""

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
