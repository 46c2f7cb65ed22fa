"""The storage interface: what a user implements for their own database.

Rules every implementation keeps (the contract suite in ``tests/model/test_contract.py``,
``test_contract_clients.py``, ``test_contract_device.py``, ``test_contract_connected_apps.py``
and ``test_contract_folds.py`` check them): credentials arrive already hashed and are looked up
by digest; ``consume_*`` and ``rotate_*`` are atomic and single-use even under concurrency (a
refresh token's grace window, ``reuse_after``, is the one asked-for exception); ``get_*`` may
return expired records (the server checks expiry against its own clock) and returns None for
unknown keys.

Every code and token belongs to a ``Grant``. Revoking a grant marks it and removes every code
and token of it; issuing tokens checks the mark in the same atomic step as it stores them. So
"revoked" wins under any interleaving of a revocation with an issuance, in one process or many
(RFC 9700 §4.5: a replayed code, §4.14.2: a reused refresh token). Checking the mark first and
storing afterwards would not do: a revocation committed in between leaves live tokens behind.

An outage (the database unreachable, overloaded, shutting down) is raised as
``StorageUnavailable`` and nothing else is: the server answers it 503. Any other exception
propagates and is answered 500, with its traceback in the log.

Clients change and go (RFC 7592 management, cached client ID metadata documents): deleting a
client ends every grant of it, as ``revoke_grant`` ends one, so that no credential issued to it
works afterwards. A client assertion's ``jti`` (RFC 7523 §3, ``private_key_jwt``) is single use,
decided by the model as ``consume_*`` is.

The signing-key methods are the one optional part: a server with JWT access tokens and no
``signing_keys`` in its settings generates and rotates its own keys, and keeps them here so that
every process signs with, and publishes, the same ones. Their defaults raise
``NotImplementedError``, so a model written before them keeps working until it is asked to.
The device-authorization methods (RFC 8628) are optional the same way: needed only with
``device_authorization_grant`` on.
The verbs of a user's connected apps (``revoke_subject_grant``, ``record_grant_use``) are
optional the same way: a model without them serves every flow; only its connected-apps page
cannot revoke, and shows no "last used".
The folds (``approve_pending_authorization``, ``save_tokens_recording_use``,
``rotate_refresh_token_recording_use``) are optional the same way: each does what two verbs do, in
one atomic step (on Postgres one statement: one round trip instead of two); where a model
raises ``NotImplementedError`` the server calls the two verbs instead.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable

from oauth_server.records import (
    AccessToken,
    AuthorizationCode,
    Client,
    DeviceAuthorization,
    Grant,
    PendingAuthorization,
    RefreshToken,
    SigningKey,
)

#: RFC 8628 §3.5: each ``slow_down`` adds this many seconds to a device code's polling interval.
SLOW_DOWN_SECONDS = 5

#: RFC 7519 §4.1.7 leaves a ``jti``'s length open; a replay cache must not store unbounded text.
MAX_JTI_LENGTH = 256

_NO_DEVICE_FLOW = (
    "the device authorization grant (RFC 8628): this model does not store device authorizations; "
    "implement save_/get_/approve_/deny_/poll_/consume_device_authorization or leave the grant off"
)

_NO_SIGNING_KEYS = (
    "JWT access tokens with managed keys: this model does not store signing keys; pass signing_keys=... to "
    "the settings or implement save_signing_key/list_signing_keys/retire_signing_key"
)


_NO_FOLD = "this model does not fold {}: the server calls {} instead"

_NO_CONNECTED_APPS = (
    "a user's connected apps: this model cannot revoke a grant for its subject; implement revoke_subject_grant"
)


class OAuthServerModel(ABC):
    """Abstract storage. Times are epoch seconds; ``now`` always comes from the server's clock."""

    def use_clock(self, clock: Callable[[], float]) -> None:  # noqa: B027 - optional hook, not abstract
        """The server hands its clock to the model at construction.

        A model that decides expiry on its own (the memory model purges as it writes) uses this
        clock, so a test's frozen clock holds for the model too. A model that only receives
        ``now`` arguments can ignore it.
        """

    # -- clients (RFC 7591) ---------------------------------------------------------------
    @abstractmethod
    async def get_client(self, client_id: str) -> Client | None: ...

    @abstractmethod
    async def save_client(self, client: Client) -> None:
        """Insert a new client (client ids are server-generated and unique)."""

    @abstractmethod
    async def upsert_client(self, client: Client) -> None:
        """Insert ``client``, or replace every field of the stored one with the same ``client_id``.

        For client ID metadata documents: the server caches each fetched document as a client.
        Atomic (in SQL one ``INSERT ... ON CONFLICT (client_id) DO UPDATE``), so two processes
        fetching the same document at once both succeed, and one of their records is kept.
        """

    @abstractmethod
    async def replace_client(self, client: Client) -> bool:
        """RFC 7592 §2.2: replace every field of the stored client ``client.client_id``.

        Returns False, storing nothing, if no such client exists: an update never creates one.
        Every process sees the new record at once (a cache of clients must not serve the old).
        """

    @abstractmethod
    async def delete_client(self, client_id: str, now: int) -> bool:
        """RFC 7592 §2.3: delete the client and end every grant of it.

        As ``revoke_grant`` does for each of its grants: marks it revoked at ``now`` (a grant
        already revoked keeps its first time), removes its codes and tokens, and makes any
        ``save_tokens`` or ``rotate_refresh_token`` racing this store nothing; the client's
        pending and device authorizations go too. So once this returns, no credential issued
        to the client works, in this process or another. Returns True if the client existed; its grants are
        ended either way. Concurrent deletions, and a ``revoke_grant`` of one of its grants,
        must not fail (no deadlock).
        """

    @abstractmethod
    async def list_clients(self, limit: int = 100, after: str | None = None) -> list[Client]:
        """At most ``limit`` clients, ordered by ``client_id`` by code point; for an operator.

        ``after`` is the last ``client_id`` of the previous page: the page holds the clients
        after it. Code point order everywhere (in SQL whatever the database's collation), so a
        listing pages alike on every model. ``limit`` below 1 is a ``ValueError``.
        """

    @abstractmethod
    async def list_grants(self, *, subject: str | None = None, client_id: str | None = None,
                          include_revoked: bool = False, limit: int = 100) -> list[Grant]:
        """At most ``limit`` grants of ``subject`` and/or ``client_id`` (None: any), newest first.

        Ordered by ``created_at`` descending, then ``grant_id`` by code point; revoked grants
        only with ``include_revoked``. For a user's "connected apps" page and an operator's
        listing. Expired grants are returned while stored (the caller compares ``expires_at``
        with its clock; ``purge_expired`` removes them). ``limit`` below 1 is a ``ValueError``.
        """

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

    async def approve_pending_authorization(self, request_digest: str, code: AuthorizationCode,
                                            grant: Grant) -> bool:
        """The user approved: ``consume_pending_authorization`` and ``save_authorization_code``
        in one atomic step. Optional (module docstring).

        Removes the pending request and, only if this call removed it, stores the grant and its
        first code (as ``save_authorization_code``: ``code.grant_id`` equals ``grant.grant_id``,
        else ``ValueError``). Returns False, storing nothing, if the request is gone: of any
        number of concurrent decisions (this verb or ``consume_pending_authorization``) exactly
        one takes it. The caller already holds the pending record (read by the form's check):
        nothing of it but ``browser_digest`` ever changes, so no copy needs to come back.
        """
        raise NotImplementedError(_NO_FOLD.format("the approval", "consume_pending_authorization"))

    # -- grants and authorization codes ---------------------------------------------------
    @abstractmethod
    async def save_authorization_code(self, code: AuthorizationCode, grant: Grant) -> None:
        """Store a new grant and its first code together, when the user approves.

        All or nothing: one statement, or one transaction. ``grant.grant_id`` is new
        (server-generated) and equals ``code.grant_id``. The grant is kept, revoked or not,
        until ``grant.expires_at``, when no credential of it can be live any more.
        """

    @abstractmethod
    async def save_grant(self, grant: Grant) -> None:
        """Store a new grant that starts without a code: one a client obtains at the token
        endpoint itself (``client_credentials``, an ID-JAG), whose tokens ``save_tokens`` then
        stores into it, so revocation, listing and purging treat it as any other grant.

        ``grant.grant_id`` is new (server-generated); saving an existing one is a ``ValueError``
        or the database's integrity error, never a revival of a revoked grant.
        """

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
    async def save_tokens(self, access: AccessToken, refresh: RefreshToken | None) -> bool:
        """Store the tokens of one issuance, if their grant exists and is not revoked.

        The check and the insert are one atomic step (one statement, or one transaction that
        a concurrent ``revoke_grant`` cannot interleave with): either the tokens are stored
        before the revocation, which then removes them, or the revocation came first and
        nothing is stored. Returns True if stored; False, storing nothing, if the grant
        (``access.grant_id``; a refresh token has the same) is revoked or unknown.
        """

    @abstractmethod
    async def get_access_token(self, token_digest: str) -> AccessToken | None: ...

    @abstractmethod
    async def get_refresh_token(self, token_digest: str) -> RefreshToken | None:
        """The refresh token, rotated or not (a rotated one presented again means reuse)."""

    @abstractmethod
    async def rotate_refresh_token(
        self, old_digest: str, now: int, access: AccessToken, refresh: RefreshToken, *,
        reuse_after: int | None = None,
    ) -> bool:
        """Mark ``old_digest`` rotated and store the new pair, atomically.

        Returns False, storing nothing and leaving the old token as it was, if the old token
        was already rotated or is gone, or if its grant is revoked or unknown: of any number of
        concurrent callers, exactly one succeeds, and none after (or racing) ``revoke_grant``
        leaves tokens behind, as for ``save_tokens``.

        ``reuse_after`` opens a grace window, for a client that lost the response or sent two
        refreshes at once: a token already rotated at or after ``reuse_after`` rotates again,
        each such rotation storing its own pair, and ``rotated_at`` keeps its first value (so
        the window never moves). RFC 9700 §4.14.2's reuse detection applies after the window.
        Everything else holds as without it: the grant must be live, and ``revoke_grant`` wins.
        None (the default): single use.
        """

    async def save_tokens_recording_use(self, access: AccessToken, refresh: RefreshToken | None, now: int) -> bool:
        """``save_tokens``, and if it stored them ``record_grant_use(access.grant_id, now)``, as
        one atomic step. Optional (module docstring).

        Exactly ``save_tokens``'s contract (stored only into a live grant; a racing
        ``revoke_grant`` wins), plus: when the tokens are stored, the grant's ``last_used_at``
        becomes ``now`` unless it is already ``now`` or later; when they are not, nothing changes.
        """
        raise NotImplementedError(_NO_FOLD.format("the use into save_tokens", "record_grant_use"))

    async def rotate_refresh_token_recording_use(
        self, old_digest: str, now: int, access: AccessToken, refresh: RefreshToken, *,
        reuse_after: int | None = None,
    ) -> bool:
        """``rotate_refresh_token``, and if it rotated ``record_grant_use(refresh.grant_id, now)``,
        as one atomic step. Optional (module docstring).

        Exactly ``rotate_refresh_token``'s contract (single use, or the ``reuse_after`` window;
        only while the grant is live; ``revoke_grant`` wins), plus ``last_used_at`` as in
        ``save_tokens_recording_use``: moved only by a rotation that happened.
        """
        raise NotImplementedError(_NO_FOLD.format("the use into rotate_refresh_token", "record_grant_use"))

    @abstractmethod
    async def revoke_grant(self, grant_id: str, now: int) -> None:
        """End the grant: mark it revoked at ``now`` and remove every code and token of it.

        After this returns, no code or token of the grant exists, and ``save_tokens`` and
        ``rotate_refresh_token`` for it store nothing, whatever ran concurrently, in this
        process or another. A grant already revoked keeps its first ``revoked_at``; an unknown
        ``grant_id`` is a no-op (no tombstone: a grant is stored before any credential of it,
        so nothing can be issued for a grant that does not exist, and a tombstone would have
        no expiry to be purged by). Concurrent revocations of one grant must not fail
        (no deadlock between them).
        """

    # -- device authorizations (RFC 8628) ---------------------------------------------------
    # Abstract neither: a model written before them keeps working while the grant is off.
    async def save_device_authorization(self, record: DeviceAuthorization) -> bool:
        """Insert a new pending device authorization.

        Returns False, storing nothing, if a stored record (expired or not, until purged)
        already has ``record.user_code_digest``: user codes are short, so they can collide, and
        the server then draws another. In SQL one ``INSERT ... ON CONFLICT DO NOTHING`` on a
        unique ``user_code_digest``, so two processes drawing the same code cannot both store it.
        """
        raise NotImplementedError(_NO_DEVICE_FLOW)

    async def get_device_authorization(self, user_code_digest: str) -> DeviceAuthorization | None:
        """The record with this user code, whatever its state (the verification page's lookup)."""
        raise NotImplementedError(_NO_DEVICE_FLOW)

    async def approve_device_authorization(self, user_code_digest: str, now: int, grant: Grant) -> bool:
        """The user approved: store ``grant`` and make the record approved, atomically.

        Only a record that is pending and unexpired (``expires_at > now``) changes: its
        ``status`` becomes approved, ``subject``, ``scopes`` and ``grant_id`` become the
        grant's, and the grant is inserted in the same step (one statement, or a transaction
        that starts with the update). Returns False, storing nothing, otherwise: of concurrent
        decisions on one code exactly one succeeds.
        """
        raise NotImplementedError(_NO_DEVICE_FLOW)

    async def deny_device_authorization(self, user_code_digest: str, now: int) -> bool:
        """The user denied: only a pending, unexpired record becomes denied (atomic, as approving
        is); False otherwise. A denied record can never be consumed."""
        raise NotImplementedError(_NO_DEVICE_FLOW)

    async def poll_device_authorization(self, device_code_digest: str,
                                        now: int) -> tuple[DeviceAuthorization, bool] | None:
        """Record a poll of the token endpoint at ``now``; the record after it, and whether the
        poll came on time. None for an unknown device code.

        On time: the first poll, or ``now >= last_polled_at + poll_interval``. A poll that is
        not on time adds ``SLOW_DOWN_SECONDS`` to ``poll_interval`` (RFC 8628 §3.5 ``slow_down``:
        "for this and all subsequent requests"). Either way ``last_polled_at`` becomes ``now``.
        Atomic: of concurrent polls at one ``now`` at most one is on time. The record is
        returned whatever its state (consumed, denied, expired): the server decides.
        """
        raise NotImplementedError(_NO_DEVICE_FLOW)

    async def consume_device_authorization(self, device_code_digest: str, now: int) -> DeviceAuthorization | None:
        """Mark an approved, unexpired, unconsumed record consumed at ``now`` and return it.

        Atomic and single use, as ``consume_authorization_code``: of any number of concurrent
        callers exactly one gets the record; a pending, denied, expired or already consumed
        one gives None.
        """
        raise NotImplementedError(_NO_DEVICE_FLOW)

    # -- a user's connected apps: optional, see the module docstring --------------------------
    async def revoke_subject_grant(self, grant_id: str, subject: str, now: int) -> bool:
        """``revoke_grant``, only if the grant belongs to ``subject``; whether it does.

        For a user revoking one of their own connected apps: the ownership check and the
        revocation are one atomic step, as ``revoke_grant`` is (in SQL the same transaction,
        each statement also matching ``subject``), so no caller can end another subject's
        grant. True if the grant exists and is ``subject``'s (revoked now, or already revoked:
        it keeps its first ``revoked_at``); False, changing nothing, if it is unknown or
        another subject's, so the caller cannot tell those two apart either.
        """
        raise NotImplementedError(_NO_CONNECTED_APPS)

    async def record_grant_use(self, grant_id: str, now: int) -> None:  # noqa: B027 - optional, no-op default
        """Set the grant's ``last_used_at`` to ``now``, unless it is already ``now`` or later.

        The server calls it after it stored tokens of the grant (a code redeemed, a refresh),
        never on a bearer check, so the token path gains one small write and the resource
        path none. One statement; a revoked or unknown grant is left as it is. The default
        does nothing: a model written before it keeps working, and its grants show no use.
        """

    # -- client assertions (RFC 7523, private_key_jwt) ---------------------------------------
    @abstractmethod
    async def consume_assertion_jti(self, client_id: str, jti: str, expires_at: int) -> bool:
        """Record that ``client_id`` used the assertion ``jti``; False if it already had.

        RFC 7523 §3 item 7 / OpenID Connect Core §9: a client assertion is single use. The pair
        is kept until ``expires_at`` (the assertion's ``exp``: after it the assertion is refused
        anyway), then purged. Atomic across processes, as ``consume_*`` is: of concurrent
        callers exactly one gets True. A ``jti`` is no credential and is stored as given; longer
        than ``MAX_JTI_LENGTH`` it is a ``ValueError`` (the caller refuses the assertion).
        ID-JAGs (``grants.jwt_bearer``) use the same verb with ``client_id`` = ``"id-jag "`` +
        the identity provider's issuer: single use per provider, apart from every client.
        """

    # -- signing keys of JWT access tokens (RFC 9068): optional, see the module docstring ----
    async def save_signing_key(self, key: SigningKey) -> None:
        """Insert a new signing key, stored exactly as given.

        ``key.private_key`` arrives encrypted (``keys.KeyCipher``): store the string, never
        decrypt it. ``kid`` is unique: saving a second key with a ``kid`` already stored raises
        and changes nothing. That is a defect (kids are RFC 7638 thumbprints of new keys), so it
        is an ordinary error (the memory model's ``ValueError``, the SQL model's
        ``IntegrityError``), never ``StorageUnavailable``.
        """
        raise NotImplementedError(_NO_SIGNING_KEYS)

    async def list_signing_keys(self) -> list[SigningKey]:
        """Every stored key, retired or not, ordered by ``activates_at``, then ``kid``.

        No filtering: the server decides by its own clock which keys are published (RFC 7517
        JWKS) and which one signs, and the fixed order makes every process decide alike (in
        SQL, ``kid`` compares by code point, whatever the database's collation). Keys are few:
        a rotation adds one and ``purge_expired`` removes it once expired.
        """
        raise NotImplementedError(_NO_SIGNING_KEYS)

    async def retire_signing_key(self, kid: str, retires_at: int, expires_at: int) -> bool:
        """Set ``retires_at`` and ``expires_at`` of key ``kid``, if it is not retired yet.

        Atomic, as ``consume_*`` is: the check and the write are one step (in SQL one statement,
        ``UPDATE ... WHERE kid = :kid AND retires_at IS NULL``), so when two processes rotate at
        once exactly one retires the key, and its times are the ones every process then reads.
        Returns True if this call set them; False, changing nothing, if the key was already
        retired (it keeps its first times) or is unknown.
        """
        raise NotImplementedError(_NO_SIGNING_KEYS)

    # -- housekeeping ---------------------------------------------------------------------
    @abstractmethod
    async def purge_expired(self, now: int, batch: int = 1000) -> int:
        """Delete up to ``batch`` expired records of each kind; return how many went.

        Expired means ``expires_at <= now`` (for grants too, revoked or not; for assertion
        ``jti``s too; for clients, an expired secret, so a metadata-document client, whose
        secret never expires, stays until deleted; for signing keys, one retired with an
        ``expires_at``: None is never; for device authorizations, whatever their state).
        Consumed codes and rotated refresh tokens are kept until they expire, so that replay is
        still detected while they could have been valid. A model without signing keys has none
        to purge.
        """

    async def close(self) -> None:  # noqa: B027 - optional hook, not abstract
        """Release connections. The memory model has none."""


def check_page(limit: int) -> None:
    """``list_*``: a page holds at least one record (databases disagree on a limit below 1:
    Postgres refuses a negative one, SQLite reads it as no limit)."""
    if limit < 1:
        raise ValueError(f"limit must be at least 1, not {limit}")


def check_jti(jti: str) -> None:
    """``consume_assertion_jti``: refuse a ``jti`` too long to store."""
    if len(jti) > MAX_JTI_LENGTH:
        raise ValueError(f"jti longer than {MAX_JTI_LENGTH} characters")
