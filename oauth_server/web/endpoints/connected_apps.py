"""The connected-apps page (GET) and its form handler (POST): revoke a grant, or sign in.

Served only when the app passes ``get_user``: who the user is, the app decides. The rules (the
user's own grants only, another's answered as unknown, the anti-forgery tag) are in
``oauth_server.connected_apps``; the page has the consent page's framing and caching headers
(``templating.PAGE_HEADERS``) and its browser-binding cookie. A GET never changes anything.
"""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from oauth_server import connected_apps
from oauth_server.errors import InvalidRequest
from oauth_server.params import single
from oauth_server.web.context import RouterContext, read_form
from oauth_server.web.openapi import COMMON_ERRORS, form_body, html_errors, json_errors

CONNECTED_APPS_FORM = form_body({
    "csrf_token": "Anti-forgery token: HMAC under this browser's secret",
    "grant_id": "The grant to revoke; absent: only sign in (the app's get_user reads the form)",
}, required=("csrf_token",))


def path(ctx: RouterContext) -> str:
    return ctx.path("connected-apps")


def when(epoch: int | None) -> str:
    """A time as the page shows it, in UTC (the server does not know the user's zone)."""
    if epoch is None:
        return "not recorded"
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M UTC")


async def render(ctx: RouterContext, browser_secret: str, user: str | None,
                 error: str | None = None, status_code: int = 200) -> Response:
    apps = await ctx.server.list_grants(user) if user else []
    return ctx.templates.render(
        "oauth_server/connected_apps.html", status_code=status_code,
        apps=apps, user=user, error=error, when=when, action=path(ctx),
        csrf_token=connected_apps.form_token(browser_secret),
    )


def forbidden(ctx: RouterContext) -> Response:
    return ctx.templates.render(
        "oauth_server/error.html", status_code=403, error="invalid_request",
        description="this form was not shown to this browser; reload the page and try again",
    )


def add_routes(router: APIRouter, ctx: RouterContext) -> None:
    if ctx.get_user is None:
        return

    async def connected_apps_page(request: Request) -> Response:
        """The signed-in user's connected apps, each with a revoke button; else the sign-in."""
        secret = ctx.ensure_browser_secret(request)
        response = await render(ctx, secret, await ctx.current_user(request))
        ctx.set_browser_cookie(response, secret)
        return response

    async def connected_apps_form(request: Request) -> Response:
        """Revoke one of the user's grants (303 back to the page), or sign in (no ``grant_id``)."""
        await ctx.limit("connected_apps", request)
        secret = ctx.browser_secret(request)
        try:
            form = await read_form(request)
            csrf_token, grant_id = single(form, "csrf_token"), single(form, "grant_id")
        except InvalidRequest as exc:
            return ctx.templates.render("oauth_server/error.html", status_code=400, error=exc.error,
                                        description=exc.description)
        if secret is None or not connected_apps.form_is_valid(secret, csrf_token):
            return forbidden(ctx)
        user = await ctx.current_user(request)
        if not user:
            return await render(ctx, secret, None, error="Sign in to manage your connected apps.", status_code=401)
        if grant_id is not None and not await ctx.server.revoke_user_grant(user, grant_id):
            return await render(ctx, secret, user, status_code=404,
                                error="No such app is connected to your account; it may have been removed already.")
        return RedirectResponse(path(ctx), status_code=303)

    router.add_api_route(path(ctx), connected_apps_page, methods=["GET"], tags=["connected apps"],
                         summary="Connected apps page", response_class=HTMLResponse,
                         responses=json_errors(*COMMON_ERRORS))
    router.add_api_route(path(ctx), connected_apps_form, methods=["POST"], tags=["connected apps"],
                         summary="Revoke a connected app", response_class=RedirectResponse, status_code=303,
                         responses={**json_errors(*COMMON_ERRORS), **html_errors(400, 401, 403, 404)},
                         openapi_extra=CONNECTED_APPS_FORM)
