"""Build the distributions once per session, and install the wheel alone in a fresh venv.

The build runs on a copy of the working tree (tracked and untracked files, not ignored ones),
so it sees what a commit would hold and never writes ``build/`` or egg-info into the checkout
other test runs are using. The venv is made with ``python -m venv`` (no system site-packages,
so the checkout's editable install cannot leak in) and filled from the package index; pip's
cache keeps a second run fast. Outside CI a failed install skips; in CI it fails.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.interop.support import unavailable

ROOT = Path(__file__).resolve().parents[2]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "packaging: builds and installs the wheel in a fresh venv (about a minute)")


@dataclass(frozen=True)
class Built:
    source: Path
    direct_wheel: Path
    sdist: Path
    sdist_wheel: Path


@dataclass(frozen=True)
class Installed:
    """A fresh venv holding the wheel; ``workdir`` is outside the repository, for every command."""

    venv: Path
    workdir: Path
    env: dict[str, str]

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"

    def run(self, *args: str, timeout: float = 120, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(self.python), *args], cwd=self.workdir, env={**self.env, **env},
                              capture_output=True, text=True, timeout=timeout, check=False)


def clean_env() -> dict[str, str]:
    """The environment minus anything that would point Python at the checkout or a database."""
    dropped = {"PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "VIRTUAL_ENV", "DATABASE_URL"}
    return {**{k: v for k, v in os.environ.items() if k not in dropped}, "PYTHONNOUSERSITE": "1"}


def copy_source(destination: Path) -> Path:
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            cwd=ROOT, capture_output=True, check=True, timeout=60).stdout
    for name in filter(None, listed.decode().split("\0")):
        source, target = ROOT / name, destination / name
        if not source.exists() and not source.is_symlink():
            continue  # deleted in the working tree, not yet in the index
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_symlink():
            target.symlink_to(os.readlink(source))
        else:
            shutil.copy2(source, target)
    return destination


def build(source: Path, outdir: Path, *args: str) -> None:
    result = subprocess.run([sys.executable, "-m", "build", *args, "--outdir", str(outdir), str(source)],
                            cwd=source, env=clean_env(), capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, f"python -m build {' '.join(args)} failed:\n{result.stdout[-3000:]}{result.stderr}"


def only(directory: Path, pattern: str) -> Path:
    (found,) = directory.glob(pattern)
    return found


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    """The wheel built directly, the sdist, and the wheel built from that sdist (what pip does)."""
    base = tmp_path_factory.mktemp("dist")
    source = copy_source(base / "src")
    build(source, base / "direct", "--wheel")
    build(source, base / "from_sdist")  # sdist first, then the wheel from the unpacked sdist
    return Built(source, only(base / "direct", "*.whl"), only(base / "from_sdist", "*.tar.gz"),
                 only(base / "from_sdist", "*.whl"))


@pytest.fixture(scope="session")
def installed(built: Built, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    """The sdist's wheel with the sqlite and postgres extras, and uvicorn, in a fresh venv."""
    base = tmp_path_factory.mktemp("installed")
    workdir = base / "work"
    workdir.mkdir()
    env = clean_env()
    subprocess.run([sys.executable, "-m", "venv", str(base / "venv")], cwd=workdir, env=env, check=True,
                   timeout=120)
    target = Installed(base / "venv", workdir, env)
    result = target.run("-m", "pip", "install", "--quiet", f"{built.sdist_wheel}[sqlite,postgres]", "uvicorn",
                        timeout=600)
    if result.returncode != 0:
        unavailable(f"pip install of the wheel failed:\n{result.stdout[-2000:]}{result.stderr[-3000:]}")
    yield target
