"""The SQL model's statements for clients: metadata documents, RFC 7592 management, listings,
and the single use of client assertions. Built once at import, as in ``statements.py``.

Deleting a client revokes its grants as ``revoke_grant`` does
--------------------------------------------------------------
RFC 7592 §2.3: once a client is deleted, no credential issued to it may work. In one
transaction (READ COMMITTED on Postgres, so each statement sees what committed before it),
``DELETE_CLIENT_POSTGRES`` first locks the client's grant rows and marks them revoked, then
deletes their codes and tokens, the client's pending requests and, last, the client row. A
grant row locked and marked first is what makes revocation win over a racing issuance, exactly
as for ``REVOKE_GRANT`` (``statements.py`` says why, in both orders).

No deadlock: the grant rows are locked in ``grant_id`` order (``SELECT ... ORDER BY grant_id FOR
NO KEY UPDATE`` inside ``ANY(ARRAY(...))``: rows are locked as the sort emits them), so two
deletions of one client take the same rows in the same order, whatever the plan. An issuer holds
one grant row and ``revoke_grant`` locks one grant row before any credential row; the deletion
locks only grant rows until it holds all of them, and credential, pending and client rows
after. So nobody waits while holding a lock the other needs next: no cycle. A concurrent upsert
or replacement of the client holds only the client row, which the deletion takes last.

What a deletion cannot reach: a grant saved after its first statement, by an approval that was
already past its client check. Its code goes if it committed before the DELETEs; either way it
is refused while the client is gone, because the token endpoint authenticates the client.

SQLite serializes writers; the transaction starts with a write, so it runs as one step there.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import BigInteger, any_, bindparam, delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite

from oauth_server.model.sqlalchemy.tables import (
    GRANT_TABLES,
    assertion_jtis,
    clients,
    device_authorizations,
    grants,
    pending_authorizations,
)

_grants, _clients, _pending = grants.c, clients.c, pending_authorizations.c


def _delete_client(*, postgres: bool) -> tuple[Any, ...]:
    """``delete_client``'s transaction, in the order the module docstring gives."""
    of_client = select(_grants.grant_id).where(_grants.client_id == bindparam("client"))
    if postgres:
        locked = of_client.order_by(_grants.grant_id).with_for_update(key_share=True)
        revoke = _grants.grant_id == any_(func.array(locked.scalar_subquery()))
    else:
        revoke = _grants.client_id == bindparam("client")
    return (
        update(grants).where(revoke)
        .values(revoked_at=func.coalesce(_grants.revoked_at, bindparam("now", type_=BigInteger))),
        # By each grant's id, on the grant_id indexes; ANY(ARRAY(...)): one probe per grant.
        *(delete(table).where(table.c.grant_id == any_(func.array(of_client.scalar_subquery())) if postgres
                              else table.c.grant_id.in_(of_client)) for table in GRANT_TABLES),
        delete(pending_authorizations).where(_pending.client_id == bindparam("client")),
        delete(device_authorizations).where(device_authorizations.c.client_id == bindparam("client")),
        delete(clients).where(_clients.client_id == bindparam("client")),
    )


DELETE_CLIENT = _delete_client(postgres=False)
DELETE_CLIENT_POSTGRES = _delete_client(postgres=True)

# -- clients: metadata documents (upsert) and RFC 7592 management -----------------------------
#: Every column of a client as the parameter ``c_<column>``.
_CLIENT_VALUES = {column.name: bindparam(f"c_{column.name}", type_=column.type) for column in clients.columns}
_CLIENT_FIELDS = [column for column in clients.columns if not column.primary_key]


def _upsert_client(dialect_insert: Any) -> Any:
    """INSERT, or on a taken client_id replace every other column: one atomic statement."""
    statement = dialect_insert(clients).values(_CLIENT_VALUES)
    return statement.on_conflict_do_update(
        index_elements=[_clients.client_id],
        set_={column.name: statement.excluded[column.name] for column in _CLIENT_FIELDS})


UPSERT_CLIENT = _upsert_client(sqlite.insert)
UPSERT_CLIENT_POSTGRES = _upsert_client(postgresql.insert)
#: RFC 7592 §2.2: every field replaced; no row, no insert.
REPLACE_CLIENT = (
    update(clients).where(_clients.client_id == bindparam("c_client_id"))
    .values({column.name: _CLIENT_VALUES[column.name] for column in _CLIENT_FIELDS})
)


def _list_clients(*, after: bool, postgres: bool) -> Any:
    """A page of clients by code point (on Postgres ``COLLATE "C"``; SQLite's BINARY already is).

    On Postgres the primary key's index is in the database's collation, so each page sorts the
    clients (an operator's listing of thousands: see ``scripts/explain_plans.py``)."""
    client_id = _clients.client_id.collate("C") if postgres else _clients.client_id
    statement = select(clients).order_by(client_id).limit(bindparam("limit"))
    return statement.where(client_id > bindparam("after")) if after else statement


#: (after given, postgres) -> statement.
LIST_CLIENTS = {(after, postgres): _list_clients(after=after, postgres=postgres)
                for after in (False, True) for postgres in (False, True)}


def _list_grants(*, subject: bool, client: bool, revoked: bool, postgres: bool) -> Any:
    """Newest first, ties by grant_id code point; each filter on its own index."""
    grant_id = _grants.grant_id.collate("C") if postgres else _grants.grant_id
    statement = select(grants).order_by(_grants.created_at.desc(), grant_id).limit(bindparam("limit"))
    if subject:
        statement = statement.where(_grants.subject == bindparam("subject"))
    if client:
        statement = statement.where(_grants.client_id == bindparam("client"))
    return statement if revoked else statement.where(_grants.revoked_at.is_(None))


#: (subject given, client given, include_revoked, postgres) -> statement, each built once.
LIST_GRANTS = {(subject, client, revoked, postgres): _list_grants(subject=subject, client=client, revoked=revoked,
                                                                  postgres=postgres)
               for subject in (False, True) for client in (False, True) for revoked in (False, True)
               for postgres in (False, True)}

# -- client assertions (RFC 7523 §3 item 7): a jti once per client -----------------------------


def _consume_jti(dialect_insert: Any) -> Any:
    """The primary key decides: of concurrent inserts of one pair, one stores a row (rowcount 1)."""
    return dialect_insert(assertion_jtis).values(
        client_id=bindparam("j_client_id"), jti=bindparam("j_jti"),
        expires_at=bindparam("j_expires_at", type_=BigInteger)).on_conflict_do_nothing()


CONSUME_JTI = _consume_jti(sqlite.insert)
CONSUME_JTI_POSTGRES = _consume_jti(postgresql.insert)
