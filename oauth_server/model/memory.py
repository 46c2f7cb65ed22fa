"""In-memory model: the reference behaviour, for tests, development and single-process servers.

Atomicity comes from asyncio: no method awaits between reading and writing, so each verb runs
as one step on the event loop; a revocation and an issuance can therefore never interleave, and
whichever runs first decides (a revoked grant stores nothing; tokens stored first are removed
by the revocation). Memory stays bounded: expired records are purged as writes happen (by the
server's clock, ``use_clock``), and the number of live records is capped. A heap ordered by
expiry finds the expired records (``memory_expiry``), so a purge costs what it removes, not a
scan of every record. Deleting a client and listing grants do scan the grants: they serve an
operator or a settings page, never the token path.
"""

from __future__ import annotations

import dataclasses
import heapq
import time
from collections import defaultdict
from collections.abc import Callable

from oauth_server.errors import StorageUnavailable
from oauth_server.model.base import SLOW_DOWN_SECONDS, OAuthServerModel, check_jti, check_page
from oauth_server.model.memory_expiry import ExpiryHeap
from oauth_server.records import (
    DEVICE_APPROVED,
    DEVICE_DENIED,
    DEVICE_PENDING,
    AccessToken,
    AuthorizationCode,
    Client,
    DeviceAuthorization,
    Grant,
    PendingAuthorization,
    RefreshToken,
    SigningKey,
)

#: Store numbers in the expiry heap's ``stores``.
PENDING, CODES, ACCESS_TOKENS, REFRESH_TOKENS, CLIENTS, GRANTS, SIGNING_KEYS, JTIS, DEVICES = range(9)


def _jti_key(client_id: str, jti: str) -> str:
    """One string per pair, unambiguous whatever either contains (the length comes first)."""
    return f"{len(client_id)}:{client_id}:{jti}"


