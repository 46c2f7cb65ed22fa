"""The example server under uvicorn in the test's event loop, on a free port and a throwaway SQLite file."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

from example.server import create_app
from example.settings import ExampleSettings
from tests.flows.live import free_port, serve


def example_settings(tmp_path: Path, port: int, **overrides: Any) -> ExampleSettings:
    """Settings as ``from_env`` would build them for ``PORT=port``, on 127.0.0.1 (no IPv6 guess)."""
    base = ExampleSettings(
        port=port,
        public_url=f"http://127.0.0.1:{port}",
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'example.db'}",
    )
    return replace(base, **overrides)


@contextlib.asynccontextmanager
async def running_example(tmp_path: Path, **overrides: Any) -> AsyncIterator[str]:
    """``async with running_example(tmp_path) as base_url:`` serves the whole example app."""
    port = free_port()
    async with serve(create_app(example_settings(tmp_path, port, **overrides)), port) as base:
        yield base
