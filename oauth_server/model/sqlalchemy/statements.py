"""The SQL model's statements: SQLAlchemy Core, built once at import.

Module level so that each is compiled once (``asyncpg_path`` caches by statement object) and so
that ``scripts/explain_plans.py`` explains exactly what the model runs. Parameters are named:
``key`` (a primary key), ``now``, ``grant`` (a grant_id), ``owner`` (its subject), ``batch``, ``reuse_after`` (a
rotation's grace window, NULL by default), ``a_``/``r_``/``c_``/``g_``-prefixed columns of a
record being inserted, and an UPDATE's new values by column name. The client statements
(``client_statements.py``) follow the same rules.

Revocation wins: the grant row orders revocation and issuance
--------------------------------------------------------------
RFC 9700 §4.5 / §4.14.2: once a replayed code or reused refresh token revokes a grant, no token
of it may survive, whatever the order in which concurrent requests, on any number of processes,
reach the database. Deleting by ``grant_id`` alone cannot promise it: a DELETE's snapshot does
not see rows another transaction inserts after it, so tokens stored a moment after the
revocation would live on. So on Postgres, under READ COMMITTED, the grant's row decides:

* ``REVOKE_GRANT`` first UPDATEs the grant row (``revoked_at``), which holds its row lock
  (FOR NO KEY UPDATE strength) until commit, then DELETEs the codes and tokens, each DELETE a
  statement with a fresh snapshot.
* Every issuance is ONE statement whose CTE reads the grant row ``WHERE revoked_at IS NULL FOR
  SHARE`` and inserts only from the row it got (``_LIVE_GRANT_LOCKED``). FOR SHARE is the
  weakest lock that conflicts with the revocation's UPDATE (FOR KEY SHARE does not: a non-key
  update leaves it alone), and issuers' shares do not conflict with one another.

Revoker first: the issuer's FOR SHARE waits for the revoker's commit, then re-checks the newest
version of the row (EvalPlanQual): ``revoked_at`` is set, the CTE yields no row, nothing is
inserted (and a revocation committed before the issuer's snapshot is simply seen). Issuer first:
the revoker's UPDATE waits for the issuer's commit; the DELETEs after it start later, so their
snapshots see the new tokens and delete them. There is no third order.

No deadlock: every revoker locks the grant row first and holds it to commit (the UPDATE keeps
the first ``revoked_at`` but rewrites the row, so an already revoked grant is locked too), so
revocations of one grant run one after another. An issuer locks the grant row before any token
row (the rotation's UPDATE joins the locked CTE, and a row is locked only once the join emits
it) and holds no other lock while it waits. One order, no cycle.

SQLite serializes writers with one database lock, and each of the model's transactions starts
with a write (whose first step takes that lock, before anything is read), so a check and its
insert cannot be interleaved with a revocation; there the same checks run without FOR SHARE.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BigInteger,
    Table,
    and_,
    any_,
    bindparam,
    delete,
    func,
    insert,
    literal_column,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.sql import ColumnElement, Delete

from oauth_server.model.sqlalchemy.tables import (
    GRANT_TABLES,
    access_tokens,
    assertion_jtis,
    authorization_codes,
    change_counters,
    clients,
    device_authorizations,
    grants,
    pending_authorizations,
    refresh_tokens,
    signing_keys,
)

_codes, _access, _refresh, _pending = authorization_codes.c, access_tokens.c, refresh_tokens.c, pending_authorizations.c
_grants, _keys, _jtis = grants.c, signing_keys.c, assertion_jtis.c


def _insert_from(table: Table, prefix: str, source: Any) -> Any:
    """``INSERT INTO table SELECT :prefix_<column>, ... FROM source``: one row per row of ``source``."""
    values = [bindparam(f"{prefix}{column.name}", type_=column.type) for column in table.columns]
    query = select(*values).select_from(source) if source is not None else select(*values)
    return insert(table).from_select([column.name for column in table.columns], query)


# -- lookups and single-use steps ------------------------------------------------------------
GET_CLIENT = select(clients).where(clients.c.client_id == bindparam("key"))
#: SQLite: how many writes of ``oauth_clients`` there have been (``tables.change_counters``).
CLIENT_REVISION = select(change_counters.c.value).where(change_counters.c.name == "clients")
GET_PENDING = select(pending_authorizations).where(_pending.request_digest == bindparam("key"))
GET_CODE = select(authorization_codes).where(_codes.code_digest == bindparam("key"))
GET_ACCESS_TOKEN = select(access_tokens).where(_access.token_digest == bindparam("key"))
GET_REFRESH_TOKEN = select(refresh_tokens).where(_refresh.token_digest == bindparam("key"))

BIND_PENDING = (
    update(pending_authorizations)
    .where(_pending.request_digest == bindparam("key"), _pending.browser_digest.is_(None))
    .values(browser_digest=bindparam("browser_digest"))
)
CONSUME_PENDING = (
    delete(pending_authorizations).where(_pending.request_digest == bindparam("key")).returning(*_pending)
)
#: The user's decision takes the pending request: whoever deletes the row decided.
TAKE_PENDING = delete(pending_authorizations).where(_pending.request_digest == bindparam("key"))
# RFC 6749 §10.5 / OAuth 2.1 §4.1.3: codes are single use; the database decides who got it.
CONSUME_CODE = (
    update(authorization_codes)
    .where(_codes.code_digest == bindparam("key"), _codes.consumed_at.is_(None))
    .values(consumed_at=bindparam("now"))
    .returning(*_codes)
)
INSERT = {table: insert(table) for table in (clients, pending_authorizations, grants, authorization_codes,
                                             access_tokens, refresh_tokens, signing_keys)}

# -- signing keys (RFC 9068) -------------------------------------------------------------------
#: Every key, in the contract's order. ``kid`` by code point: on Postgres the column's collation
#: (the database's, e.g. en_US) would order kids differently from SQLite and the memory model.
LIST_SIGNING_KEYS = select(signing_keys).order_by(_keys.activates_at, _keys.kid)
LIST_SIGNING_KEYS_POSTGRES = select(signing_keys).order_by(_keys.activates_at, _keys.kid.collate("C"))
#: Retired once: of two processes rotating at once, the row lock makes the second re-check
#: ``retires_at`` (Postgres) or wait for the first to commit (SQLite), and change nothing.
RETIRE_SIGNING_KEY = (
    update(signing_keys)
    .where(_keys.kid == bindparam("key"), _keys.retires_at.is_(None))
    .values(retires_at=bindparam("retires_at"), expires_at=bindparam("expires_at"))
)

# -- issuance: only into a live grant ----------------------------------------------------------
#: The grant ``:grant`` if it exists and is not revoked: what every issuance checks as it stores.
LIVE_GRANT = select(_grants.grant_id).where(_grants.grant_id == bindparam("grant"), _grants.revoked_at.is_(None))
#: ``LIVE_GRANT`` read FOR SHARE, the first step of every Postgres issuance (see the module docstring).
_LIVE_GRANT_LOCKED = LIVE_GRANT.with_for_update(read=True).cte("live_grant")

# Postgres: one statement each (one round trip instead of BEGIN, 2-3 statements, COMMIT). A
# statement is atomic, and its data-modifying CTEs all run, in one snapshot, inserting one row
# per row of the CTE they select from: none when the grant is revoked.
SAVE_GRANT_AND_CODE_POSTGRES = _insert_from(authorization_codes, "c_", None).add_cte(
    _insert_from(grants, "g_", None).cte("new_grant"))
SAVE_ACCESS_POSTGRES = (
    select(func.count()).select_from(_LIVE_GRANT_LOCKED)
    .add_cte(_insert_from(access_tokens, "a_", _LIVE_GRANT_LOCKED).cte("new_access"))
)
SAVE_PAIR_POSTGRES = (
    select(func.count()).select_from(_LIVE_GRANT_LOCKED)
    .add_cte(_insert_from(access_tokens, "a_", _LIVE_GRANT_LOCKED).cte("new_access"),
             _insert_from(refresh_tokens, "r_", _LIVE_GRANT_LOCKED).cte("new_refresh"))
)
# RFC 9700 §4.14.2: a refresh token rotates once (or, given ``reuse_after``, again while its
# first rotation is at or after it), and only while its grant is live. ``rotated_at`` keeps its
# first value. A NULL ``reuse_after`` compares as unknown: single use.
_ROTATABLE = or_(_refresh.rotated_at.is_(None), _refresh.rotated_at >= bindparam("reuse_after", None, type_=BigInteger))
_FIRST_ROTATION = func.coalesce(_refresh.rotated_at, bindparam("now", type_=BigInteger))
# The UPDATE joins the locked grant row; its own row lock orders concurrent rotations (the next
# waits, then re-checks rotated_at: no row, unless within the window), and the INSERTs select
# from its result.
_ROTATED = (
    update(refresh_tokens)
    .where(_refresh.token_digest == bindparam("key"), _ROTATABLE, _refresh.grant_id == _LIVE_GRANT_LOCKED.c.grant_id)
    .values(rotated_at=_FIRST_ROTATION)
    .returning(_refresh.token_digest)
    .cte("rotated")
)
ROTATE_AND_ISSUE_POSTGRES = (
    select(func.count()).select_from(_ROTATED)
    .add_cte(_insert_from(access_tokens, "a_", _ROTATED).cte("new_access"),
             _insert_from(refresh_tokens, "r_", _ROTATED).cte("new_refresh"))
)

# SQLite: the first statement of the transaction that stores the rest (see the module docstring).
SAVE_ACCESS_IF_LIVE = _insert_from(access_tokens, "a_", LIVE_GRANT.subquery())
ROTATE_REFRESH_TOKEN = (
    update(refresh_tokens)
    .where(_refresh.token_digest == bindparam("key"), _ROTATABLE, _refresh.grant_id.in_(LIVE_GRANT))
    .values(rotated_at=_FIRST_ROTATION)
    .returning(_refresh.token_digest)
)

# -- revocation --------------------------------------------------------------------------------
#: In one transaction: the grant row first (the lock that orders everything), then its
#: credentials. ``coalesce``: a second revocation keeps the first time, and still takes the lock.
REVOKE_GRANT = (
    update(grants).where(_grants.grant_id == bindparam("grant"))
    .values(revoked_at=func.coalesce(_grants.revoked_at, bindparam("now", type_=BigInteger))),
    *(delete(table).where(table.c.grant_id == bindparam("grant")) for table in GRANT_TABLES),
)
#: ``REVOKE_GRANT`` for one subject's own grant (a user's connected apps): every statement also
#: matches ``:owner`` (a grant's subject never changes, and its credentials carry the same), so
#: the first statement's count says whether the grant was the subject's, and another subject's
#: grant is left untouched by all of them.
REVOKE_SUBJECT_GRANT = (
    update(grants).where(_grants.grant_id == bindparam("grant"), _grants.subject == bindparam("owner"))
    .values(revoked_at=func.coalesce(_grants.revoked_at, bindparam("now", type_=BigInteger))),
    *(delete(table).where(table.c.grant_id == bindparam("grant"), table.c.subject == bindparam("owner"))
      for table in GRANT_TABLES),
)
#: Monotonic, and only while the grant is live; an UPDATE that matches no row writes nothing.
RECORD_GRANT_USE = (
    update(grants)
    .where(_grants.grant_id == bindparam("grant"), _grants.revoked_at.is_(None),
           or_(_grants.last_used_at.is_(None), _grants.last_used_at < bindparam("now", type_=BigInteger)))
    .values(last_used_at=bindparam("now", type_=BigInteger))
)
#: Postgres: tells every process's caches (``notices``), when (and only if) the transaction commits.
NOTIFY = text("SELECT pg_notify(:channel, :payload)")


# -- housekeeping ------------------------------------------------------------------------------
def _purge(table: Table, expires: ColumnElement[int], expired: ColumnElement[bool], *, postgres: bool) -> Delete:
    """Delete one bounded batch of expired rows, oldest first, so it is safe while serving.

    The batch is chosen on the ``expires`` index (``ORDER BY ... LIMIT``). On Postgres it is
    ``pk = ANY(ARRAY(batch))``: the batch is computed once, then each row is deleted through the
    primary key (``pk IN (batch)`` lets the planner hash-join it against a scan of the whole
    table), and ``SKIP LOCKED`` leaves rows a request is using right now (a code being consumed,
    a grant an issuance holds FOR SHARE) for the next purge. SQLite has neither; its writers are
    serialized anyway. A table keyed by two columns (the assertion jtis) is deleted by each row's
    physical address instead (Postgres ``ctid``, locked by the batch's FOR UPDATE so it cannot
    move; SQLite ``rowid``).
    """
    keys = list(table.primary_key.columns)
    key: ColumnElement[Any] = keys[0] if len(keys) == 1 else literal_column("ctid" if postgres else "rowid")
    batch = select(key).select_from(table).where(expired).order_by(expires).limit(bindparam("batch"))
    if postgres:
        return delete(table).where(key == any_(func.array(batch.with_for_update(skip_locked=True).scalar_subquery())))
    return delete(table).where(key.in_(batch))


def purge_statements(*, postgres: bool) -> tuple[Delete, ...]:
    """One purge statement per table, for the dialect."""
    client_expiry = clients.c.client_secret_expires_at
    return (
        _purge(pending_authorizations, _pending.expires_at, _pending.expires_at <= bindparam("now"), postgres=postgres),
        _purge(authorization_codes, _codes.expires_at, _codes.expires_at <= bindparam("now"), postgres=postgres),
        _purge(access_tokens, _access.expires_at, _access.expires_at <= bindparam("now"), postgres=postgres),
        _purge(refresh_tokens, _refresh.expires_at, _refresh.expires_at <= bindparam("now"), postgres=postgres),
        # RFC 7591 §3.2.1: a client whose secret expired goes too (0 means never), as in the memory model.
        _purge(clients, client_expiry, and_(client_expiry > 0, client_expiry <= bindparam("now")), postgres=postgres),
        # Revoked or not: by its expires_at no credential of the grant can be live.
        _purge(grants, _grants.expires_at, _grants.expires_at <= bindparam("now"), postgres=postgres),
        # A key still signing has no expires_at (NULL <= now is not true): never purged.
        _purge(signing_keys, _keys.expires_at, _keys.expires_at <= bindparam("now"), postgres=postgres),
        # After its expiry the assertion is refused anyway: its jti need not be remembered.
        _purge(assertion_jtis, _jtis.expires_at, _jtis.expires_at <= bindparam("now"), postgres=postgres),
        # RFC 8628: past its expiry a device code is refused whatever its state (a replay too).
        _purge(device_authorizations, device_authorizations.c.expires_at,
               device_authorizations.c.expires_at <= bindparam("now"), postgres=postgres),
    )


PURGE = purge_statements(postgres=False)
PURGE_POSTGRES = purge_statements(postgres=True)
