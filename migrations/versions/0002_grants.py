"""Grants: one row per authorization, so that a revocation wins over a concurrent issuance.

``oauth_grants`` holds each grant a user approved, and ``revoked_at`` once a replayed code, a
reused refresh token or /revoke ends it. Issuance stores tokens only while the row is there and
not revoked, in the same statement (RFC 9700 §4.5, §4.14.2; see
``oauth_server/model/sqlalchemy/statements.py``). Indexes: ``expires_at`` for
``purge_expired``; ``subject`` and ``client_id`` to list a user's or a client's grants.

The upgrade backfills a grant for every ``grant_id`` that already has a code or token, so those
keep working: without a row, a grant's refresh tokens would no longer rotate. Its expiry is the
latest moment anything could be issued for it: the refresh tokens' absolute end, an access
token's expiry, or, for a code not yet redeemed, the code's expiry plus the default absolute
refresh lifetime and access token lifetime (the backfill cannot know the server's settings).
Its scopes and resource are taken from one of its credentials: they describe the grant (for
listings); issuance reads the scopes the refresh token carries.

Written out in full rather than imported from ``tables.py``, as 0001 is.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: OAuthServerSettings' defaults: refresh_token_absolute_lifetime + access_token_lifetime.
_CODE_GRANT_LIFETIME = 7_776_000 + 3600

_BACKFILL = sa.text(
    "INSERT INTO oauth_grants (grant_id, client_id, subject, scopes, resource, created_at, expires_at)"
    " SELECT grant_id, MIN(client_id), MIN(subject), MIN(scopes), MIN(resource), :now, MAX(expires_at)"
    " FROM ("
    "  SELECT grant_id, client_id, subject, granted_scopes AS scopes, resource, grant_expires_at AS expires_at"
    "  FROM oauth_refresh_tokens"
    "  UNION ALL SELECT grant_id, client_id, subject, scopes, resource, expires_at FROM oauth_access_tokens"
    "  UNION ALL SELECT grant_id, client_id, subject, scopes, resource, expires_at + :code_grant_lifetime"
    "  FROM oauth_authorization_codes"
    " ) AS credentials GROUP BY grant_id"
)


def upgrade() -> None:
    op.create_table(
        "oauth_grants",
        sa.Column("grant_id", sa.String(length=64), nullable=False),
        sa.Column("client_id", sa.Text(), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("scopes", sa.Text(), nullable=False),
        sa.Column("resource", sa.Text(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
        sa.Column("revoked_at", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("grant_id", name=op.f("pk_oauth_grants")),
    )
    for column in ("client_id", "subject", "expires_at"):
        op.create_index(op.f(f"ix_oauth_grants_{column}"), "oauth_grants", [column])
    op.execute(_BACKFILL.bindparams(sa.bindparam("now", int(time.time()), type_=sa.BigInteger),
                                    sa.bindparam("code_grant_lifetime", _CODE_GRANT_LIFETIME, type_=sa.BigInteger)))


def downgrade() -> None:
    # Dropping a table drops its indexes. Revoked grants have no credentials left to protect.
    op.drop_table("oauth_grants")
