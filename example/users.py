"""The example's users: who may sign in on the consent page, and which scopes each may grant.

A real app has its own user store; the example keeps two users in memory so the whole flow
(login, consent, role-limited scopes) can be tried without any set-up. Who is signed in (the
session cookie, or the password just posted) is ``example.sign_in``. Passwords are
human-chosen, so they are hashed with argon2 (passlib's CryptContext), never stored in clear.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass

from passlib.context import CryptContext

#: Which scopes each role may grant to a client. The server supports all of them; a user can
#: only approve what the role allows, and the code carries the intersection.
ROLE_SCOPES: Mapping[str, tuple[str, ...]] = {
    "admin": ("mcp:tools", "mcp:prompts", "mcp:admin"),
    "guest": ("mcp:tools",),
}

ALL_SCOPES = ("mcp:tools", "mcp:prompts", "mcp:admin")

_passwords = CryptContext(schemes=["argon2"], deprecated="auto")


@dataclass(frozen=True, slots=True)
class User:
    username: str
    password_hash: str
    role: str


class UserStore:
    """Verifies a username and password; knows each user's role."""

    def __init__(self, users: Mapping[str, tuple[str, str]]) -> None:
        """``users`` maps a username to ``(plain password, role)``; only the hash is kept."""
        self._users = {
            name: User(name, _passwords.hash(password), role) for name, (password, role) in users.items()
        }
        # Verifying against a dummy hash for unknown names keeps the answer time the same,
        # so response times do not reveal which usernames exist.
        self._dummy_hash = _passwords.hash("not a password")

    @classmethod
    def demo(cls, demo_username: str, demo_password: str) -> UserStore:
        """``demo_username`` (admin) and ``guest``/``guest`` (guest)."""
        return cls({demo_username: (demo_password, "admin"), "guest": ("guest", "guest")})

    def role(self, username: str) -> str | None:
        user = self._users.get(username)
        return user.role if user else None

    async def authenticate(self, username: str, password: str) -> str | None:
        """The username if the password is right, else None. Runs argon2 off the event loop."""
        user = self._users.get(username)
        digest = user.password_hash if user else self._dummy_hash
        ok = await asyncio.to_thread(_passwords.verify, password, digest)
        return username if ok and user is not None else None

    def user_scopes(self, username: str) -> tuple[str, ...]:
        """``mcp_auth_router``'s ``user_scopes``: what this user's role may grant."""
        return ROLE_SCOPES.get(self.role(username) or "", ())
