"""How a failed /authorize or consent request reaches the person or the client.

RFC 6749 §4.1.2.1 / RFC 9700 §4.11: an error goes back to the client's redirect URI only when
both the client and the URI are trusted; otherwise it is shown to the user and redirected nowhere.
"""

from __future__ import annotations

from starlette.responses import RedirectResponse, Response

from oauth_server.errors import AuthorizationFailed
from oauth_server.server import AuthorizationServer
from oauth_server.web.templating import Templates


def failure_response(server: AuthorizationServer, templates: Templates, failure: AuthorizationFailed) -> Response:
    """Redirect the error to the client when it can be trusted; otherwise show it to the user."""
    location = server.error_redirect(failure)
    if location is not None:
        return RedirectResponse(location, status_code=303)
    status = failure.error.status_code if failure.error.status_code != 401 else 400
    return templates.render(
        "oauth_server/error.html", status_code=status,
        error=failure.error.error, description=failure.error.description,
    )
