"""A pip install is a working server: the wheel alone serves the README's app and creates its tables.

design.md: migrations work "from the installed wheel" too. The wheel is installed in a fresh
venv outside the repository (``conftest.py``); every command runs there, on the venv's
``oauth_server``, never the checkout's.
"""

from __future__ import annotations

import re
import subprocess
import tarfile
import time
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from alembic.script import ScriptDirectory

from tests.flows.live import free_port
from tests.helpers import CHALLENGE, REDIRECT
from tests.model.conftest import fresh_postgres_database
from tests.packaging.conftest import Built, Installed

pytestmark = pytest.mark.packaging

ROUND_TRIP = """
import asyncio, sys
from oauth_server import Client
from oauth_server.model.sqlalchemy import SQLAlchemyOAuthServerModel

async def main(url: str) -> None:
    model = SQLAlchemyOAuthServerModel(url)
    client = Client(client_id="wheel-test", redirect_uris=("http://127.0.0.1:9/callback",), client_name="wheel")
    try:
        await model.save_client(client)
        assert await model.get_client("wheel-test") == client
    finally:
        await model.close()
    print("round trip ok")

asyncio.run(main(sys.argv[1]))
"""


def wheel_names(wheel: Path) -> set[str]:
    with zipfile.ZipFile(wheel) as archive:
        return {name for name in archive.namelist() if ".dist-info/" not in name}


def source_files(root: Path, directory: str, *patterns: str) -> set[str]:
    return {path.relative_to(root / directory).as_posix() for pattern in patterns
            for path in (root / directory).glob(pattern) if "__pycache__" not in path.parts}


def test_both_wheels_hold_every_module_the_migrations_and_the_templates(built: Built) -> None:
    """Built directly or from the sdist, the wheel holds the same files: every module of
    ``oauth_server/``, every migration (whatever revisions ``versions/`` holds) and every template."""
    direct, from_sdist = wheel_names(built.direct_wheel), wheel_names(built.sdist_wheel)
    assert direct == from_sdist
    modules = {f"oauth_server/{name}" for name in source_files(built.source, "oauth_server", "**/*.py")
               if not name.startswith(("migrations/", "templates/"))}
    missing = sorted(modules - direct)
    assert not missing, f"not in the wheel (add the package to [tool.setuptools] packages in pyproject.toml): {missing}"
    migrations = source_files(built.source, "migrations", "*.py", "*.mako", "versions/*.py")
    assert {"env.py", "script.py.mako", "versions/0001_initial_schema.py"} <= migrations
    assert {f"oauth_server/migrations/{name}" for name in migrations} <= direct
    templates = source_files(built.source, "templates", "**/*.html")
    assert "oauth_server/consent.html" in templates
    assert {f"oauth_server/templates/{name}" for name in templates} <= direct
    assert "oauth_server/py.typed" in direct
    assert {name.split("/")[0] for name in direct} == {"oauth_server"}, "nothing but the package at the top"


def test_sdist_keeps_the_repository_layout(built: Built) -> None:
    with tarfile.open(built.sdist) as archive:
        names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    assert {"alembic.ini", "migrations/env.py", "migrations/script.py.mako",
            "templates/oauth_server/consent.html", "pyproject.toml"} <= names


def test_the_venv_imports_the_installed_package_not_the_checkout(installed: Installed) -> None:
    result = installed.run("-c", "import oauth_server, oauth_server.migrate as m; "
                                 "print(oauth_server.__file__); print(m.script_location())")
    assert result.returncode == 0, result.stderr
    package, migrations = (Path(line) for line in result.stdout.split())
    site_packages = installed.venv.resolve()
    assert package.resolve().is_relative_to(site_packages) and "site-packages" in package.parts
    assert migrations.resolve() == package.resolve().parent / "migrations"


def readme_snippet(source: Path) -> str:
    """The first Python block of the README's "Use it" section: the quick start as users copy it."""
    readme = (source / "README.md").read_text()
    section = readme[readme.index("## Use it"):]
    match = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert match is not None
    return match.group(1)


