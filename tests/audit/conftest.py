"""An app whose server sends its audit events to a list the test reads."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from oauth_server import MemoryOAuthServerModel, OAuthServer
from oauth_server.audit import AuditEvent
from tests.conftest import ISSUER, build_app
from tests.fixtures.cimd.network import settings
from tests.helpers import FrozenClock


class Recorder:
    """An ``on_event`` hook that keeps every event."""

    def __init__(self) -> None:
        self.events: list[AuditEvent] = []

    def __call__(self, event: AuditEvent) -> None:
        self.events.append(event)

    @property
    def kinds(self) -> list[str]:
        return [event.kind for event in self.events]


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def audited(model: MemoryOAuthServerModel, clock: FrozenClock, recorder: Recorder) -> OAuthServer:
    return OAuthServer(model, settings(), clock=clock, on_event=recorder)


@pytest.fixture
async def http(audited: OAuthServer) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=build_app(audited))
    async with httpx.AsyncClient(transport=transport, base_url=ISSUER, headers={"x-test-user": "alice"}) as client:
        yield client
