"""The storage interface: what a user implements for their own database.

Rules every implementation keeps (the contract suite in ``tests/model/test_contract.py`` checks
them): credentials arrive already hashed and are looked up by digest; ``consume_*`` and
``rotate_*`` are atomic and single-use even under concurrency; revoking a grant removes every
code and token that carries its ``grant_id`` in one step; ``get_*`` may return expired records
(the server checks expiry against its own clock) and returns None for unknown keys.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

from oauth_server.records import AccessToken, AuthorizationCode, Client, PendingAuthorization, RefreshToken


class OAuthServerModel(ABC):
    """Abstract storage. Times are epoch seconds; ``now`` always comes from the server's clock."""

    # -- clients (RFC 7591) ---------------------------------------------------------------
    @abstractmethod
    async def get_client(self, client_id: str) -> Client | None: ...

    @abstractmethod
    async def save_client(self, client: Client) -> None:
        """Insert a new client (client ids are server-generated and unique)."""

    # -- pending authorizations: between /authorize and the user's decision -----------------
    @abstractmethod
    async def save_pending_authorization(self, pending: PendingAuthorization) -> None: ...

    @abstractmethod
    async def get_pending_authorization(self, request_digest: str) -> PendingAuthorization | None: ...

    @abstractmethod
    async def bind_pending_authorization(self, request_digest: str, browser_digest: str) -> bool:
        """Attach a browser to an unbound pending request. Atomic; False if already bound or gone."""

    @abstractmethod
    async def consume_pending_authorization(self, request_digest: str) -> PendingAuthorization | None:
        """Remove and return the pending request; exactly one concurrent caller gets it."""

    # -- authorization codes --------------------------------------------------------------
    @abstractmethod
    async def save_authorization_code(self, code: AuthorizationCode) -> None: ...

    @abstractmethod
    async def get_authorization_code(self, code_digest: str) -> AuthorizationCode | None:
        """The code, consumed or not (a consumed one means replay)."""

    @abstractmethod
    async def consume_authorization_code(self, code_digest: str, now: int) -> AuthorizationCode | None:
        """Mark the code consumed at ``now`` and return it, unless it was already consumed.

        Atomic: of any number of concurrent callers, exactly one gets the record.
        """

    # -- tokens ---------------------------------------------------------------------------
    @abstractmethod
    async def save_tokens(self, access: AccessToken, refresh: RefreshToken | None) -> None:
        """Store the tokens of one issuance together (one transaction)."""

    @abstractmethod
    async def get_access_token(self, token_digest: str) -> AccessToken | None: ...

    @abstractmethod
    async def get_refresh_token(self, token_digest: str) -> RefreshToken | None:
        """The refresh token, rotated or not (a rotated one presented again means reuse)."""

    @abstractmethod
    async def rotate_refresh_token(
        self, old_digest: str, now: int, access: AccessToken, refresh: RefreshToken
    ) -> bool:
        """Mark ``old_digest`` rotated and store the new pair, atomically.

        Returns False (storing nothing) if the old token was already rotated or is gone: of
        any number of concurrent callers, exactly one succeeds.
        """

    @abstractmethod
    async def revoke_access_token(self, token_digest: str) -> None: ...

    @abstractmethod
    async def revoke_grant(self, grant_id: str) -> None:
        """Remove every code, access token and refresh token of the grant."""

    # -- housekeeping ---------------------------------------------------------------------
    @abstractmethod
    async def purge_expired(self, now: int, batch: int = 1000) -> int:
        """Delete up to ``batch`` expired records of each kind; return how many went.

        Consumed codes and rotated refresh tokens are kept until they expire, so that replay
        is still detected while they could have been valid.
        """

    async def close(self) -> None:  # noqa: B027 - optional hook, not abstract
        """Release connections. The memory model has none."""