@contextmanager
def uvicorn(installed: Installed, module: str, port: int) -> Iterator[str]:
    process = subprocess.Popen([str(installed.python), "-m", "uvicorn", f"{module}:app", "--host", "127.0.0.1",
                                "--port", str(port)], cwd=installed.workdir, env=installed.env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, f"uvicorn exited:\n{process.stdout.read() if process.stdout else ''}"
            try:
                httpx.get(f"{base}/.well-known/oauth-authorization-server", timeout=2)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "uvicorn did not start within 60 s"
                time.sleep(0.2)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()


def test_readme_app_serves_metadata_and_the_consent_page(built: Built, installed: Installed) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    app = readme_snippet(built.source).replace("http://localhost:8000", base)
    (installed.workdir / "readme_app.py").write_text(app)
    with uvicorn(installed, "readme_app", port), httpx.Client(base_url=base, timeout=10) as browser:
        metadata = browser.get("/.well-known/oauth-authorization-server")
        assert metadata.status_code == 200
        assert metadata.json()["issuer"].rstrip("/") == base
        registered = browser.post("/register", json={
            "redirect_uris": [REDIRECT], "token_endpoint_auth_method": "none", "client_name": "wheel test"})
        assert registered.status_code == 201, registered.text
        authorize = browser.get("/authorize", params={
            "response_type": "code", "client_id": registered.json()["client_id"], "redirect_uri": REDIRECT,
            "code_challenge": CHALLENGE, "code_challenge_method": "S256", "state": "s", "scope": "mcp:tools",
            "resource": f"{base}/mcp"})
        assert authorize.status_code in (302, 303), authorize.text
        consent = browser.get(authorize.headers["location"])
        assert consent.status_code == 200, consent.text
        assert consent.headers["content-type"].startswith("text/html")
        assert "<form" in consent.text and 'name="csrf_token"' in consent.text and "wheel test" in consent.text


def head_revisions(built: Built) -> tuple[str, ...]:
    return tuple(ScriptDirectory(str(built.source / "migrations")).get_heads())


def check_migrate_from_the_package(installed: Installed, built: Built, url: str) -> None:
    """``upgrade`` creates the tables (twice is harmless), the model works on them, ``current`` is head."""
    for _ in range(2):
        upgraded = installed.run("-m", "oauth_server.migrate", "upgrade", "--url", url)
        assert upgraded.returncode == 0, upgraded.stderr
    assert "Traceback" not in upgraded.stderr
    round_trip = installed.run("-c", ROUND_TRIP, url)
    assert round_trip.returncode == 0 and "round trip ok" in round_trip.stdout, round_trip.stderr
    current = installed.run("-m", "oauth_server.migrate", "current", DATABASE_URL=url)
    assert current.returncode == 0, current.stderr
    assert current.stdout.split("\n")[:-1] == [f"{head} (head)" for head in head_revisions(built)]


def test_migrate_creates_the_tables_on_a_fresh_sqlite_file(installed: Installed, built: Built) -> None:
    check_migrate_from_the_package(installed, built, f"sqlite+aiosqlite:///{installed.workdir / 'fresh.db'}")


def test_migrate_creates_the_tables_on_a_fresh_postgres_database(installed: Installed, built: Built) -> None:
    with fresh_postgres_database() as url:
        check_migrate_from_the_package(installed, built, url)


def test_migrate_sql_prints_the_ddl_without_connecting(installed: Installed) -> None:
    result = installed.run("-m", "oauth_server.migrate", "upgrade", "--sql",
                           "--url", "postgresql+asyncpg://nobody@127.0.0.1:9/nowhere")
    assert result.returncode == 0, result.stderr
    assert "CREATE TABLE oauth_clients" in result.stdout
    assert "CREATE TABLE oauth_server_alembic_version" in result.stdout


@pytest.mark.parametrize("args", [(), ("--url", "not a url")], ids=["missing", "unparseable"])
def test_migrate_refuses_a_missing_or_bad_url_with_status_2(installed: Installed, args: tuple[str, ...]) -> None:
    result = installed.run("-m", "oauth_server.migrate", "upgrade", *args)
    assert result.returncode == 2
    assert result.stderr.startswith("error: ") and "Traceback" not in result.stderr
