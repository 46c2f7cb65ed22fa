"""Fixtures: start the example server the way a user would, on a free port and a temp database."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.example.running import running_example

StartExample = Callable[..., contextlib.AbstractAsyncContextManager[str]]


@pytest.fixture
def start_example(tmp_path: Path) -> StartExample:
    """``async with start_example(**settings) as base_url:`` runs the example under uvicorn."""

    def start(**overrides: Any) -> contextlib.AbstractAsyncContextManager[str]:
        return running_example(tmp_path, **overrides)

    return start
