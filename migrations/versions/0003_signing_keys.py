"""Signing keys: the keys that sign JWT access tokens (RFC 9068), shared by every process.

``oauth_signing_keys`` holds each key the server generated: its public JWK (RFC 7517) and its
private key encrypted at rest (``keys.KeyCipher``; never in clear), when it starts signing, and,
once retired, until when it stays published. ``kid`` is the primary key, so a duplicate is
refused; ``retires_at`` is set once (``UPDATE ... WHERE retires_at IS NULL``), so two processes
rotating at once agree. Index: ``expires_at`` for ``purge_expired``. A new table: nothing to
backfill (servers with ``signing_keys`` in their settings keep their keys there).

Written out in full rather than imported from ``tables.py``, as 0001 is.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "oauth_signing_keys",
        sa.Column("kid", sa.Text(), nullable=False),
        sa.Column("algorithm", sa.String(length=16), nullable=False),
        sa.Column("public_jwk", sa.Text(), nullable=False),
        sa.Column("private_key", sa.Text(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("activates_at", sa.BigInteger(), nullable=False),
        sa.Column("retires_at", sa.BigInteger(), nullable=True),
        sa.Column("expires_at", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("kid", name=op.f("pk_oauth_signing_keys")),
    )
    op.create_index(op.f("ix_oauth_signing_keys_expires_at"), "oauth_signing_keys", ["expires_at"])


def downgrade() -> None:
    # Dropping a table drops its index. The keys go with it, and the JWTs they signed no longer
    # verify against this server's JWKS: a server from before this revision has no managed keys.
    op.drop_table("oauth_signing_keys")
