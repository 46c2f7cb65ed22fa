"""Initial schema: clients, pending authorizations, codes, access and refresh tokens.

Written out in full rather than imported from ``tables.py``: a revision is a snapshot and must
not change when the code does. JSON-encoded tuples (``StringTuple`` in tables.py) are plain
``TEXT`` here. ``tests/migrations`` checks that this matches tables.py exactly.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DIGEST = sa.String(length=64)


def _grant_columns() -> list[sa.Column[object]]:
    """What every grant-bound credential carries."""
    return [
        sa.Column("grant_id", sa.String(length=64), nullable=False),
        sa.Column("client_id", sa.Text(), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "oauth_clients",
        sa.Column("client_id", sa.Text(), nullable=False),
        sa.Column("redirect_uris", sa.Text(), nullable=False),
        sa.Column("token_endpoint_auth_method", sa.String(length=64), nullable=False),
        sa.Column("grant_types", sa.Text(), nullable=False),
        sa.Column("response_types", sa.Text(), nullable=False),
        sa.Column("client_id_issued_at", sa.BigInteger(), nullable=False),
        sa.Column("client_secret_digest", DIGEST, nullable=True),
        sa.Column("client_secret_expires_at", sa.BigInteger(), nullable=True),
        sa.Column("scope", sa.Text(), nullable=True),
        sa.Column("client_name", sa.Text(), nullable=True),
        sa.Column("client_uri", sa.Text(), nullable=True),
        sa.Column("logo_uri", sa.Text(), nullable=True),
        sa.Column("tos_uri", sa.Text(), nullable=True),
        sa.Column("policy_uri", sa.Text(), nullable=True),
        sa.Column("contacts", sa.Text(), nullable=False),
        sa.Column("software_id", sa.Text(), nullable=True),
        sa.Column("software_version", sa.Text(), nullable=True),
        sa.Column("application_type", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("client_id", name=op.f("pk_oauth_clients")),
    )
    op.create_index(op.f("ix_oauth_clients_client_secret_expires_at"), "oauth_clients",
                    ["client_secret_expires_at"])

    op.create_table(
        "oauth_pending_authorizations",
        sa.Column("request_digest", DIGEST, nullable=False),
        sa.Column("client_id", sa.Text(), nullable=False),
        sa.Column("redirect_uri", sa.Text(), nullable=False),
        sa.Column("redirect_uri_provided_explicitly", sa.Boolean(), nullable=False),
        sa.Column("scopes", sa.Text(), nullable=False),
        sa.Column("code_challenge", sa.String(length=128), nullable=False),
        sa.Column("resource", sa.Text(), nullable=False),
        sa.Column("state", sa.Text(), nullable=True),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
        sa.Column("browser_digest", DIGEST, nullable=True),
        sa.PrimaryKeyConstraint("request_digest", name=op.f("pk_oauth_pending_authorizations")),
    )
    op.create_index(op.f("ix_oauth_pending_authorizations_expires_at"), "oauth_pending_authorizations",
                    ["expires_at"])

    op.create_table(
        "oauth_authorization_codes",
        sa.Column("code_digest", DIGEST, nullable=False),
        *_grant_columns(),
        sa.Column("redirect_uri", sa.Text(), nullable=False),
        sa.Column("redirect_uri_provided_explicitly", sa.Boolean(), nullable=False),
        sa.Column("scopes", sa.Text(), nullable=False),
        sa.Column("code_challenge", sa.String(length=128), nullable=False),
        sa.Column("resource", sa.Text(), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
        sa.Column("consumed_at", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("code_digest", name=op.f("pk_oauth_authorization_codes")),
    )

    op.create_table(
        "oauth_access_tokens",
        sa.Column("token_digest", DIGEST, nullable=False),
        *_grant_columns(),
        sa.Column("scopes", sa.Text(), nullable=False),
        sa.Column("resource", sa.Text(), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("token_digest", name=op.f("pk_oauth_access_tokens")),
    )

    op.create_table(
        "oauth_refresh_tokens",
        sa.Column("token_digest", DIGEST, nullable=False),
        *_grant_columns(),
        sa.Column("scopes", sa.Text(), nullable=False),
        sa.Column("resource", sa.Text(), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
        sa.Column("grant_expires_at", sa.BigInteger(), nullable=False),
        sa.Column("rotated_at", sa.BigInteger(), nullable=True),
        sa.Column("granted_scopes", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("token_digest", name=op.f("pk_oauth_refresh_tokens")),
    )

    # Grant-bound credentials: grant_id for revoke_grant, expires_at for purge_expired.
    for table in ("oauth_authorization_codes", "oauth_access_tokens", "oauth_refresh_tokens"):
        op.create_index(op.f(f"ix_{table}_grant_id"), table, ["grant_id"])
        op.create_index(op.f(f"ix_{table}_expires_at"), table, ["expires_at"])


def downgrade() -> None:
    # Dropping a table drops its indexes.
    for table in ("oauth_refresh_tokens", "oauth_access_tokens", "oauth_authorization_codes",
                  "oauth_pending_authorizations", "oauth_clients"):
        op.drop_table(table)
