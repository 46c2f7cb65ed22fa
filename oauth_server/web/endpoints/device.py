"""RFC 8628: ``POST /device_authorization`` and the verification page (``GET``/``POST /device``).

Mounted only with ``device_authorization_grant`` on. The page works in two posts, both checked
against this browser's anti-forgery token (``oauth_server.device_authorization``): the typed
code (answered with the consent information of its request: client, scopes, resource, a warning
against remote phishing, RFC 8628 §5.2) and the decision, which needs the signed-in user
(``get_user``, as the consent page). ``?user_code=`` on the GET only fills the field in
(``verification_uri_complete``): no GET looks a code up, let alone approves it. Every post
counts against the ``device_verify`` limit of the IP and ``device_verify_session`` of the
browser and of the signed-in user (RFC 8628 §5.1).
"""

from __future__ import annotations

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response

from oauth_server import tokens, user_codes
from oauth_server.device_authorization import VERIFICATION_PATH, DeviceRequest, decision_token, entry_token
from oauth_server.errors import ConsentForbidden, InvalidClient, InvalidRequest, InvalidScope
from oauth_server.params import single
from oauth_server.web.client_auth import authenticate, client_error
from oauth_server.web.context import RouterContext, query_params, read_form
from oauth_server.web.endpoints.consent import document_host
from oauth_server.web.errors import NO_STORE
from oauth_server.web.openapi import COMMON_ERRORS, form_body, html_errors, json_errors, query

TEMPLATE = "oauth_server/device.html"
DEVICE_AUTHORIZATION_FORM = form_body({
    "client_id": "Required for a public client (RFC 8628 §3.1)",
    "scope": None,
    "resource": "RFC 8707 resource indicator",
    "client_secret": None,
    "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer (private_key_jwt, RFC 7523)",
    "client_assertion": "the client's signed JWT (RFC 7523 §2.2)",
})
VERIFICATION_FORM = form_body({
    "user_code": "The code the device shows (case and dashes ignored)",
    "csrf_token": "Anti-forgery token: HMAC under this browser's secret",
    "decision": "Absent: look the code up. 'approve' or 'deny': decide",
    "scope": "Optional narrower scope the user chose",
}, required=("user_code", "csrf_token"))


def render_entry(ctx: RouterContext, secret: str, user_code: str = "", error: str | None = None,
                 status_code: int = 200) -> Response:
    response = ctx.templates.render(
        TEMPLATE, status_code=status_code, step="enter", action=ctx.path(VERIFICATION_PATH),
        csrf_token=entry_token(secret), user_code=user_code, error=error)
    ctx.set_browser_cookie(response, secret)
    return response


def render_confirm(ctx: RouterContext, request: DeviceRequest, secret: str, user: str | None,
                   error: str | None = None, status_code: int = 200) -> Response:
    client = request.client
    return ctx.templates.render(
        TEMPLATE, status_code=status_code, step="confirm", action=ctx.path(VERIFICATION_PATH),
        client_name=client.client_name or client.client_id, client_id=client.client_id,
        client_host=document_host(client), scopes=request.record.scopes, resource=request.record.resource,
        user_code=user_codes.display(request.user_code),
        csrf_token=decision_token(secret, request.user_code), user=user, error=error)


def add_routes(router: APIRouter, ctx: RouterContext) -> None:
    if not ctx.server.settings.device_authorization_grant:
        return
    page_path = ctx.path(VERIFICATION_PATH)

    async def device_authorization(request: Request) -> Response:
        """RFC 8628 §3.1: a device asks for a device code and a user code. Never cached."""
        await ctx.limit("device_authorization", request)
        form = await read_form(request)
        try:
            client = await authenticate(ctx.server, request, form)
        except InvalidClient as exc:
            return client_error(request, exc)
        return JSONResponse(await ctx.server.start_device_authorization(client, form), headers=NO_STORE)

    async def verification_page(request: Request) -> Response:
        """RFC 8628 §3.3: the form where the user types the code; ``user_code`` pre-fills it."""
        secret = ctx.ensure_browser_secret(request)
        try:
            typed = single(query_params(request), "user_code") or ""
        except InvalidRequest:
            typed = ""
        code = user_codes.normalize(typed)
        return render_entry(ctx, secret, user_codes.display(code) if code else "")

    async def verify(request: Request) -> Response:
        """The typed code (shows what it asks for), or the decision on it (approve or deny)."""
        await ctx.limit("device_verify", request)
        secret = ctx.browser_secret(request)
        if secret is not None:
            await ctx.limit("device_verify_session", request, f"browser:{tokens.digest(secret)}")
        typed = ""
        try:
            form = await read_form(request)
            typed, csrf_token, decision = (single(form, name) or "" for name in ("user_code", "csrf_token", "decision"))
            scope = single(form, "scope")
            user = await ctx.current_user(request)
            if user:
                await ctx.limit("device_verify_session", request, f"user:{user}")
            if not decision:
                found = await ctx.server.open_device_request(typed, secret, csrf_token)
                return render_confirm(ctx, found, secret or "", user)
            checked = await ctx.server.check_device_form(typed, secret, csrf_token)
            if decision not in ("approve", "deny"):
                raise InvalidRequest("decision must be 'approve' or 'deny'")
            if not user or secret is None:
                return render_confirm(ctx, checked.request, secret or "", None,
                                      error="Sign in to decide on this request.", status_code=401)
            if decision == "deny":
                await ctx.server.deny_device(checked)
                return ctx.templates.render(TEMPLATE, step="done", approved=False)
            try:
                await ctx.server.approve_device(checked, user, allowed_scopes=await ctx.allowed_scopes(user),
                                                selected_scopes=scope.split() if scope is not None else None)
            except InvalidScope as exc:
                return render_confirm(ctx, checked.request, secret, user, error=exc.description, status_code=403)
            return ctx.templates.render(TEMPLATE, step="done", approved=True)
        except ConsentForbidden as exc:
            return render_entry(ctx, ctx.ensure_browser_secret(request), "", exc.description, exc.status_code)
        except InvalidRequest as exc:
            code = user_codes.normalize(typed)
            return render_entry(ctx, ctx.ensure_browser_secret(request), user_codes.display(code) if code else "",
                                exc.description, exc.status_code)

    router.add_api_route(ctx.path("device_authorization"), device_authorization, methods=["POST"], tags=["oauth"],
                         summary="Device authorization endpoint (RFC 8628)", response_model=None,
                         responses=json_errors(400, 401, *COMMON_ERRORS), openapi_extra=DEVICE_AUTHORIZATION_FORM)
    router.add_api_route(page_path, verification_page, methods=["GET"], tags=["consent"],
                         summary="Device verification page (RFC 8628 §3.3)", response_class=HTMLResponse,
                         responses={**json_errors(*COMMON_ERRORS), **html_errors(400)},
                         openapi_extra=query({"user_code": "Pre-fills the form; never approves"}))
    router.add_api_route(page_path, verify, methods=["POST"], tags=["consent"],
                         summary="Device verification: look a code up, or decide on it", response_class=HTMLResponse,
                         responses={**json_errors(400, *COMMON_ERRORS), **html_errors(400, 401, 403)},
                         openapi_extra=VERIFICATION_FORM)
