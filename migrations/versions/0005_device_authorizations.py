"""Device authorizations (RFC 8628): ``oauth_device_authorizations``.

One row per device authorization request, from ``/device_authorization`` until it expires:
the device code's digest is the primary key (each poll is one primary-key UPDATE), the user
code's digest is unique (the verification page looks it up; two fresh codes that collide are
refused by the database and the server draws again), ``client_id`` is indexed (deleting a client
removes its requests by index) and ``expires_at`` too (``purge_expired``). A new table: nothing
to backfill, and a server from before this revision simply has no device grant.

Written out in full rather than imported from ``tables.py``, as 0001 is.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-10
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "oauth_device_authorizations",
        sa.Column("device_code_digest", sa.String(length=64), nullable=False),
        sa.Column("user_code_digest", sa.String(length=64), nullable=False),
        sa.Column("client_id", sa.Text(), nullable=False),
        sa.Column("scopes", sa.Text(), nullable=False),
        sa.Column("resource", sa.Text(), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
        sa.Column("poll_interval", sa.Integer(), nullable=False),
        sa.Column("last_polled_at", sa.BigInteger(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("subject", sa.Text(), nullable=True),
        sa.Column("grant_id", sa.String(length=64), nullable=True),
        sa.Column("consumed_at", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("device_code_digest", name=op.f("pk_oauth_device_authorizations")),
        sa.UniqueConstraint("user_code_digest", name=op.f("uq_oauth_device_authorizations_user_code_digest")),
    )
    op.create_index(op.f("ix_oauth_device_authorizations_client_id"), "oauth_device_authorizations",
                    ["client_id"])
    op.create_index(op.f("ix_oauth_device_authorizations_expires_at"), "oauth_device_authorizations",
                    ["expires_at"])


def downgrade() -> None:
    # Dropping the table drops its indexes. Pending device requests are lost; their devices
    # get invalid_grant and start again, which a server from before this revision cannot serve.
    op.drop_table("oauth_device_authorizations")
