"""The SQL model's folds: two verbs in one atomic step (``OAuthServerModel``'s module docstring).

On Postgres each is ONE statement (``fold_statements.py``), one round trip where the two verbs
take two. On SQLite each is one group-committed write that starts with its deciding statement
(``guarded``: nothing of it is stored when that statement touches no row), as the verbs it folds
are; there it saves a queued write, not a round trip.
"""

from __future__ import annotations

from typing import Any

from oauth_server.model.sqlalchemy.failures import storage
from oauth_server.model.sqlalchemy.fold_statements import (
    APPROVE_PENDING_POSTGRES,
    ROTATE_AND_ISSUE_USED_POSTGRES,
    SAVE_ACCESS_USED_POSTGRES,
    SAVE_PAIR_USED_POSTGRES,
)
from oauth_server.model.sqlalchemy.runner import SQLRunner
from oauth_server.model.sqlalchemy.statements import (
    INSERT,
    RECORD_GRANT_USE,
    ROTATE_REFRESH_TOKEN,
    SAVE_ACCESS_IF_LIVE,
    TAKE_PENDING,
)
from oauth_server.model.sqlalchemy.tables import (
    access_tokens,
    authorization_codes,
    grants,
    prefixed,
    refresh_tokens,
    to_row,
)
from oauth_server.records import AccessToken, AuthorizationCode, Grant, RefreshToken

Step = tuple[Any, dict[str, Any], tuple[str, ...]]


class FoldVerbs(SQLRunner):
    """The approval, and an issuance that records the grant's use."""

    @storage
    async def approve_pending_authorization(self, request_digest: str, code: AuthorizationCode,
                                            grant: Grant) -> bool:
        if code.grant_id != grant.grant_id:
            raise ValueError("the code must belong to the grant saved with it")
        if self._postgres:
            return await self._count(APPROVE_PENDING_POSTGRES, {
                "key": request_digest, **prefixed("g_", grant), **prefixed("c_", code)}) == 1
        grant_row, code_row = to_row(grant), to_row(code)
        return await self._write_guarded([(TAKE_PENDING, {"key": request_digest}, ()),
                                          (INSERT[grants], grant_row, tuple(grant_row)),
                                          (INSERT[authorization_codes], code_row, tuple(code_row))])

    @storage
    async def save_tokens_recording_use(self, access: AccessToken, refresh: RefreshToken | None, now: int) -> bool:
        params = {"grant": access.grant_id, "now": now, **prefixed("a_", access)}
        if refresh is not None:
            params.update(prefixed("r_", refresh))
        if self._postgres:
            statement = SAVE_ACCESS_USED_POSTGRES if refresh is None else SAVE_PAIR_USED_POSTGRES
            return await self._count(statement, params) == 1
        steps: list[Step] = [(SAVE_ACCESS_IF_LIVE, params, ())]
        if refresh is not None:
            row = to_row(refresh)
            steps.append((INSERT[refresh_tokens], row, tuple(row)))
        return await self._write_guarded([*steps, (RECORD_GRANT_USE, params, ())])

    @storage
    async def rotate_refresh_token_recording_use(
        self, old_digest: str, now: int, access: AccessToken, refresh: RefreshToken, *,
        reuse_after: int | None = None,
    ) -> bool:
        params = {"key": old_digest, "now": now, "grant": refresh.grant_id, "reuse_after": reuse_after}
        if self._postgres:
            return await self._count(ROTATE_AND_ISSUE_USED_POSTGRES, {
                **params, **prefixed("a_", access), **prefixed("r_", refresh)}) == 1
        minted = to_row(access), to_row(refresh)
        return await self._write_guarded([(ROTATE_REFRESH_TOKEN, params, ()),
                                          (INSERT[access_tokens], minted[0], tuple(minted[0])),
                                          (INSERT[refresh_tokens], minted[1], tuple(minted[1])),
                                          (RECORD_GRANT_USE, params, ())])

    async def _write_guarded(self, steps: list[Step]) -> bool:
        """SQLite: ``steps`` as one write that starts with a write (``save_tokens`` says why);
        nothing of it is stored when the first statement touches no row."""
        if self._lite is not None:
            return await self._lite.write(steps, guarded=True) is not None
        async with self._transactional.begin() as conn:
            first = await conn.execute(steps[0][0], steps[0][1])
            if not (first.returns_rows and first.first() is not None) and first.rowcount != 1:
                await conn.rollback()
                return False
            for statement, params, _ in steps[1:]:
                await conn.execute(statement, params)
        return True
