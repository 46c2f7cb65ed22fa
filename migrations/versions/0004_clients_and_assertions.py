"""Clients and assertions: private_key_jwt keys, RFC 7592 management, metadata documents, jtis.

``oauth_clients`` gains five nullable columns: ``jwks`` and ``jwks_uri`` (RFC 7591 §2, the keys
of a ``private_key_jwt`` client, RFC 7523), ``token_endpoint_auth_signing_alg`` (OpenID Connect
Dynamic Client Registration 1.0 §2), ``registration_access_token_digest`` (RFC 7592 §3; a
digest, as every credential) and ``metadata_document_expires_at`` (a client known by its client
ID metadata document: when to fetch it again; NULL for a registered client). Existing clients keep working unchanged: every
new column is NULL for them, which is what a registered client without these has.

``oauth_assertion_jtis`` remembers each client assertion's ``jti`` until the assertion expires
(RFC 7523 §3 item 7: single use); its primary key ``(client_id, jti)`` makes the use atomic
across processes, and ``expires_at`` is indexed for ``purge_expired``. A new table: nothing to
backfill. ``oauth_pending_authorizations`` gets an index on ``client_id``, so that deleting a
client (RFC 7592 §2.3) removes its pending requests by index.

Written out in full rather than imported from ``tables.py``, as 0001 is.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-08
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_CLIENT_COLUMNS = ("jwks", "jwks_uri", "registration_access_token_digest", "metadata_document_expires_at",
                   "token_endpoint_auth_signing_alg")


def upgrade() -> None:
    op.add_column("oauth_clients", sa.Column("jwks", sa.Text(), nullable=True))
    op.add_column("oauth_clients", sa.Column("jwks_uri", sa.Text(), nullable=True))
    op.add_column("oauth_clients", sa.Column("registration_access_token_digest", sa.String(length=64),
                                             nullable=True))
    op.add_column("oauth_clients", sa.Column("metadata_document_expires_at", sa.BigInteger(), nullable=True))
    op.add_column("oauth_clients", sa.Column("token_endpoint_auth_signing_alg", sa.Text(), nullable=True))

    op.create_table(
        "oauth_assertion_jtis",
        sa.Column("client_id", sa.Text(), nullable=False),
        sa.Column("jti", sa.Text(), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("client_id", "jti", name=op.f("pk_oauth_assertion_jtis")),
    )
    op.create_index(op.f("ix_oauth_assertion_jtis_expires_at"), "oauth_assertion_jtis", ["expires_at"])
    op.create_index(op.f("ix_oauth_pending_authorizations_client_id"), "oauth_pending_authorizations",
                    ["client_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_oauth_pending_authorizations_client_id"), table_name="oauth_pending_authorizations")
    # Dropping a table drops its index. Without it a replayed assertion is no longer recognised,
    # but a server from before this revision does not accept assertions at all.
    op.drop_table("oauth_assertion_jtis")
    # Metadata-document clients are a cache a server from before this revision cannot refresh:
    # kept, they would be served forever as if registered. They go; registered clients stay, and
    # lose only what that server does not use.
    op.execute(sa.text("DELETE FROM oauth_clients WHERE metadata_document_expires_at IS NOT NULL"))
    for column in reversed(_CLIENT_COLUMNS):
        op.drop_column("oauth_clients", column)
