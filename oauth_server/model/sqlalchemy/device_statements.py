"""The SQL model's statements for RFC 8628 device authorizations (see ``statements.py`` for the
conventions: built once, named parameters, ``g_``-prefixed columns of a grant being inserted).

Every state change is one conditional ``UPDATE`` on one row, so the database decides each race:

* a decision (approve or deny) matches only ``status = 'pending' AND expires_at > :now``: of two
  concurrent decisions the second waits for the first's row lock (Postgres) or the write lock
  (SQLite), then no longer matches;
* a consumption matches only ``status = 'approved' AND consumed_at IS NULL AND expires_at > :now``,
  so a denied, pending, expired or used device code never yields a row, hence never tokens;
* a poll is on time only if ``last_polled_at + poll_interval <= :now``; the on-time UPDATE sets
  ``last_polled_at = :now``, so a concurrent poll at the same second re-checks the new row, fails
  the condition and takes the slow-down UPDATE instead (RFC 8628 §3.5).

Approving also inserts the grant the device's tokens will belong to: on Postgres one statement
(the INSERT selects from the UPDATE's RETURNING, so no approval, no grant), on SQLite a
transaction that starts with the UPDATE. Literal values are ``literal_column`` so that the asyncpg
path, which binds only named parameters, runs these statements too.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, String, bindparam, func, literal_column, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.elements import BindParameter

from oauth_server.model.base import SLOW_DOWN_SECONDS
from oauth_server.model.sqlalchemy.statements import _insert_from
from oauth_server.model.sqlalchemy.tables import device_authorizations, grants
from oauth_server.records import DEVICE_APPROVED, DEVICE_DENIED, DEVICE_PENDING

_dev = device_authorizations.c
_NOW = bindparam("now", type_=BigInteger)
_KEY: BindParameter[str] = bindparam("key")
_PENDING, _APPROVED, _DENIED = (literal_column(f"'{status}'", String)
                                for status in (DEVICE_PENDING, DEVICE_APPROVED, DEVICE_DENIED))

#: ``INSERT ... ON CONFLICT DO NOTHING``: a user code already stored inserts nothing (rowcount 0).
SAVE_DEVICE = sqlite.insert(device_authorizations).on_conflict_do_nothing()
SAVE_DEVICE_POSTGRES = postgresql.insert(device_authorizations).on_conflict_do_nothing()
GET_DEVICE = select(device_authorizations).where(_dev.user_code_digest == _KEY)

_DECIDABLE = (_dev.user_code_digest == _KEY, _dev.status == _PENDING, _dev.expires_at > _NOW)
DENY_DEVICE = update(device_authorizations).where(*_DECIDABLE).values(status=_DENIED)
#: SQLite: the first statement of the transaction that then inserts the grant.
APPROVE_DEVICE = (
    update(device_authorizations).where(*_DECIDABLE)
    .values(status=_APPROVED, subject=bindparam("g_subject", type_=grants.c.subject.type),
            scopes=bindparam("g_scopes", type_=grants.c.scopes.type),
            grant_id=bindparam("g_grant_id", type_=grants.c.grant_id.type))
    .returning(_dev.device_code_digest)
)
_APPROVED_ROW = APPROVE_DEVICE.cte("approved")
APPROVE_DEVICE_POSTGRES = (
    select(func.count()).select_from(_APPROVED_ROW)
    .add_cte(_insert_from(grants, "g_", _APPROVED_ROW).cte("new_grant"))
)

POLL_ON_TIME = (
    update(device_authorizations)
    .where(_dev.device_code_digest == _KEY,
           or_(_dev.last_polled_at.is_(None), _dev.last_polled_at + _dev.poll_interval <= _NOW))
    .values(last_polled_at=_NOW)
    .returning(*_dev)
)
POLL_TOO_SOON = (
    update(device_authorizations).where(_dev.device_code_digest == _KEY)
    .values(last_polled_at=_NOW, poll_interval=_dev.poll_interval + literal_column(str(SLOW_DOWN_SECONDS)))
    .returning(*_dev)
)
CONSUME_DEVICE = (
    update(device_authorizations)
    .where(_dev.device_code_digest == _KEY, _dev.status == _APPROVED, _dev.consumed_at.is_(None),
           _dev.expires_at > _NOW)
    .values(consumed_at=_NOW)
    .returning(*_dev)
)
