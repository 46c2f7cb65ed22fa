"""The public API is ``oauth_server.__all__`` (in the style of httpx's ``test_exported_members``)."""

from __future__ import annotations

import inspect
import pkgutil
import subprocess
import sys

import oauth_server


def test_all_is_sorted_and_every_name_resolves() -> None:
    assert oauth_server.__all__ == sorted(oauth_server.__all__)
    for name in oauth_server.__all__:
        assert getattr(oauth_server, name) is not None, name


def test_every_public_member_is_in_all() -> None:
    """Nothing public is missing from ``__all__``, and nothing in it is private."""
    for name in oauth_server.__all__:
        getattr(oauth_server, name)  # load the lazy ones, so vars() sees them too
    public = {name for name, member in vars(oauth_server).items()
              if not name.startswith("_") and not inspect.ismodule(member)}
    assert public == set(oauth_server.__all__)
    assert set(oauth_server.__all__) <= set(dir(oauth_server))


def test_unknown_name_is_an_attribute_error() -> None:
    try:
        oauth_server.NoSuchThing  # noqa: B018
    except AttributeError as exc:
        assert "NoSuchThing" in str(exc)
    else:
        raise AssertionError("expected AttributeError")


def test_readme_snippet_names_are_public() -> None:
    for name in ("OAuthServer", "AuthorizationServer", "OAuthServerSettings", "MemoryOAuthServerModel",
                 "mcp_auth_router", "require_bearer_auth", "BearerAuthMiddleware", "OAuthServerModel",
                 "consent_router", "SQLAlchemyOAuthServerModel"):
        assert name in oauth_server.__all__


def _core_modules() -> list[str]:
    """Every module of the package outside the web layer and the integrations (which may import them)."""
    names = ["oauth_server"]
    for info in pkgutil.walk_packages(oauth_server.__path__, "oauth_server."):
        if info.name.startswith(("oauth_server.web", "oauth_server.integrations")):
            continue
        if info.name == "oauth_server.__main__" or info.name.startswith("oauth_server.cli"):
            continue
        names.append(info.name)
    return names


def test_core_imports_no_web_framework_and_not_mcp() -> None:
    """design.md: the core (settings, records, errors, rules, grants, models) imports neither
    FastAPI, Starlette nor ``mcp``, at run time too; they load only with the web layer."""
    modules = _core_modules()
    assert "oauth_server.server" in modules and "oauth_server.model.sqlalchemy.model" in modules
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "import oauth_server\n"
        "oauth_server.AuthorizationServer, oauth_server.SQLAlchemyOAuthServerModel\n"
        "loaded = sorted({m.split('.')[0] for m in sys.modules} & {'fastapi', 'starlette', 'mcp'})\n"
        "print(','.join(loaded))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert result.stdout.strip() == ""


def test_web_names_load_on_first_use() -> None:
    """The lazy names really are lazy: ``import oauth_server`` alone leaves FastAPI unloaded."""
    code = (
        "import sys, oauth_server\n"
        "before = 'fastapi' in sys.modules\n"
        "oauth_server.mcp_auth_router\n"
        "print(before, 'fastapi' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert result.stdout.split() == ["False", "True"]
