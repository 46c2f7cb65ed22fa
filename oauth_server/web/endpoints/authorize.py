"""GET|POST /authorize: validate, store the request as pending, send the browser to consent."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from oauth_server.errors import AuthorizationFailed, InvalidRequest
from oauth_server.web.context import RouterContext, query_params, read_form
from oauth_server.web.openapi import COMMON_ERRORS, form_body, html_errors, json_errors, query
from oauth_server.web.pages import failure_response

AUTHORIZE_PARAMETERS: dict[str, str | None] = {
    "response_type": "Must be 'code'",
    "client_id": None,
    "redirect_uri": None,
    "scope": None,
    "state": None,
    "code_challenge": "PKCE S256 challenge (RFC 7636)",
    "code_challenge_method": "Must be 'S256'",
    "resource": "RFC 8707 resource indicator",
}
REQUIRED = ("response_type", "client_id", "code_challenge")


def add_routes(router: APIRouter, ctx: RouterContext) -> None:
    async def authorize(request: Request) -> Response:
        """OAuth 2.1 §4.1.1 authorization request (code flow with PKCE S256 only)."""
        await ctx.limit("authorize", request)
        secret = ctx.ensure_browser_secret(request)
        try:
            params = await read_form(request) if request.method == "POST" else query_params(request)
            start = await ctx.server.start_authorization(params, secret)
        except InvalidRequest as exc:
            return failure_response(ctx.server, ctx.templates, AuthorizationFailed(exc))
        except AuthorizationFailed as failure:
            return failure_response(ctx.server, ctx.templates, failure)
        response = RedirectResponse(start.consent_url, status_code=303)
        ctx.set_browser_cookie(response, secret)
        return response

    documented = {"GET": query(AUTHORIZE_PARAMETERS, REQUIRED), "POST": form_body(AUTHORIZE_PARAMETERS, REQUIRED)}
    for method in ("GET", "POST"):
        router.add_api_route(
            ctx.path("authorize"), authorize, methods=[method], tags=["oauth"], operation_id=f"authorize_{method}",
            summary="Authorization endpoint", response_class=RedirectResponse, status_code=303,
            responses={**json_errors(*COMMON_ERRORS), **html_errors(400, 403)}, openapi_extra=documented[method],
        )
