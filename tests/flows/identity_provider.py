"""A test enterprise identity provider: a key pair made in the test, its JWK Set, and ID-JAGs
(draft-ietf-oauth-identity-assertion-authz-grant, ext-auth §4.3) signed as the test asks."""

from __future__ import annotations

import time
import uuid
from typing import Any

import jwt
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from oauth_server import keys

ID_JAG_TYP = "oauth-id-jag+jwt"
IDP_ISSUER = "https://idp.example.com"


class IdentityProvider:
    """Signs ID-JAGs with its own key; ``jwks`` is what its ``jwks_uri`` publishes."""

    def __init__(self, issuer: str = IDP_ISSUER, algorithm: str = "ES256") -> None:
        self.issuer = issuer
        self.algorithm = algorithm
        self.key = keys.generate(algorithm)
        self.jwk = keys.public_jwk(self.key)
        self.fetches = 0

    @property
    def jwks(self) -> dict[str, Any]:
        return {"keys": [self.jwk]}

    def id_jag(self, *, audience: str, resource: str, client_id: str, subject: str = "alice",
               now: float | None = None, typ: str | None = ID_JAG_TYP, headers: dict[str, Any] | None = None,
               **claims: Any) -> str:
        """An ID-JAG; ``claims`` override or (with None) drop the defaults."""
        issued = int(time.time() if now is None else now)
        body: dict[str, Any] = {"iss": self.issuer, "sub": subject, "aud": audience, "resource": resource,
                                "client_id": client_id, "jti": str(uuid.uuid4()), "iat": issued,
                                "exp": issued + 300, "scope": "mcp:tools"}
        body.update(claims)
        header: dict[str, Any] = {"kid": self.jwk["kid"], **({"typ": typ} if typ else {}), **(headers or {})}
        return jwt.encode({k: v for k, v in body.items() if v is not None}, self.key, algorithm=self.algorithm,
                          headers=header)

    def app(self) -> Starlette:
        """The provider's JWK Set over HTTP, for a uvicorn server on loopback."""

        async def jwks(_: Request) -> JSONResponse:
            self.fetches += 1
            return JSONResponse(self.jwks, headers={"Cache-Control": "max-age=300"})

        return Starlette(routes=[Route("/jwks.json", jwks)])
