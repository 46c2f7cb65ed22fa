"""The example client: ``python -m example.client [--server URL] [--username U --password P]``.

An MCP SDK client (``mcp.client.auth.OAuthClientProvider``) that does what Claude Code or
Cursor do: discovery (RFC 9728, RFC 8414), dynamic registration (RFC 7591), PKCE, the user's
consent in a browser, a loopback redirect (RFC 8252 §7.3: ``http://127.0.0.1:<ephemeral
port>/callback``), tokens kept in a file so the next run refreshes instead of asking again.
Then it lists the tools and calls ``whoami``.

With ``--username``/``--password`` it fills the example's sign-in + consent form itself (for
scripts and tests) instead of opening a browser.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import sys
import time
import webbrowser
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx
import httpx2
from mcp import ClientSession
from mcp.client.auth import OAuthClientProvider
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import AuthorizationCodeResult, OAuthClientInformationFull, OAuthClientMetadata, OAuthToken
from pydantic import AnyUrl

DEFAULT_SERVER = "http://localhost:8000/mcp"
DEFAULT_TOKEN_FILE = Path("~/.cache/oauth_server_example/tokens.json")
#: Ask for every scope the example knows; the signed-in user's role decides what is granted.
DEFAULT_SCOPE = "mcp:tools mcp:prompts mcp:admin"
CALLBACK_PATH = "/callback"


class LoginFailed(Exception):
    """The sign-in form refused the username or password, or the authorization failed."""


# -- token storage ------------------------------------------------------------------------------


class FileTokenStorage:
    """The SDK's ``TokenStorage`` in a JSON file, one entry per MCP server URL.

    The SDK keeps only ``expires_in`` (relative), so the absolute expiry is stored next to the
    tokens and turned back into the remaining seconds when read: a later run then knows the
    access token expired and refreshes it before using it. The file holds bearer credentials,
    so it is created readable by its owner only.
    """

    def __init__(self, path: Path, server_url: str) -> None:
        self.path = path.expanduser()
        self.server_url = server_url

    def _read_all(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}
        return data if isinstance(data, dict) else {}

    def _entry(self) -> dict[str, Any]:
        entry = self._read_all().get(self.server_url)
        return entry if isinstance(entry, dict) else {}

    def _update(self, **values: Any) -> None:
        data = self._read_all()
        data[self.server_url] = {**self._entry(), **values}
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = self.path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            json.dump(data, out, indent=2)
        tmp.replace(self.path)  # atomic: a crash never leaves half a file

    async def get_tokens(self) -> OAuthToken | None:
        entry = self._entry()
        if "tokens" not in entry:
            return None
        tokens = OAuthToken.model_validate(entry["tokens"])
        expires_at = entry.get("expires_at")
        if expires_at is not None:
            tokens.expires_in = int(expires_at - time.time())
        return tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        expires_at = time.time() + tokens.expires_in if tokens.expires_in is not None else None
        self._update(tokens=tokens.model_dump(mode="json", exclude_none=True), expires_at=expires_at)

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        info = self._entry().get("client_info")
        return OAuthClientInformationFull.model_validate(info) if info else None

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self._update(client_info=client_info.model_dump(mode="json", exclude_none=True))


class ExpiryAwareOAuthProvider(OAuthClientProvider):
    """``OAuthClientProvider`` that gives tokens loaded from storage their expiry back.

    The SDK sets the expiry only when a token arrives from the server, so on a new run it would
    send an expired access token, get 401 and start a new browser login; with the expiry known
    it refreshes the token first, as it does within one run.
    """

    async def _initialize(self) -> None:
        await super()._initialize()
        if self.context.current_tokens is not None and self.context.current_tokens.expires_in is not None:
            self.context.update_token_expiry(self.context.current_tokens)


class PinnedScopeClientMetadata(OAuthClientMetadata):
    """Client metadata whose ``scope`` the SDK's scope selection leaves alone.

    The SDK replaces the scope with the one in the resource's ``WWW-Authenticate`` challenge
    (``mcp:tools``, all the endpoint itself needs) before registering and authorizing. The
    example wants to ask for every scope and let the signed-in user's role decide what is
    granted, so an admin can grant ``mcp:admin`` in the same sign-in.
    """

    def __setattr__(self, name: str, value: Any) -> None:
        if name != "scope":
            super().__setattr__(name, value)


# -- the loopback redirect (RFC 8252 §7.3) ------------------------------------------------------


class LoopbackCallback:
    """A one-shot HTTP server on 127.0.0.1 with an ephemeral port that receives the redirect.

    A loopback IP literal (not ``localhost``) avoids resolving to another interface, and the
    port is chosen by the OS, so no fixed port can be squatted by another program.
    """

    def __init__(self) -> None:
        self.port = 0
        self._server: asyncio.Server | None = None
        self._result: asyncio.Future[dict[str, str]] | None = None

    @property
    def redirect_uri(self) -> str:
        return f"http://127.0.0.1:{self.port}{CALLBACK_PATH}"

    async def __aenter__(self) -> LoopbackCallback:
        self._result = asyncio.get_running_loop().create_future()
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request_line = (await asyncio.wait_for(reader.readline(), 10)).decode("latin-1")
            while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                pass  # headers: not needed
            method, _, rest = request_line.partition(" ")
            target = rest.rsplit(" ", 1)[0]
            parts = urlsplit(target)
            if method != "GET" or parts.path != CALLBACK_PATH:
                writer.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                return
            params = {k: v[0] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
            ok = "code" in params
            text = ("Signed in. You can close this window and return to the terminal." if ok
                    else f"Authorization failed: {params.get('error', 'no code')}. You can close this window.")
            body = f"<!doctype html><title>oauth_server example</title><p>{text}</p>".encode()
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n"
                         b"Cache-Control: no-store\r\nConnection: close\r\n"
                         + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
            if self._result is not None and not self._result.done():
                self._result.set_result(params)
        except (TimeoutError, ConnectionError, UnicodeDecodeError):
            pass
        finally:
            with contextlib.suppress(ConnectionError):
                await writer.drain()
            writer.close()

    async def wait(self, timeout: float = 300) -> AuthorizationCodeResult:
        """The SDK's ``callback_handler``: the code, state and iss the browser brought back."""
        assert self._result is not None, "use LoopbackCallback as an async context manager"
        params = await asyncio.wait_for(asyncio.shield(self._result), timeout)
        self._result = asyncio.get_running_loop().create_future()  # ready for another authorization
        if "code" not in params:
            raise LoginFailed(f"authorization failed: {params.get('error')}: {params.get('error_description', '')}")
        return AuthorizationCodeResult(code=params["code"], state=params.get("state"), iss=params.get("iss"))


