"""Turning exceptions into OAuth error responses, for every route of the router.

``OAuthRoute`` wraps each endpoint so that an ``OAuthError`` becomes its JSON body and status,
a storage outage becomes 503 ``temporarily_unavailable``, FastAPI's own validation errors
become 400 ``invalid_request``, and anything unexpected becomes 500 ``server_error`` with the
traceback in the log only.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Coroutine, Mapping
from typing import Any

from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send

from oauth_server.errors import InvalidRequest, OAuthError, ServerError, StorageUnavailable, TemporarilyUnavailable

logger = logging.getLogger("oauth_server")

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def error_response(error: OAuthError, headers: Mapping[str, str] | None = None) -> JSONResponse:
    extra = dict(headers or {})
    retry_after = getattr(error, "retry_after", None)
    if retry_after is not None:
        extra["Retry-After"] = str(retry_after)
    return JSONResponse(error.to_dict(), status_code=error.status_code, headers={**NO_STORE, **extra})


def oauth_error_for(exc: Exception) -> OAuthError:
    if isinstance(exc, OAuthError):
        return exc
    if isinstance(exc, RequestValidationError):
        return InvalidRequest("malformed request parameters")
    if isinstance(exc, StorageUnavailable):
        # The model's one outage signal (OAuthServerModel's contract); its cause is chained.
        logger.error("storage unavailable: %s", exc, exc_info=exc.__cause__ is not None)
        return TemporarilyUnavailable("the authorization server's storage is unavailable; retry later")
    logger.exception("unexpected error in an OAuth endpoint")
    return ServerError("an unexpected error occurred")


class OAuthRoute(APIRoute):
    """An APIRoute whose failures are always OAuth JSON errors, never tracebacks or 422s.

    Every endpoint is ``async def endpoint(request) -> Response`` (or takes nothing) and reads its parameters
    itself (see ``web/openapi.py`` for why and for how the schema is described), so the route
    calls it directly and skips FastAPI's per-request parsing, validation and dependency
    machinery. A wrong method still gets FastAPI's own 405.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._handler = self.get_route_handler()

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the endpoint without FastAPI's per-request wrapper.

        That wrapper opens two ``AsyncExitStack``s for dependencies with ``yield`` (these
        endpoints have none), and its body limit and exception handling duplicate the router's
        64 KiB cap and ``guarded``.
        """
        if self.methods and scope["method"] not in self.methods:
            await super().handle(scope, receive, send)
            return
        response = await self._handler(Request(scope, receive, send))
        await response(scope, receive, send)

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        endpoint = self.endpoint
        parameters = list(inspect.signature(endpoint).parameters)
        if parameters not in ([], ["request"]):
            raise TypeError(f"{endpoint.__name__} must take no parameter or only the request")
        takes_request = bool(parameters)

        async def guarded(request: Request) -> Response:
            try:
                response = await (endpoint(request) if takes_request else endpoint())
                if not isinstance(response, Response):
                    raise TypeError(f"{endpoint.__name__} must return a Response")
                return response
            except Exception as exc:
                if _is_http_exception(exc):
                    raise
                return error_response(oauth_error_for(exc))

        return guarded


def _is_http_exception(exc: Exception) -> bool:
    from starlette.exceptions import HTTPException

    return isinstance(exc, HTTPException)
