"""What every endpoint needs: the server, the templates, the app's user hooks, the paths, and
the parsing of OAuth's two request formats."""

from __future__ import annotations

import inspect
import secrets
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

from starlette.requests import Request
from starlette.responses import Response

from oauth_server import json_input
from oauth_server.audit.events import RateLimitHit
from oauth_server.errors import InvalidClientMetadata, InvalidRequest
from oauth_server.server import AuthorizationServer
from oauth_server.web.limits import RateLimited, RateLimits
from oauth_server.web.openapi import FORM_TYPE
from oauth_server.web.templating import Templates

T = TypeVar("T")

#: ``get_user(request)``: who is signed in, or None. A plain function or a coroutine function.
GetUser = Callable[[Request], Awaitable[str | None] | str | None]
#: ``user_scopes(subject)``: the scopes this user may grant, or None for all. Either kind too.
UserScopes = Callable[[str], Awaitable[Collection[str] | None] | Collection[str] | None]

MAX_BODY_BYTES = 64 * 1024
#: No OAuth request has more parameters than this; more is an attack on the parser.
MAX_FIELDS = 50
#: The browser-binding cookie (see ``oauth_server.consent``).
BROWSER_COOKIE = "mcp_oauth_browser"


def issuer_path(issuer_url: str) -> str:
    return urlsplit(issuer_url).path.rstrip("/")


async def call_hook(result: Awaitable[T] | T) -> T:
    """The value of an app hook's call, whether the hook was a plain function or a coroutine."""
    if inspect.isawaitable(result):
        return await result
    return result


@dataclass(frozen=True)
class RouterContext:
    server: AuthorizationServer
    templates: Templates
    get_user: GetUser | None
    user_scopes: UserScopes | None
    consent_path: str
    limits: RateLimits

    @property
    def base_path(self) -> str:
        return issuer_path(self.server.settings.issuer_url)

    def endpoint_url(self, name: str) -> str:
        return self.server.settings.issuer_url.rstrip("/") + "/" + name

    def path(self, name: str) -> str:
        return f"{self.base_path}/{name}"

    async def limit(self, name: str, request: Request, key: str | None = None) -> None:
        """Apply rate limit ``name`` to the caller's IP (or to ``key``, a client_id); a refusal is audited."""
        counted = key or (request.client.host if request.client else "unknown")
        try:
            await self.limits.hit(name, counted)
        except RateLimited as exc:
            await self.server.audit.emit(RateLimitHit(time=self.server.now(), client_id=key, limit=name, key=counted,
                                                      retry_after=exc.retry_after))
            raise

    async def current_user(self, request: Request) -> str | None:
        """The app's ``get_user`` hook, sync or async; None when the app passed none."""
        if self.get_user is None:
            return None
        return await call_hook(self.get_user(request))

    async def allowed_scopes(self, subject: str) -> Collection[str] | None:
        """The app's ``user_scopes`` hook, sync or async; None (every scope) when it passed none."""
        if self.user_scopes is None:
            return None
        return await call_hook(self.user_scopes(subject))

    # -- the browser-binding cookie (see oauth_server.consent) ------------------------------
    @property
    def cookie_name(self) -> str:
        """``__Host-`` (Secure, Path=/, no Domain: RFC 6265bis §4.1.3.2) when the issuer is https."""
        return f"__Host-{BROWSER_COOKIE}" if self.server.settings.secure_cookies else BROWSER_COOKIE

    def browser_secret(self, request: Request) -> str | None:
        value = request.cookies.get(self.cookie_name)
        if value and 40 <= len(value) <= 64 and value.replace("-", "").replace("_", "").isalnum():
            return value
        return None

    def ensure_browser_secret(self, request: Request) -> str:
        return self.browser_secret(request) or secrets.token_urlsafe(32)

    def set_browser_cookie(self, response: Response, secret: str) -> None:
        settings = self.server.settings
        response.set_cookie(
            self.cookie_name, secret, max_age=settings.pending_authorization_lifetime * 6,
            path="/", httponly=True, samesite="lax", secure=settings.secure_cookies,
        )


def parse_params(raw: bytes) -> dict[str, list[str]]:
    """A query string or an ``application/x-www-form-urlencoded`` body: every value of every name.

    Exactly ``urllib.parse.parse_qsl(..., keep_blank_values=True, errors="strict")`` (a test
    compares the two on generated input), but a name or value is unquoted only when it holds a
    ``%`` or ``+``: most of a token request's are plain, and ``parse_qsl``'s per-pair work was
    a tenth of the token endpoint's CPU. Not Starlette's form parser (python-multipart): the same
    result for this one format, slower. Strict where OAuth wants it: invalid UTF-8 or more than
    ``MAX_FIELDS`` parameters is ``invalid_request``, not a silent repair.
    """
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidRequest("parameters must be UTF-8") from None
    if text.count("&") >= MAX_FIELDS:  # parse_qsl's max_num_fields counts the separators
        raise InvalidRequest(f"more than {MAX_FIELDS} parameters")
    out: dict[str, list[str]] = {}
    for pair in text.split("&"):
        if not pair:
            continue
        name, _, value = pair.partition("=")
        try:
            if "%" in name or "+" in name:
                name = unquote(name.replace("+", " "), errors="strict")
            if "%" in value or "+" in value:
                value = unquote(value.replace("+", " "), errors="strict")
        except UnicodeDecodeError:
            raise InvalidRequest("parameters must be UTF-8") from None
        out.setdefault(name, []).append(value)
    return out


async def read_form(request: Request) -> dict[str, list[str]]:
    """The urlencoded body of a POST (RFC 6749 §3.2: the only body format of the token endpoint)."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != FORM_TYPE:
        raise InvalidRequest(f"the request body must be {FORM_TYPE}")
    return parse_params(await request.body())


def query_params(request: Request) -> dict[str, list[str]]:
    return parse_params(request.scope.get("query_string", b""))


async def read_client_metadata(request: Request) -> dict[str, Any]:
    """The JSON object body of /register and RFC 7592 updates (RFC 7591 §3.1), through
    ``json_input``'s limits; anything else is ``invalid_client_metadata`` (RFC 7591 §3.2.2)."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/json":
        raise InvalidClientMetadata("the request body must be application/json")
    try:
        return json_input.load_object(await request.body(), max_bytes=MAX_BODY_BYTES)
    except json_input.JSONInputError as exc:
        raise InvalidClientMetadata(str(exc)) from None
