"""Who is signed in to the example: the session cookie, or a username and password just posted.

``SignIn.get_user`` is the router's ``get_user``. A valid session cookie (``sessions``) names
the user at no cost; otherwise a form that carries ``username`` and ``password`` (the consent
page's, the connected-apps page's) is checked with argon2, and a success starts a session: the
``SessionMiddleware`` adds its cookie to whatever response the request gets (a consent's 303 to
the client, the connected-apps page's 303). So the password is asked once per session, and the
consent page then asks only for the decision.

Failed sign-ins are limited per username and per client IP (``LOGIN_LIMITS``, counted by the
router's ``RateLimits``): past either, every attempt is answered 429 with ``Retry-After`` before
the password is even checked, so guessing costs the attacker time and the server no argon2.
Only failures count, so a user who signs in often is never slowed. The per-username limit lets
someone hold a user's sign-in back for a minute by failing on purpose; a user already signed in
is not affected, and that is the price of slowing a distributed guesser.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from example.sessions import SessionCookies
from example.users import UserStore
from oauth_server import RateLimits

#: ``limits`` rules of failed sign-ins, added to the router's ``RateLimits``.
LOGIN_LIMITS = {"login_username": "5/minute", "login_ip": "20/minute"}
#: Where ``SessionMiddleware`` leaves the slot that ``get_user`` fills with a new sign-in.
SCOPE_KEY = "example.new_session"


@dataclass
class NewSession:
    """The user a request just signed in, if any: the middleware sets their cookie."""

    username: str | None = field(default=None)


class SessionMiddleware:
    """Pure ASGI, so streaming responses (the MCP endpoint's) pass through untouched: adds the
    session cookie to the response of a request in which ``get_user`` signed someone in."""

    def __init__(self, app: ASGIApp, sessions: SessionCookies) -> None:
        self.app = app
        self.sessions = sessions

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        slot = NewSession()
        scope[SCOPE_KEY] = slot

        async def send_with_cookie(message: Message) -> None:
            if message["type"] == "http.response.start" and slot.username is not None:
                MutableHeaders(scope=message).append("set-cookie", self.sessions.set_cookie_header(slot.username))
            await send(message)

        await self.app(scope, receive, send_with_cookie)


class SignIn:
    """The example's ``get_user``: session first, then a posted username and password."""

    def __init__(self, users: UserStore, sessions: SessionCookies, limits: RateLimits) -> None:
        self.users = users
        self.sessions = sessions
        self.limits = limits

    def session_user(self, request: Request) -> str | None:
        """The user of a valid session cookie who still exists."""
        username = self.sessions.read(request.cookies.get(self.sessions.name))
        return username if username is not None and self.users.role(username) is not None else None

    async def get_user(self, request: Request) -> str | None:
        """``mcp_auth_router``'s ``get_user``."""
        user = self.session_user(request)
        if user is not None or request.method != "POST":
            return user
        form = await request.form()
        username, password = form.get("username"), form.get("password")
        if not isinstance(username, str) or not isinstance(password, str) or not username or not password:
            return None
        username = username.strip()
        keys = (("login_username", _username_key(username)),
                ("login_ip", request.client.host if request.client else "unknown"))
        for name, key in keys:
            await self.limits.check(name, key)
        user = await self.users.authenticate(username, password)
        if user is None:
            for name, key in keys:
                await self.limits.hit(name, key)
            return None
        slot = request.scope.get(SCOPE_KEY)
        if isinstance(slot, NewSession):
            slot.username = user
        return user


def _username_key(username: str) -> str:
    """One limit per name whatever its case or length (``Demo`` is no fresh budget for ``demo``)."""
    return hashlib.sha256(username.casefold().encode("utf-8", "surrogatepass")).hexdigest()
