"""Request parameters as the rules see them: every name maps to all the values it was sent with.

RFC 6749 §3.1 and §3.2: "Request and response parameters MUST NOT be included more than once."
The web layer parses a query string or form body into ``Params``; the rules decide, one name at a
time, whether a repetition is an error, so there is exactly one place that says so.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from oauth_server.errors import InvalidRequest

Params = Mapping[str, Sequence[str]]


def single(params: Params, name: str) -> str | None:
    """The one value of ``name``, None when absent; ``invalid_request`` when repeated."""
    values = params.get(name) or ()
    if len(values) > 1:
        raise InvalidRequest(f"{name} must not be repeated")
    return values[0] if values else None
