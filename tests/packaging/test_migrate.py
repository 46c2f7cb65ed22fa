"""``oauth_server.migrate`` in this checkout: the functions, and the command's answers to bad input.

test_wheel.py runs the same command from an installed wheel; here it runs in process, fast.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from oauth_server import migrate
from tests.packaging.conftest import ROOT


def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'migrated.db'}"


def test_a_checkout_migrates_with_the_repository_migrations() -> None:
    assert migrate.script_location() == ROOT / "migrations"
    config = migrate.alembic_config("sqlite+aiosqlite:///x.db")
    assert config.get_main_option("script_location") == str(ROOT / "migrations")
    assert config.cmd_opts is not None and config.cmd_opts.x == ["url=sqlite+aiosqlite:///x.db"]


def test_upgrade_then_current_is_head(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = sqlite_url(tmp_path)
    assert migrate.current(url) == ()
    migrate.upgrade(url)
    assert migrate.current(url) == migrate.heads()
    assert migrate.main(["current", "--url", url]) == 0
    assert capsys.readouterr().out.split("\n")[:-1] == [f"{head} (head)" for head in migrate.heads()]


def test_the_url_flag_wins_over_database_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "sqlite+aiosqlite:////nonexistent/directory/never.db")
    url = sqlite_url(tmp_path)
    assert migrate.main(["upgrade", "--url", url]) == 0
    assert migrate.current(url) == migrate.heads()


def test_sql_prints_the_ddl_without_opening_the_database(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    """Offline, any dialect will do: the DDL is rendered, nothing is connected to."""
    assert migrate.main(["upgrade", "--sql", "--url", f"sqlite:///{tmp_path / 'never-opened.db'}"]) == 0
    out = capfd.readouterr().out
    assert "CREATE TABLE oauth_clients" in out and "CREATE TABLE oauth_server_alembic_version" in out
    assert not (tmp_path / "never-opened.db").exists()


@pytest.mark.parametrize(("url", "message"), [
    (None, "no database URL"),
    ("not a url", "not a database URL"),
    ("nosuchdb+driver://host/db", "unknown database dialect or driver 'nosuchdb+driver'"),
    ("postgresql://user@host/db", "use postgresql+asyncpg://"),
    ("sqlite:///file.db", "use sqlite+aiosqlite://"),
])
def test_a_missing_or_bad_url_is_status_2_with_a_message(
    url: str | None, message: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    assert migrate.main(["upgrade", *(["--url", url] if url else [])]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err


def test_an_unreachable_database_is_status_1_without_the_password(capsys: pytest.CaptureFixture[str]) -> None:
    assert migrate.main(["current", "--url", "postgresql+asyncpg://user:s3cret@127.0.0.1:1/db"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: current failed on postgresql+asyncpg://user:***@127.0.0.1:1/db")
    assert "s3cret" not in err
