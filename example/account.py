"""The example's account page (``GET /account``) and logout (``POST /logout``).

The account page says who is signed in and links to the library's connected-apps page, where the
user sees and revokes what they approved (and signs in, if not yet). Logout is a POST with an
anti-forgery token bound to the session cookie itself (``SessionCookies.logout_token``): a
cross-site form cannot know it, and a SameSite=Lax cookie is not sent with a cross-site POST
anyway. Rendered with the library's ``Templates``, so the page gets the consent page's headers
(no framing, no caching).
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from example.sign_in import SignIn
from oauth_server.errors import InvalidRequest
from oauth_server.web.context import parse_params
from oauth_server.web.templating import Templates

ACCOUNT_PATH = "/account"
LOGOUT_PATH = "/logout"
CONNECTED_APPS_PATH = "/connected-apps"
#: The logout form has one field; a larger body is no form of ours.
MAX_FORM_BYTES = 4096


def add_account_routes(app: FastAPI, sign_in: SignIn, templates: Templates) -> None:
    sessions = sign_in.sessions

    @app.get(ACCOUNT_PATH, tags=["example"], response_class=HTMLResponse)
    async def account(request: Request) -> Response:
        """Who is signed in, a link to the connected apps, and the logout button."""
        cookie = request.cookies.get(sessions.name)
        user = sign_in.session_user(request)
        return templates.render(
            "example/account.html", user=user, connected_apps=CONNECTED_APPS_PATH, logout=LOGOUT_PATH,
            logout_token=sessions.logout_token(cookie) if user and cookie else "",
        )

    @app.post(LOGOUT_PATH, tags=["example"], status_code=303, response_class=RedirectResponse)
    async def logout(request: Request) -> Response:
        """End the sign-in in this browser: the cookie is removed (303 to the account page)."""
        cookie = request.cookies.get(sessions.name)
        if cookie is None:
            return RedirectResponse(ACCOUNT_PATH, status_code=303)  # nobody to sign out
        body = await request.body()
        try:
            form = parse_params(body) if len(body) <= MAX_FORM_BYTES else {}
        except InvalidRequest:
            form = {}
        tokens = form.get("csrf_token", [])
        if len(tokens) != 1 or not sessions.logout_token_matches(cookie, tokens[0]):
            return templates.render("oauth_server/error.html", status_code=403, error="invalid_request",
                                    description="this logout form was not shown to this browser; reload the page")
        response = RedirectResponse(ACCOUNT_PATH, status_code=303)
        response.headers.append("set-cookie", sessions.clear_cookie_header())
        return response
