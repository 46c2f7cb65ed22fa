"""The SQL model's client verbs: registration (RFC 7591), metadata documents, management
(RFC 7592), listings, and the single use of client assertions (RFC 7523).

Every write of a client reaches the caches: this process's at once (evicted after the write, a
generation counter refusing lookups that raced it), every other process's on Postgres by the
``client:<id>`` notice sent in the write's transaction (``notices``). ``delete_client`` is a
transaction that revokes the client's grants first (``client_statements`` says in what order,
and why that cannot deadlock).
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy.exc import OperationalError

from oauth_server.model.base import check_jti, check_page
from oauth_server.model.sqlalchemy.client_statements import (
    CONSUME_JTI,
    CONSUME_JTI_POSTGRES,
    DELETE_CLIENT,
    DELETE_CLIENT_POSTGRES,
    LIST_CLIENTS,
    LIST_GRANTS,
    REPLACE_CLIENT,
    UPSERT_CLIENT,
    UPSERT_CLIENT_POSTGRES,
)
from oauth_server.model.sqlalchemy.failures import read, storage
from oauth_server.model.sqlalchemy.notices import notice
from oauth_server.model.sqlalchemy.runner import SQLRunner
from oauth_server.model.sqlalchemy.statements import CLIENT_REVISION, GET_CLIENT
from oauth_server.model.sqlalchemy.tables import clients, to_row
from oauth_server.records import Client, Grant

logger = logging.getLogger("oauth_server")


class ClientVerbs(SQLRunner):
    """Clients, their grants' listing, and assertion jtis."""

    @read
    async def get_client(self, client_id: str) -> Client | None:
        if self._lite is not None and self._clients.ttl > 0:
            await self._check_client_revision()
        cached = self._clients.get(client_id)
        if cached is not None:
            return cached
        generation = self._clients.generation
        row = await self._one(GET_CLIENT, {"key": client_id})
        if row is None:
            return None
        client = Client(**row)
        self._clients.put(client, generation)
        return client

    async def _check_client_revision(self) -> None:
        """SQLite: forget the cached clients if any process wrote one since they were read."""
        try:
            row = await self._one(CLIENT_REVISION, {})
        except OperationalError as exc:
            if "no such table" not in str(exc):
                raise
            logger.warning("oauth_change_counters is missing (migrate to revision 0008): client records are not cached")
            self._clients.ttl = 0
            return
        self._clients.at_revision(None if row is None else int(row["value"]))

    @storage
    async def save_client(self, client: Client) -> None:
        await self._insert(clients, client)  # a new id: nothing of it is cached anywhere

    @storage
    async def upsert_client(self, client: Client) -> None:
        statement = UPSERT_CLIENT_POSTGRES if self._postgres else UPSERT_CLIENT
        await self._write_client(statement, client)

    @storage
    async def replace_client(self, client: Client) -> bool:
        return await self._write_client(REPLACE_CLIENT, client) == 1

    async def _write_client(self, statement: Any, client: Client) -> int:
        """One statement in a transaction that announces the change; rows touched."""
        params = {f"c_{name}": value for name, value in to_row(client).items()}
        try:
            (count,) = await self._transaction((statement,), params, notice("client", client.client_id))
        finally:
            self._clients.evict(client.client_id)
        return count

    @storage
    async def delete_client(self, client_id: str, now: int) -> bool:
        # RFC 7592 §2.3 and RFC 7009 §2: the client's tokens stop working in this process at
        # once, in the others on the notice; evicted before (the request that deletes need not
        # wait) and after (a lookup that raced the DELETEs).
        if self._cache is not None:
            self._cache.evict_client(client_id)
        statements = DELETE_CLIENT_POSTGRES if self._postgres else DELETE_CLIENT
        try:
            counts = await self._transaction(statements, {"client": client_id, "now": now},
                                             notice("client", client_id))
        finally:
            self._clients.evict(client_id)
            if self._cache is not None:
                self._cache.evict_client(client_id)
        return counts[-1] == 1  # the last statement deletes the client row

    @read
    async def list_clients(self, limit: int = 100, after: str | None = None) -> list[Client]:
        check_page(limit)
        statement = LIST_CLIENTS[after is not None, self._postgres]
        return [Client(**row) for row in await self._all(statement, {"limit": limit, "after": after})]

    @read
    async def list_grants(self, *, subject: str | None = None, client_id: str | None = None,
                          include_revoked: bool = False, limit: int = 100) -> list[Grant]:
        check_page(limit)
        statement = LIST_GRANTS[subject is not None, client_id is not None, include_revoked, self._postgres]
        params = {"subject": subject, "client": client_id, "limit": limit}
        return [Grant(**row) for row in await self._all(statement, params)]

    @storage
    async def consume_assertion_jti(self, client_id: str, jti: str, expires_at: int) -> bool:
        check_jti(jti)
        statement = CONSUME_JTI_POSTGRES if self._postgres else CONSUME_JTI
        params = {"j_client_id": client_id, "j_jti": jti, "j_expires_at": expires_at}
        return await self._run(statement, params) == 1
