"""The consent page (GET) and the consent confirm handler (POST).

The app decides who the user is (``get_user``) and which scopes that user may grant
(``user_scopes``); the rules (binding to the browser and request, single use) are in
``AuthorizationServer``. Approving without a signed-in user shows the page again and issues nothing.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from oauth_server import consent, redirect_uris
from oauth_server.errors import AuthorizationFailed, InvalidRequest
from oauth_server.params import single
from oauth_server.records import Client
from oauth_server.server import ConsentRequest
from oauth_server.web.context import RouterContext, query_params, read_form
from oauth_server.web.openapi import COMMON_ERRORS, form_body, html_errors, json_errors, query
from oauth_server.web.pages import failure_response

CONSENT_FORM = form_body({
    "request_id": None,
    "csrf_token": "Anti-forgery token: HMAC of the request id under this browser's secret",
    "decision": "'approve' or 'deny'",
    "scope": "Optional narrower scope the user chose",
}, required=("request_id", "csrf_token", "decision"))


def redirect_host(uri: str) -> str:
    parts = urlsplit(uri)
    return parts.netloc or f"{parts.scheme}:"


def document_host(client: Client) -> str | None:
    """The host of a client ID metadata document client's URL ("claude.ai"), else None.

    draft-ietf-oauth-client-id-metadata-document §8.1: the name and logo in a document are the
    client's own claims, while the URL's host is what the fetch proved, so the page shows it
    prominently and the user can judge who the client really is.
    """
    if client.metadata_document_expires_at is None:
        return None
    return urlsplit(client.client_id).hostname


def render_consent(
    ctx: RouterContext, request: ConsentRequest, browser_secret: str, user: str | None,
    error: str | None = None, status_code: int = 200,
) -> Response:
    client = request.client
    return ctx.templates.render(
        "oauth_server/consent.html",
        status_code=status_code,
        client_name=client.client_name or client.client_id,
        client_id=client.client_id,
        client_host=document_host(client),
        redirect_host=redirect_host(request.pending.redirect_uri),
        localhost_only=all(redirect_uris.is_loopback(u) for u in client.redirect_uris),
        scopes=request.pending.scopes,
        resource=request.pending.resource,
        request_id=request.request_id,
        csrf_token=consent.form_token(browser_secret, request.request_id),
        action=ctx.consent_path,
        user=user,
        error=error,
    )


def add_routes(router: APIRouter, ctx: RouterContext) -> None:
    async def consent_page(request: Request) -> Response:
        """Show what the client asks for. The anti-forgery token is bound to this browser."""
        try:
            request_id = single(query_params(request), "request_id")
            if not request_id:
                raise AuthorizationFailed(InvalidRequest("request_id is required"))
            secret = ctx.ensure_browser_secret(request)
            consent_request = await ctx.server.open_consent(request_id, secret)
        except InvalidRequest as exc:
            return failure_response(ctx.server, ctx.templates, AuthorizationFailed(exc))
        except AuthorizationFailed as failure:
            # Before the decision nothing is sent back to the client: the user sees the error.
            return failure_response(ctx.server, ctx.templates, AuthorizationFailed(failure.error))
        user = await ctx.current_user(request)
        response = render_consent(ctx, consent_request, secret, user)
        ctx.set_browser_cookie(response, secret)
        return response

    async def confirm_consent(request: Request) -> Response:
        """The user's decision: 303 to the client's redirect URI with a code or ``access_denied``."""
        await ctx.limit("consent", request)
        secret = ctx.browser_secret(request)
        try:
            form = await read_form(request)
            request_id, csrf_token, decision = (single(form, name) or "" for name in
                                                 ("request_id", "csrf_token", "decision"))
            scope = single(form, "scope")
            if not request_id or not csrf_token:
                raise AuthorizationFailed(InvalidRequest("request_id and csrf_token are required"))
            checked = await ctx.server.check_consent_form(request_id, secret, csrf_token)
            if decision == "deny":
                return RedirectResponse(await ctx.server.deny(checked), status_code=303)
            if decision != "approve":
                raise AuthorizationFailed(InvalidRequest("decision must be 'approve' or 'deny'"))
            user = await ctx.current_user(request)
            if not user or secret is None:
                return render_consent(ctx, checked.request, secret or "", None,
                                      error="Sign in to approve this request.", status_code=401)
            location = await ctx.server.approve(
                checked, user, allowed_scopes=await ctx.allowed_scopes(user),
                selected_scopes=scope.split() if scope is not None else None,
            )
            return RedirectResponse(location, status_code=303)
        except InvalidRequest as exc:
            return failure_response(ctx.server, ctx.templates, AuthorizationFailed(exc))
        except AuthorizationFailed as failure:
            return failure_response(ctx.server, ctx.templates, failure)

    router.add_api_route(ctx.consent_path, consent_page, methods=["GET"], tags=["consent"],
                         summary="Consent page", response_class=HTMLResponse,
                         responses={**json_errors(*COMMON_ERRORS), **html_errors(303, 400, 403)},
                         openapi_extra=query({"request_id": None}, required=("request_id",)))
    router.add_api_route(ctx.consent_path, confirm_consent, methods=["POST"], tags=["consent"],
                         summary="Consent confirm handler", response_class=RedirectResponse, status_code=303,
                         responses={**json_errors(400, *COMMON_ERRORS), **html_errors(400, 401, 403)},
                         openapi_extra=CONSENT_FORM)
