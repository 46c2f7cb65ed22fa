"""Grants: ``last_used_at``, when tokens were last issued in the grant (a user's connected apps).

``oauth_grants`` gains one nullable column. ``record_grant_use`` sets it after a code is redeemed
or a refresh token rotates, never on a bearer check (so verifying a token stays a read). Existing
grants keep working unchanged: NULL is "no use recorded", which is what a grant used before this
revision has. Not indexed: it is only shown, never searched. The downgrade drops it; a server
from before this revision never reads it.

Revision ID: 0007
Revises: 0004
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("oauth_grants", sa.Column("last_used_at", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    op.drop_column("oauth_grants", "last_used_at")
