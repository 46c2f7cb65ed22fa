"""Audit events: the optional SQL sink's table (``oauth_server.audit.sql.SQLAuditSink``).

``oauth_audit_events`` holds one row per security-relevant fact the server emitted (client
registered, tokens issued, refresh reuse detected, ...): an integer key in insertion order, the
fields every event has (``time``, ``client_id``, ``subject``, ``grant_id``) as columns, each
indexed but ``kind``, and the kind's own fields as a JSON object in ``details``. No credential
is ever written (events carry digest prefixes at most). ``time`` is indexed for the retention
purge (``audit_retention``). A new table: nothing to backfill; a server that does not use the
SQL sink leaves it empty.

Written out in full rather than imported from ``tables.py``, as 0001 is.

Revision ID: 0006
Revises: 0004
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_INDEXED = ("time", "client_id", "subject", "grant_id")


def upgrade() -> None:
    op.create_table(
        "oauth_audit_events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("time", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("client_id", sa.Text(), nullable=True),
        sa.Column("subject", sa.Text(), nullable=True),
        sa.Column("grant_id", sa.String(length=64), nullable=True),
        sa.Column("details", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_oauth_audit_events")),
    )
    for column in _INDEXED:
        op.create_index(op.f(f"ix_oauth_audit_events_{column}"), "oauth_audit_events", [column])


def downgrade() -> None:
    # Dropping a table drops its indexes. The recorded events go with it: a server from before
    # this revision has no SQL sink to read or purge them.
    op.drop_table("oauth_audit_events")
