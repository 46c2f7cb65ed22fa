"""``migrate``, ``current``, ``purge``, the exit codes of a bad or unready database, and the console script."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from oauth_server import migrate
from oauth_server.cli import cli, database
from tests.cli.conftest import invoke, seed_grants

ROOT = Path(__file__).resolve().parents[2]


def test_migrate_and_current_json(url: str) -> None:
    result = invoke("current", "--database-url", url, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"revisions": list(migrate.heads()), "heads": list(migrate.heads()),
                                         "up_to_date": True}
    again = invoke("migrate", "--database-url", url, "--json")
    assert again.exit_code == 0 and json.loads(again.stdout) == {"revisions": list(migrate.heads())}


def test_migrate_sql_prints_the_ddl_without_connecting(tmp_path: Path) -> None:
    result = invoke("migrate", "--sql", "--database-url", f"sqlite+aiosqlite:///{tmp_path / 'never.db'}")
    assert result.exit_code == 0, result.output
    assert "CREATE TABLE oauth_clients" in result.stdout
    assert not (tmp_path / "never.db").exists()


def test_missing_sqlite_file_is_3_with_the_hint(sqlite_url: str) -> None:
    result = invoke("clients", "list", "--database-url", sqlite_url)
    assert result.exit_code == 3
    assert "run oauth-server migrate" in result.stderr and "Traceback" not in result.output


def test_unmigrated_postgres_is_3_with_the_hint(empty_postgres_url: str) -> None:
    for args in (("clients", "list"), ("current",), ("keys", "list"), ("grants", "list")):
        result = invoke(*args, "--database-url", empty_postgres_url)
        assert result.exit_code == 3, result.output
        assert "has no oauth_server tables: run oauth-server migrate" in result.stderr


def test_bad_or_missing_url_is_2() -> None:
    assert invoke("clients", "list", "--database-url", "not a url").exit_code == 2
    assert invoke("clients", "list", "--database-url", "postgresql://u@h/db").exit_code == 2  # not async
    missing = invoke("clients", "list")
    assert missing.exit_code == 2 and "DATABASE_URL" in missing.stderr


def test_url_from_the_environment(url: str) -> None:
    result = invoke("clients", "list", "--json", env={"DATABASE_URL": url})
    assert result.exit_code == 0 and json.loads(result.stdout) == []


def test_unreachable_database_is_3() -> None:
    result = invoke("clients", "list", "--database-url", "postgresql+asyncpg://postgres@127.0.0.1:9/x")
    assert result.exit_code == 3 and "unreachable" in result.stderr and "Traceback" not in result.output


def test_purge_removes_expired_records(url: str) -> None:
    seed_grants(url, ("alice", "c1", -5), ("bob", "c1", 3600))
    result = invoke("purge", "--database-url", url, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["purged"] >= 1 and result.stderr == ""
    left = json.loads(invoke("grants", "list", "--database-url", url, "--json", "--include-revoked").stdout)
    assert [grant["subject"] for grant in left] == ["bob"]
    human = invoke("purge", "--database-url", url)
    assert human.exit_code == 0 and human.stdout == "purged 0 expired records\n"


def test_installed_console_script_and_python_m() -> None:
    script = Path(sys.executable).parent / "oauth-server"
    assert script.exists(), "run: .venv/bin/pip install -e . --no-deps"
    for command in ([str(script), "--help"], [sys.executable, "-m", "oauth_server", "--help"]):
        done = subprocess.run(command, capture_output=True, text=True, timeout=60, cwd=ROOT, check=False)
        assert done.returncode == 0, done.stderr
        assert "Usage: oauth-server" in done.stdout and "migrate" in done.stdout
    failed = subprocess.run([str(script), "clients", "show", "x", "--database-url", "nope"],
                            capture_output=True, text=True, timeout=60, check=False)
    assert failed.returncode == 2 and failed.stderr.startswith("Error: not a database URL")


def test_readme_shows_the_real_help() -> None:
    """The README's "Operator command line" pastes each command's help: it must not drift."""
    readme = " ".join((ROOT / "README.md").read_text().split())  # wrapping follows the terminal's width
    for command in ("", "migrate", "current", "clients", "clients list", "clients show", "clients create",
                    "clients delete", "grants", "grants list", "grants revoke", "tokens revoke", "purge", "keys",
                    "keys list", "keys rotate", "token"):
        result = CliRunner().invoke(cli, [*command.split(), "--help"], terminal_width=80)  # as in a pipe
        shown = " ".join(result.stdout.replace("Usage: cli", "Usage: oauth-server").split())
        assert shown in readme, f"README lacks the current help of `oauth-server {command}`"


def test_empty_sqlite_file_is_3_with_the_hint(sqlite_url: str, tmp_path: Path) -> None:
    (tmp_path / "oauth.db").touch()
    result = invoke("grants", "list", "--database-url", sqlite_url)
    assert result.exit_code == 3 and "has no oauth_server tables: run oauth-server migrate" in result.stderr


def test_purge_reports_progress_on_a_backlog(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    assert invoke("migrate", "--database-url", sqlite_url).exit_code == 0
    seed_grants(sqlite_url, *[(f"user{i}", "c1", -5) for i in range(5)])
    monkeypatch.setattr(database, "PROGRESS_EVERY", 0.0)
    result = invoke("purge", "--database-url", sqlite_url, "--batch", "1", "--busy-share", "1")
    assert result.exit_code == 0, result.output
    assert "so far" in result.stderr and result.stdout.startswith("purged ")
    quiet = invoke("purge", "--database-url", sqlite_url, "--json")
    assert quiet.exit_code == 0 and quiet.stderr == "" and json.loads(quiet.stdout) == {"purged": 0}
    assert invoke("purge", "--database-url", sqlite_url, "--batch", "0").exit_code == 2
