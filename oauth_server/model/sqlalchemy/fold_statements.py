"""The folds' statements (``OAuthServerModel.approve_pending_authorization``,
``save_tokens_recording_use``, ``rotate_refresh_token_recording_use``): each does what two verbs
do, on Postgres in ONE statement, so one round trip instead of two. Conventions and the
ordering of revocation against issuance are ``statements.py``'s; what differs is said here.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, bindparam, exists, func, select, update

from oauth_server.model.sqlalchemy.statements import (
    _FIRST_ROTATION,
    _ROTATABLE,
    LIVE_GRANT,
    TAKE_PENDING,
    _insert_from,
)
from oauth_server.model.sqlalchemy.tables import (
    access_tokens,
    authorization_codes,
    grants,
    pending_authorizations,
    refresh_tokens,
)

_refresh, _grants, _pending = refresh_tokens.c, grants.c, pending_authorizations.c

#: The approval: take the pending request, and only if this statement took it store the grant and
#: its first code (``g_``/``c_`` columns). Of concurrent decisions one deletes the row; the others'
#: DELETE, after waiting for its commit, finds none (EvalPlanQual), so they insert nothing.
_TAKEN = TAKE_PENDING.returning(_pending.request_digest).cte("taken")
APPROVE_PENDING_POSTGRES = (
    select(func.count()).select_from(_TAKEN)
    .add_cte(_insert_from(grants, "g_", _TAKEN).cte("new_grant"),
             _insert_from(authorization_codes, "c_", _TAKEN).cte("new_code"))
)

# The same issuances recording the grant's use (``last_used_at``, never moved back) in the same
# statement. Storing the pair: the grant row's UPDATE is the live check itself; its row lock
# (FOR NO KEY UPDATE) conflicts with the revocation's as FOR SHARE does, and a revoked grant
# matches no row, so the INSERTs selecting from it store nothing. Rotating: the grant row is read
# FOR NO KEY UPDATE (not FOR SHARE: two rotations holding shares could not both upgrade to the
# UPDATE without a deadlock), and its UPDATE runs only if the rotation did.
_LAST_USED = func.greatest(_grants.last_used_at, bindparam("now", type_=BigInteger))
_USED_GRANT = (
    update(grants).where(_grants.grant_id == bindparam("grant"), _grants.revoked_at.is_(None))
    .values(last_used_at=_LAST_USED).returning(_grants.grant_id).cte("used_grant")
)
SAVE_ACCESS_USED_POSTGRES = (
    select(func.count()).select_from(_USED_GRANT)
    .add_cte(_insert_from(access_tokens, "a_", _USED_GRANT).cte("new_access"))
)
SAVE_PAIR_USED_POSTGRES = (
    select(func.count()).select_from(_USED_GRANT)
    .add_cte(_insert_from(access_tokens, "a_", _USED_GRANT).cte("new_access"),
             _insert_from(refresh_tokens, "r_", _USED_GRANT).cte("new_refresh"))
)
_LIVE_GRANT_HELD = LIVE_GRANT.with_for_update(key_share=True).cte("held_grant")
_ROTATED_HELD = (
    update(refresh_tokens)
    .where(_refresh.token_digest == bindparam("key"), _ROTATABLE, _refresh.grant_id == _LIVE_GRANT_HELD.c.grant_id)
    .values(rotated_at=_FIRST_ROTATION)
    .returning(_refresh.token_digest)
    .cte("rotated")
)
ROTATE_AND_ISSUE_USED_POSTGRES = (
    select(func.count()).select_from(_ROTATED_HELD)
    .add_cte(_insert_from(access_tokens, "a_", _ROTATED_HELD).cte("new_access"),
             _insert_from(refresh_tokens, "r_", _ROTATED_HELD).cte("new_refresh"),
             update(grants).where(_grants.grant_id == bindparam("grant"), exists(select(_ROTATED_HELD.c.token_digest)))
             .values(last_used_at=_LAST_USED).cte("used_grant"))
)
