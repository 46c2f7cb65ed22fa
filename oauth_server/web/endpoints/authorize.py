"""GET|POST /authorize: validate, store the request as pending, send the browser to consent."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from oauth_server.errors import AuthorizationFailed, InvalidRequest
from oauth_server.web.context import RouterContext, query_params, read_form
from oauth_server.web.errors import COMMON_ERRORS, html_errors, json_errors


def failure_response(ctx: RouterContext, failure: AuthorizationFailed) -> Response:
    """Redirect the error to the client when it can be trusted; otherwise show it to the user."""
    location = ctx.server.error_redirect(failure)
    if location is not None:
        return RedirectResponse(location, status_code=303)
    status = failure.error.status_code if failure.error.status_code != 401 else 400
    return ctx.templates.render(
        "oauth_server/error.html", status_code=status,
        error=failure.error.error, description=failure.error.description,
    )


def add_routes(router: APIRouter, ctx: RouterContext) -> None:
    async def authorize(
        request: Request,
        response_type: Annotated[str | None, Query(description="Must be 'code'")] = None,
        client_id: Annotated[str | None, Query()] = None,
        redirect_uri: Annotated[str | None, Query()] = None,
        scope: Annotated[str | None, Query()] = None,
        state: Annotated[str | None, Query()] = None,
        code_challenge: Annotated[str | None, Query(description="PKCE S256 challenge (RFC 7636)")] = None,
        code_challenge_method: Annotated[str | None, Query(description="Must be 'S256'")] = None,
        resource: Annotated[str | None, Query(description="RFC 8707 resource indicator")] = None,
    ) -> Response:
        """OAuth 2.1 §4.1.1 authorization request (code flow with PKCE S256 only)."""
        await ctx.limit("authorize", request)
        secret, _ = ctx.ensure_browser_secret(request)
        try:
            params = await read_form(request) if request.method == "POST" else query_params(request)
            start = await ctx.server.start_authorization(params, secret)
        except InvalidRequest as exc:
            return failure_response(ctx, AuthorizationFailed(exc))
        except AuthorizationFailed as failure:
            return failure_response(ctx, failure)
        response = RedirectResponse(start.consent_url, status_code=303)
        ctx.set_browser_cookie(response, secret)
        return response

    for method in ("GET", "POST"):
        router.add_api_route(
            ctx.path("authorize"), authorize, methods=[method], tags=["oauth"], operation_id=f"authorize_{method}",
            summary="Authorization endpoint", response_class=RedirectResponse, status_code=303,
            responses={**json_errors(*COMMON_ERRORS), **html_errors(400, 403)},
        )