class MemoryOAuthServerModel(OAuthServerModel):
    """Dictionaries keyed by digest, plus a grant index so revoking a grant is one step.

    At ``max_records`` live records (after purging what has expired) a write raises
    ``StorageUnavailable``: full memory is an outage of this store, answered 503.
    """

    def __init__(self, *, max_records: int = 1_000_000, purge_every: int = 1000) -> None:
        self.max_records = max_records
        self.purge_every = purge_every
        self.clients: dict[str, Client] = {}
        self.pending: dict[str, PendingAuthorization] = {}
        self.grants: dict[str, Grant] = {}
        self.codes: dict[str, AuthorizationCode] = {}
        self.access_tokens: dict[str, AccessToken] = {}
        self.refresh_tokens: dict[str, RefreshToken] = {}
        self.signing_keys: dict[str, SigningKey] = {}
        #: ``_jti_key(client_id, jti)`` -> expires_at of the assertion.
        self.assertion_jtis: dict[str, int] = {}
        #: RFC 8628 device authorizations by device code digest, and user code digest -> device code digest.
        self.devices: dict[str, DeviceAuthorization] = {}
        self.device_user_codes: dict[str, str] = {}
        #: grant_id -> digests of its codes and tokens.
        self.credentials: defaultdict[str, set[str]] = defaultdict(set)
        self._clock: Callable[[], float] = time.time
        self._writes = 0
        stores: tuple[dict[str, object], ...] = (
            self.pending, self.codes, self.access_tokens, self.refresh_tokens, self.clients,  # type: ignore[assignment]
            self.grants, self.signing_keys, self.assertion_jtis, self.devices)
        self._expiry = ExpiryHeap(stores)

    def use_clock(self, clock: Callable[[], float]) -> None:
        """Purges on write use the server's clock, so a frozen test clock holds here too."""
        self._clock = clock

    # -- bookkeeping ----------------------------------------------------------------------
    def _count(self) -> int:
        return (len(self.pending) + len(self.codes) + len(self.access_tokens) + len(self.refresh_tokens)
                + len(self.grants) + len(self.assertion_jtis) + len(self.devices))

    def _track(self, store: int, key: str, expires_at: int | None) -> None:
        self._expiry.track(store, key, expires_at, self._count() + len(self.clients))

    def _before_write(self) -> None:
        self._writes += 1
        if self._writes % self.purge_every == 0:
            self._purge(int(self._clock()), batch=self.max_records)
        if self._count() + len(self.clients) >= self.max_records:
            self._purge(int(self._clock()), batch=self.max_records)
            if self._count() + len(self.clients) >= self.max_records:
                raise StorageUnavailable("the memory model is at capacity (max_records)")

    # -- clients --------------------------------------------------------------------------
    async def get_client(self, client_id: str) -> Client | None:
        return self.clients.get(client_id)

    async def save_client(self, client: Client) -> None:
        if client.client_id in self.clients:
            raise ValueError(f"client {client.client_id} already exists")  # as the primary key does in SQL
        self._put_client(client)

    async def upsert_client(self, client: Client) -> None:
        self._put_client(client)

    async def replace_client(self, client: Client) -> bool:
        if client.client_id not in self.clients:
            return False
        self._put_client(client)
        return True

    def _put_client(self, client: Client) -> None:
        self._before_write()
        self.clients[client.client_id] = client
        self._track(CLIENTS, client.client_id, client.client_secret_expires_at)

    async def delete_client(self, client_id: str, now: int) -> bool:
        # One step, as revoke_grant is: nothing below awaits, so no issuance can come between.
        for grant_id in [grant.grant_id for grant in self.grants.values() if grant.client_id == client_id]:
            self._revoke(grant_id, now)
        for digest in [digest for digest, pending in self.pending.items() if pending.client_id == client_id]:
            del self.pending[digest]
        for digest in [digest for digest, device in self.devices.items() if device.client_id == client_id]:
            self._forget_credential(digest, self.devices.pop(digest))
        return self.clients.pop(client_id, None) is not None

    async def list_clients(self, limit: int = 100, after: str | None = None) -> list[Client]:
        check_page(limit)
        ids = heapq.nsmallest(limit, (key for key in self.clients if after is None or key > after))
        return [self.clients[key] for key in ids]  # str compares by code point

    async def list_grants(self, *, subject: str | None = None, client_id: str | None = None,
                          include_revoked: bool = False, limit: int = 100) -> list[Grant]:
        check_page(limit)
        found = (grant for grant in self.grants.values()
                 if (subject is None or grant.subject == subject)
                 and (client_id is None or grant.client_id == client_id)
                 and (include_revoked or grant.revoked_at is None))
        return heapq.nsmallest(limit, found, key=lambda grant: (-grant.created_at, grant.grant_id))

    # -- pending authorizations -----------------------------------------------------------
    async def save_pending_authorization(self, pending: PendingAuthorization) -> None:
        self._before_write()
        self.pending[pending.request_digest] = pending
        self._track(PENDING, pending.request_digest, pending.expires_at)

    async def get_pending_authorization(self, request_digest: str) -> PendingAuthorization | None:
        return self.pending.get(request_digest)

    async def bind_pending_authorization(self, request_digest: str, browser_digest: str) -> bool:
        pending = self.pending.get(request_digest)
        if pending is None or pending.browser_digest is not None:
            return False
        self.pending[request_digest] = dataclasses.replace(pending, browser_digest=browser_digest)
        return True

    async def consume_pending_authorization(self, request_digest: str) -> PendingAuthorization | None:
        return self.pending.pop(request_digest, None)

    async def approve_pending_authorization(self, request_digest: str, code: AuthorizationCode,
                                            grant: Grant) -> bool:
        if code.grant_id != grant.grant_id:
            raise ValueError("the code must belong to the grant saved with it")
        self._before_write()  # first: its purge may remove the request if it has expired
        if request_digest not in self.pending:
            return False
        await self.save_authorization_code(code, grant)  # awaits nothing: one step on the loop
        self.pending.pop(request_digest, None)
        return True

    # -- grants and codes -----------------------------------------------------------------
    async def save_authorization_code(self, code: AuthorizationCode, grant: Grant) -> None:
        if code.grant_id != grant.grant_id:
            raise ValueError("the code must belong to the grant saved with it")
        if grant.grant_id in self.grants:
            # As the primary key does in SQL: a second save must not revive a revoked grant.
            raise ValueError(f"grant {grant.grant_id} already exists")
        self._before_write()
        self.grants[grant.grant_id] = grant
        self._track(GRANTS, grant.grant_id, grant.expires_at)
        self.codes[code.code_digest] = code
        self.credentials[code.grant_id].add(code.code_digest)
        self._track(CODES, code.code_digest, code.expires_at)

    async def save_grant(self, grant: Grant) -> None:
        if grant.grant_id in self.grants:
            raise ValueError(f"grant {grant.grant_id} already exists")
        self._before_write()
        self.grants[grant.grant_id] = grant
        self._track(GRANTS, grant.grant_id, grant.expires_at)

    def _live(self, grant_id: str) -> bool:
        grant = self.grants.get(grant_id)
        return grant is not None and grant.revoked_at is None

    async def get_authorization_code(self, code_digest: str) -> AuthorizationCode | None:
        return self.codes.get(code_digest)

    async def consume_authorization_code(self, code_digest: str, now: int) -> AuthorizationCode | None:
        code = self.codes.get(code_digest)
        if code is None or code.consumed_at is not None:
            return None
        self.codes[code_digest] = dataclasses.replace(code, consumed_at=now)
        return code

    # -- tokens ---------------------------------------------------------------------------
    async def save_tokens(self, access: AccessToken, refresh: RefreshToken | None) -> bool:
        self._before_write()  # first: its purge may remove the grant if it has expired
        if not self._live(access.grant_id):
            return False
        self._store(access, refresh)
        return True

    def _store(self, access: AccessToken, refresh: RefreshToken | None) -> None:
        self.access_tokens[access.token_digest] = access
        self.credentials[access.grant_id].add(access.token_digest)
        self._track(ACCESS_TOKENS, access.token_digest, access.expires_at)
        if refresh is not None:
            self.refresh_tokens[refresh.token_digest] = refresh
            self.credentials[refresh.grant_id].add(refresh.token_digest)
            self._track(REFRESH_TOKENS, refresh.token_digest, refresh.expires_at)

    async def get_access_token(self, token_digest: str) -> AccessToken | None:
        return self.access_tokens.get(token_digest)

    async def get_refresh_token(self, token_digest: str) -> RefreshToken | None:
        return self.refresh_tokens.get(token_digest)

    async def rotate_refresh_token(
        self, old_digest: str, now: int, access: AccessToken, refresh: RefreshToken, *,
        reuse_after: int | None = None,
    ) -> bool:
        self._before_write()
        old = self.refresh_tokens.get(old_digest)
        if old is None or not self._live(old.grant_id):
            return False
        if old.rotated_at is not None:
            if reuse_after is None or old.rotated_at < reuse_after:
                return False
        else:
            self.refresh_tokens[old_digest] = dataclasses.replace(old, rotated_at=now)  # the first time only
        self._store(access, refresh)
        return True

    async def save_tokens_recording_use(self, access: AccessToken, refresh: RefreshToken | None, now: int) -> bool:
        # save_tokens awaits nothing: the pair runs as one step on the event loop.
        if not await self.save_tokens(access, refresh):
            return False
        self._record_use(access.grant_id, now)
        return True

    async def rotate_refresh_token_recording_use(
        self, old_digest: str, now: int, access: AccessToken, refresh: RefreshToken, *,
        reuse_after: int | None = None,
    ) -> bool:
        if not await self.rotate_refresh_token(old_digest, now, access, refresh, reuse_after=reuse_after):
            return False
        self._record_use(refresh.grant_id, now)
        return True

    async def revoke_grant(self, grant_id: str, now: int) -> None:
        self._revoke(grant_id, now)

    async def revoke_subject_grant(self, grant_id: str, subject: str, now: int) -> bool:
        grant = self.grants.get(grant_id)
        if grant is None or grant.subject != subject:
            return False
        self._revoke(grant_id, now)
        return True

    async def record_grant_use(self, grant_id: str, now: int) -> None:
        self._record_use(grant_id, now)

    def _record_use(self, grant_id: str, now: int) -> None:
        grant = self.grants.get(grant_id)
        if grant is not None and grant.revoked_at is None and (grant.last_used_at or 0) < now:
            self.grants[grant_id] = dataclasses.replace(grant, last_used_at=now)  # same expiry: heap entry holds

    def _revoke(self, grant_id: str, now: int) -> None:
        grant = self.grants.get(grant_id)
        if grant is not None and grant.revoked_at is None:
            self.grants[grant_id] = dataclasses.replace(grant, revoked_at=now)  # same expiry: heap entry holds
        for key in self.credentials.pop(grant_id, set()):
            self.codes.pop(key, None)
            self.access_tokens.pop(key, None)
            self.refresh_tokens.pop(key, None)

    # -- client assertions (RFC 7523) ---------------------------------------------------------
    async def consume_assertion_jti(self, client_id: str, jti: str, expires_at: int) -> bool:
        check_jti(jti)
        key = _jti_key(client_id, jti)
        if key in self.assertion_jtis:
            return False
        self._before_write()
        self.assertion_jtis[key] = expires_at
        self._track(JTIS, key, expires_at)
        return True

    # -- device authorizations (RFC 8628) ----------------------------------------------------
    async def save_device_authorization(self, record: DeviceAuthorization) -> bool:
        self._before_write()  # first: its purge may free the user code of an expired record
        if record.user_code_digest in self.device_user_codes or record.device_code_digest in self.devices:
            return False
        self.devices[record.device_code_digest] = record
        self.device_user_codes[record.user_code_digest] = record.device_code_digest
        self._track(DEVICES, record.device_code_digest, record.expires_at)
        return True

    async def get_device_authorization(self, user_code_digest: str) -> DeviceAuthorization | None:
        device_digest = self.device_user_codes.get(user_code_digest)
        return None if device_digest is None else self.devices.get(device_digest)

    def _pending_device(self, user_code_digest: str, now: int) -> DeviceAuthorization | None:
        record = self.devices.get(self.device_user_codes.get(user_code_digest, ""))
        if record is None or record.status != DEVICE_PENDING or record.expires_at <= now:
            return None
        return record

    async def approve_device_authorization(self, user_code_digest: str, now: int, grant: Grant) -> bool:
        record = self._pending_device(user_code_digest, now)
        if record is None:
            return False
        if grant.grant_id in self.grants:
            raise ValueError(f"grant {grant.grant_id} already exists")  # as the primary key does in SQL
        self._before_write()
        self.grants[grant.grant_id] = grant
        self._track(GRANTS, grant.grant_id, grant.expires_at)
        self.devices[record.device_code_digest] = dataclasses.replace(
            record, status=DEVICE_APPROVED, subject=grant.subject, scopes=grant.scopes, grant_id=grant.grant_id)
        return True

    async def deny_device_authorization(self, user_code_digest: str, now: int) -> bool:
        record = self._pending_device(user_code_digest, now)
        if record is None:
            return False
        self.devices[record.device_code_digest] = dataclasses.replace(record, status=DEVICE_DENIED)
        return True

    async def poll_device_authorization(self, device_code_digest: str,
                                        now: int) -> tuple[DeviceAuthorization, bool] | None:
        record = self.devices.get(device_code_digest)
        if record is None:
            return None
        on_time = record.last_polled_at is None or now >= record.last_polled_at + record.poll_interval
        interval = record.poll_interval if on_time else record.poll_interval + SLOW_DOWN_SECONDS
        record = self.devices[device_code_digest] = dataclasses.replace(
            record, last_polled_at=now, poll_interval=interval)
        return record, on_time

    async def consume_device_authorization(self, device_code_digest: str, now: int) -> DeviceAuthorization | None:
        record = self.devices.get(device_code_digest)
        if (record is None or record.status != DEVICE_APPROVED or record.consumed_at is not None
                or record.expires_at <= now):
            return None
        record = self.devices[device_code_digest] = dataclasses.replace(record, consumed_at=now)
        return record

    # -- signing keys (RFC 9068) ------------------------------------------------------------
    # A handful, written at each rotation: not counted against max_records, which bounds what
    # clients can make the server store. Their expiry goes on the heap like any other.
    async def save_signing_key(self, key: SigningKey) -> None:
        if key.kid in self.signing_keys:
            raise ValueError(f"signing key {key.kid} already exists")  # as the primary key does in SQL
        self.signing_keys[key.kid] = key
        self._track(SIGNING_KEYS, key.kid, key.expires_at)

    async def list_signing_keys(self) -> list[SigningKey]:
        return sorted(self.signing_keys.values(), key=lambda key: (key.activates_at, key.kid))

    async def retire_signing_key(self, kid: str, retires_at: int, expires_at: int) -> bool:
        key = self.signing_keys.get(kid)
        if key is None or key.retires_at is not None:
            return False
        self.signing_keys[kid] = dataclasses.replace(key, retires_at=retires_at, expires_at=expires_at)
        self._track(SIGNING_KEYS, kid, expires_at)
        return True

    # -- housekeeping ---------------------------------------------------------------------
    async def purge_expired(self, now: int, batch: int = 1000) -> int:
        return self._purge(now, batch)

    def _purge(self, now: int, batch: int) -> int:
        """Remove up to ``batch`` expired records of each kind, oldest first."""
        return self._expiry.purge(now, batch, self._forget_credential)

    def _forget_credential(self, key: str, record: object) -> None:
        """A purged code or token leaves its grant's index too; a device authorization its user code."""
        if isinstance(record, DeviceAuthorization):
            if self.device_user_codes.get(record.user_code_digest) == key:
                del self.device_user_codes[record.user_code_digest]
            return
        if isinstance(record, (AuthorizationCode, AccessToken, RefreshToken)):
            keys = self.credentials.get(record.grant_id)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self.credentials[record.grant_id]
