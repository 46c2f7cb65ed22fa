"""How long a fetched document may be reused, from its HTTP caching headers (RFC 9111)."""

from __future__ import annotations

from collections.abc import Mapping
from email.utils import parsedate_to_datetime


def cache_lifetime(headers: Mapping[str, str], *, floor: float, ceiling: float, default: float) -> float:
    """Seconds a fetched document may be reused, from its caching headers, kept in [floor, ceiling].

    RFC 9111 §4.2.1, read as a shared cache, since one fetched document serves every user:
    ``s-maxage`` before ``max-age`` (§5.2.2.10), else ``Expires`` minus ``Date`` (§5.3), less
    ``Age`` (§5.1). ``no-store`` and ``no-cache`` (§5.2.2.4, §5.2.2.5) give ``floor``, which is the
    caller's guard against refetching on every request (draft-ietf-oauth-client-id-metadata-document
    §5.2 lets the server bound lifetimes). A value that does not parse counts as stale (§4.2.1,
    §5.3): ``floor`` again. Without any of these headers: ``default``.
    """
    if not 0 <= floor <= ceiling:
        raise ValueError("cache lifetimes need 0 <= floor <= ceiling")
    lower = {name.lower(): value for name, value in headers.items()}
    directives: dict[str, str] = {}
    for item in lower.get("cache-control", "").split(","):
        name, _, value = item.partition("=")
        directives.setdefault(name.strip().lower(), value.strip().strip('"'))  # the first one counts
    lifetime: float
    if "no-store" in directives or "no-cache" in directives:
        return floor
    if "s-maxage" in directives or "max-age" in directives:
        value = directives.get("s-maxage", directives.get("max-age", ""))
        lifetime = int(value) if value.isdigit() else 0
    elif "expires" in lower and "date" in lower:
        try:
            expires, date = parsedate_to_datetime(lower["expires"]), parsedate_to_datetime(lower["date"])
            lifetime = (expires - date).total_seconds()
        except (TypeError, ValueError):  # "Expires: 0" and other invalid dates mean already expired
            lifetime = 0
    else:
        lifetime = default
    age = lower.get("age", "").strip()
    if age.isdigit():
        lifetime -= int(age)
    return min(max(lifetime, floor), ceiling)
