"""The SQL model's RFC 8628 verbs (``OAuthServerModel``'s device authorization methods); the
statements and how each race is decided are in ``device_statements.py``."""

from __future__ import annotations

from oauth_server.model.sqlalchemy.device_statements import (
    APPROVE_DEVICE,
    APPROVE_DEVICE_POSTGRES,
    CONSUME_DEVICE,
    DENY_DEVICE,
    GET_DEVICE,
    POLL_ON_TIME,
    POLL_TOO_SOON,
    SAVE_DEVICE,
    SAVE_DEVICE_POSTGRES,
)
from oauth_server.model.sqlalchemy.failures import read, storage
from oauth_server.model.sqlalchemy.runner import SQLRunner
from oauth_server.model.sqlalchemy.statements import INSERT
from oauth_server.model.sqlalchemy.tables import grants, to_row
from oauth_server.records import DeviceAuthorization, Grant


class DeviceVerbs(SQLRunner):
    """Save, look up, decide, poll and consume device authorizations."""

    @storage
    async def save_device_authorization(self, record: DeviceAuthorization) -> bool:
        row = to_row(record)
        statement = SAVE_DEVICE_POSTGRES if self._postgres else SAVE_DEVICE
        return await self._run(statement, row, tuple(row)) == 1

    @read
    async def get_device_authorization(self, user_code_digest: str) -> DeviceAuthorization | None:
        row = await self._one(GET_DEVICE, {"key": user_code_digest})
        return None if row is None else DeviceAuthorization(**row)

    @storage
    async def approve_device_authorization(self, user_code_digest: str, now: int, grant: Grant) -> bool:
        params = {"key": user_code_digest, "now": now, **{f"g_{name}": value for name, value in to_row(grant).items()}}
        if self._postgres:
            return await self._count(APPROVE_DEVICE_POSTGRES, params) == 1
        async with self._transactional.begin() as conn:
            if (await conn.execute(APPROVE_DEVICE, params)).first() is None:
                await conn.rollback()
                return False
            await conn.execute(INSERT[grants], to_row(grant))
        return True

    @storage
    async def deny_device_authorization(self, user_code_digest: str, now: int) -> bool:
        return await self._run(DENY_DEVICE, {"key": user_code_digest, "now": now}) == 1

    @storage
    async def poll_device_authorization(self, device_code_digest: str,
                                        now: int) -> tuple[DeviceAuthorization, bool] | None:
        params = {"key": device_code_digest, "now": now}
        row = await self._one(POLL_ON_TIME, params)
        if row is not None:
            return DeviceAuthorization(**row), True
        row = await self._one(POLL_TOO_SOON, params)
        return None if row is None else (DeviceAuthorization(**row), False)

    @storage
    async def consume_device_authorization(self, device_code_digest: str, now: int) -> DeviceAuthorization | None:
        row = await self._one(CONSUME_DEVICE, {"key": device_code_digest, "now": now})
        return None if row is None else DeviceAuthorization(**row)
