"""What the interop tests share: installing their tools, and skipping only where that is allowed.

Each test installs what it needs itself (``npm ci`` from a committed lock file, Debian's
chromium), so a fresh machine runs them with no set-up. Outside CI a tool that cannot be
installed skips the test; in CI (``CI`` set) it fails it, so a green CI means they ran.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import subprocess
from pathlib import Path
from typing import NoReturn

import pytest

HERE = Path(__file__).resolve().parent
#: Screenshots and other test artifacts: ``TEST_ARTIFACTS`` if set (CI uploads it), else the
#: gitignored ``tests/artifacts/``.
ARTIFACTS = Path(os.environ.get("TEST_ARTIFACTS") or HERE.parent / "artifacts")
_STAMP = ".oauth_server-lock-sha256"


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def unavailable(reason: str) -> NoReturn:
    """Skip outside CI; fail in CI, where every interop test must run."""
    if in_ci():
        pytest.fail(f"required interop tool unavailable in CI: {reason}")
    pytest.skip(reason)


def npm_ci(fixture: Path) -> Path:
    """``npm ci`` in ``fixture`` unless its node_modules already match the lock file.

    The stamp (the lock file's digest) makes repeated runs instant; ``npm ci`` itself always
    wipes node_modules and reinstalls, which takes seconds to minutes.
    """
    npm = shutil.which("npm")
    if npm is None:
        unavailable("npm is not installed")
    lock = fixture / "package-lock.json"
    digest = hashlib.sha256(lock.read_bytes()).hexdigest()
    stamp = fixture / "node_modules" / _STAMP
    if stamp.exists() and stamp.read_text() == digest:
        return fixture / "node_modules"
    result = subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=fixture, capture_output=True,
                            text=True, timeout=600, check=False)
    if result.returncode != 0:
        unavailable(f"npm ci in {fixture.name} failed: {result.stderr[-2000:]}")
    stamp.write_text(digest)
    return fixture / "node_modules"


def node_major(node: str) -> int | None:
    try:
        out = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=30, check=False).stdout
    except OSError:
        return None
    return int(out.strip().lstrip("v").split(".")[0]) if out.startswith("v") else None


async def read_line_starting(stream: asyncio.StreamReader, prefix: str, seen: list[str], timeout: float = 90) -> str:
    """The first line of ``stream`` that starts with ``prefix`` (every line read goes to ``seen``)."""

    async def scan() -> str:
        while True:
            raw = await stream.readline()
            if not raw:
                raise AssertionError(f"output ended before a line starting with {prefix!r}:\n" + "".join(seen))
            line = raw.decode(errors="replace")
            seen.append(line)
            if line.startswith(prefix):
                return line.rstrip("\n")

    return await asyncio.wait_for(scan(), timeout)