# -- the user's side: a real browser, or the form filled by this program ---------------------------


async def open_browser(authorization_url: str) -> None:
    """Open the user's browser; if there is none, print the URL to open by hand."""
    print(f"Opening the browser to sign in:\n  {authorization_url}", flush=True)
    if not webbrowser.open(authorization_url):
        print("No browser could be opened; open the URL above yourself.", flush=True)


async def print_url(authorization_url: str) -> None:
    print(f"Open this URL in a browser to sign in and approve:\n  {authorization_url}", flush=True)


class _FormParser(HTMLParser):
    """The first ``<form>``'s action and its hidden inputs."""

    def __init__(self) -> None:
        super().__init__()
        self.action: str | None = None
        self.hidden: dict[str, str] = {}
        self._in_form = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        if tag == "form" and self.action is None:
            self._in_form = True
            self.action = values.get("action", "")
        elif tag == "input" and self._in_form and values.get("type") == "hidden" and "name" in values:
            self.hidden[values["name"]] = values.get("value", "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._in_form = False


@dataclass
class FormLogin:
    """Plays the browser for scripts: signs in on the consent page and approves.

    It does what the user would: follows ``/authorize`` to the consent page (keeping the
    cookie that binds the form to this "browser"), posts the form with the credentials and
    ``decision=approve``, and follows the 303 to the loopback redirect URI.
    """

    username: str
    password: str
    decision: str = "approve"
    pages: list[str] = field(default_factory=list)

    async def __call__(self, authorization_url: str) -> None:
        async with httpx.AsyncClient(timeout=30, follow_redirects=False) as browser:
            response = await browser.get(authorization_url)
            for _ in range(5):  # /authorize answers 303 to the consent page
                if response.status_code not in (302, 303) or _is_loopback(response.headers["location"]):
                    break
                response = await browser.get(urljoin(str(response.url), response.headers["location"]))
            if response.status_code in (302, 303):  # an error sent straight back to the client
                await browser.get(response.headers["location"])
                return
            if response.status_code != 200:
                raise LoginFailed(f"the authorization server answered {response.status_code}: {response.text[:200]}")
            self.pages.append(response.text)
            form = _FormParser()
            form.feed(response.text)
            action = urljoin(str(response.url), form.action or "")
            answer = await browser.post(action, data={
                **form.hidden, "username": self.username, "password": self.password, "decision": self.decision})
            if answer.status_code == 401:
                raise LoginFailed("wrong username or password")
            if answer.status_code != 303:
                raise LoginFailed(f"the consent form answered {answer.status_code}: {answer.text[:200]}")
            # Deliver the code as the browser would: by visiting the redirect URI.
            await browser.get(answer.headers["location"])


def _is_loopback(url: str) -> bool:
    return urlsplit(url).hostname in ("127.0.0.1", "::1", "localhost") and urlsplit(url).path == CALLBACK_PATH


# -- the MCP session ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ClientOptions:
    server_url: str = DEFAULT_SERVER
    token_file: Path = DEFAULT_TOKEN_FILE
    username: str | None = None
    password: str | None = None
    open_browser: bool = True
    scope: str | None = DEFAULT_SCOPE


@contextlib.asynccontextmanager
async def connect(options: ClientOptions) -> AsyncIterator[ClientSession]:
    """An initialized MCP session with the server, signing in first if needed."""
    async with LoopbackCallback() as callback:
        if options.username is not None:
            redirect_handler: Any = FormLogin(options.username, options.password or "")
        else:
            redirect_handler = open_browser if options.open_browser else print_url
        metadata_class = PinnedScopeClientMetadata if options.scope else OAuthClientMetadata
        provider = ExpiryAwareOAuthProvider(
            server_url=options.server_url,
            client_metadata=metadata_class(
                client_name="oauth_server example client",
                redirect_uris=[AnyUrl(callback.redirect_uri)],
                grant_types=["authorization_code", "refresh_token"],
                response_types=["code"],
                token_endpoint_auth_method="none",  # a public client: it cannot keep a secret
                scope=options.scope,
            ),
            storage=FileTokenStorage(options.token_file, options.server_url),
            redirect_handler=redirect_handler,
            callback_handler=callback.wait,
        )
        async with (
            httpx2.AsyncClient(auth=provider, timeout=60) as http,
            streamable_http_client(options.server_url, http_client=http) as (read, write, *_),
            ClientSession(read, write) as session,
        ):
            await session.initialize()
            yield session


@dataclass(frozen=True)
class RunResult:
    tools: list[str]
    whoami: dict[str, Any]


async def run(options: ClientOptions) -> RunResult:
    """Sign in if needed, list the tools, call ``whoami``."""
    async with connect(options) as session:
        tools = [tool.name for tool in (await session.list_tools()).tools]
        result = await session.call_tool("whoami", {})
        if result.is_error:
            raise LoginFailed(f"whoami failed: {result.content}")
        whoami = result.structured_content or json.loads(result.content[0].text)  # type: ignore[union-attr]
    return RunResult(tools=tools, whoami=dict(whoami))


def parse_args(argv: list[str] | None = None) -> ClientOptions:
    parser = argparse.ArgumentParser(prog="python -m example.client", description=__doc__.split("\n\n")[0])
    parser.add_argument("--server", default=DEFAULT_SERVER, help=f"the MCP endpoint (default {DEFAULT_SERVER})")
    parser.add_argument("--token-file", type=Path, default=DEFAULT_TOKEN_FILE,
                        help=f"where tokens and the client registration are kept (default {DEFAULT_TOKEN_FILE})")
    parser.add_argument("--username", help="sign in with this user instead of opening a browser")
    parser.add_argument("--password", help="the password for --username")
    parser.add_argument("--no-browser", action="store_true", help="print the sign-in URL instead of opening it")
    parser.add_argument("--scope", default=DEFAULT_SCOPE, help=f"scopes to ask for (default {DEFAULT_SCOPE!r})")
    parser.add_argument("--verbose", action="store_true", help="log the OAuth flow (with tracebacks of failures)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING)
    if not args.verbose:
        # The SDK logs every failed sign-in with a traceback; main() prints one line instead.
        logging.getLogger("mcp.client.auth").setLevel(logging.CRITICAL)
    if (args.username is None) != (args.password is None):
        parser.error("--username and --password go together")
    return ClientOptions(server_url=args.server, token_file=args.token_file, username=args.username,
                         password=args.password, open_browser=not args.no_browser, scope=args.scope or None)


def find_login_failure(exc: BaseException) -> LoginFailed | None:
    """The ``LoginFailed`` inside ``exc``: the MCP transport's task group wraps it in a group."""
    if isinstance(exc, LoginFailed):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            found = find_login_failure(inner)
            if found is not None:
                return found
    return None


def main(argv: list[str] | None = None) -> int:
    options = parse_args(argv)
    try:
        result = asyncio.run(run(options))
    except Exception as exc:
        failure = find_login_failure(exc)
        if failure is None:
            raise
        print(f"error: {failure}", file=sys.stderr)
        return 1
    print("tools:", " ".join(result.tools))
    print("whoami:", json.dumps(result.whoami, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
