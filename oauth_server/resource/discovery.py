"""Where an issuer's metadata lives, fetching it, and checking it before any key is trusted.

Two well-known rules, as the mcp-auth documentation spells them out for ``fetchServerConfig``:

* OAuth 2.0 (RFC 8414 §3.1): the well-known segment is inserted between the host and the
  issuer's path: ``https://auth.example/tenant`` →
  ``https://auth.example/.well-known/oauth-authorization-server/tenant``.
* OpenID Connect (Discovery 1.0 §4.1): it is appended to the issuer:
  ``https://auth.example/tenant/.well-known/openid-configuration``.

Whichever way the document arrives (either rule, a given well-known URL, or metadata the
operator wrote down), the ``issuer`` it names must equal the configured issuer exactly
(RFC 8414 §3.3, Discovery §4.3): a document for another issuer would make us trust its keys.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

from oauth_server.fetch import Fetcher, FetchError
from oauth_server.resource.verified import VerifierUnavailable

logger = logging.getLogger("oauth_server.resource")

MetadataKind = Literal["oauth", "oidc"]
#: Operator code run on the fetched document before it is checked (mcp-auth's ``transpileData``):
#: fills in what a provider omits or renames. It receives a copy and returns the document to use.
Transform = Callable[[dict[str, Any]], Mapping[str, Any]]


def check_issuer_url(issuer: str) -> None:
    """RFC 8414 §2: an issuer is an https URL with no query or fragment (http only for local dev,
    which the fetch policy decides)."""
    parts = urlsplit(issuer)
    if parts.scheme not in ("https", "http") or not parts.netloc:
        raise ValueError(f"issuer must be an absolute https URL, got {issuer!r}")
    if parts.query or parts.fragment or "#" in issuer or "?" in issuer:
        raise ValueError(f"issuer must not have a query or fragment, got {issuer!r}")


def oauth_metadata_url(issuer: str) -> str:
    """RFC 8414 §3.1: ``/.well-known/oauth-authorization-server`` inserted before the path
    (a terminating slash of the issuer is removed first)."""
    parts = urlsplit(issuer)
    return f"{parts.scheme}://{parts.netloc}/.well-known/oauth-authorization-server{parts.path.rstrip('/')}"


def oidc_metadata_url(issuer: str) -> str:
    """OpenID Connect Discovery 1.0 §4.1: ``/.well-known/openid-configuration`` appended to the
    issuer (without doubling its terminating slash)."""
    return f"{issuer.rstrip('/')}/.well-known/openid-configuration"


def metadata_url(issuer: str, kind: MetadataKind) -> str:
    return oidc_metadata_url(issuer) if kind == "oidc" else oauth_metadata_url(issuer)


@dataclass(frozen=True, slots=True)
class IssuerMetadata:
    """The parts of an issuer's metadata a resource server uses."""

    issuer: str
    #: RFC 8414 §2 ``jwks_uri``: the keys its JWT access tokens are signed with.
    jwks_uri: str | None
    #: RFC 8414 §2 / RFC 7662 ``introspection_endpoint``: where opaque tokens are checked.
    introspection_endpoint: str | None
    document: Mapping[str, Any]


def _optional_url(document: Mapping[str, Any], name: str) -> str | None:
    value = document.get(name)
    if value is None:
        return None
    parts = urlsplit(value) if isinstance(value, str) else None
    if parts is None or parts.scheme not in ("https", "http") or not parts.netloc or parts.fragment:
        raise ValueError(f"{name} must be an absolute URL")
    return str(value)


def parse_metadata(document: object, issuer: str) -> IssuerMetadata:
    """Check a metadata document against the configured ``issuer``; ValueError says why not.

    RFC 8414 §3.3: "The issuer value returned MUST be identical to the authorization server's
    issuer identifier value" — compared as strings, so a trailing slash is a different issuer.
    """
    if not isinstance(document, Mapping):
        raise ValueError("metadata is not a JSON object")
    if document.get("issuer") != issuer:
        raise ValueError(f"metadata names issuer {document.get('issuer')!r}, expected {issuer!r}")
    return IssuerMetadata(
        issuer=issuer,
        jwks_uri=_optional_url(document, "jwks_uri"),
        introspection_endpoint=_optional_url(document, "introspection_endpoint"),
        document=dict(document),
    )


async def fetch_metadata(
    fetcher: Fetcher,
    issuer: str,
    *,
    kind: MetadataKind = "oauth",
    well_known_url: str | None = None,
    transform: Transform | None = None,
) -> IssuerMetadata:
    """Fetch the issuer's metadata (``well_known_url``, or the ``kind`` rule), transform, check.

    Any failure is ``VerifierUnavailable``: without the metadata no token can be judged, and a
    document that fails the checks is a misconfiguration or an attack, never a reason to trust.
    """
    url = well_known_url or metadata_url(issuer, kind)
    try:
        result = await fetcher.get_json(url)
    except FetchError as exc:
        logger.warning("issuer metadata %s could not be fetched: %s", url, exc)
        raise VerifierUnavailable(f"metadata of {issuer} is unavailable") from exc
    document = result.body
    if transform is not None and isinstance(document, Mapping):
        try:
            document = transform(dict(document))
        except Exception as exc:  # operator code: a bug there is an outage to log, not a 500
            logger.exception("the metadata transform for %s failed", issuer)
            raise VerifierUnavailable(f"metadata of {issuer} could not be transformed") from exc
    try:
        return parse_metadata(document, issuer)
    except ValueError as exc:
        logger.error("issuer metadata %s refused: %s", url, exc)
        raise VerifierUnavailable(f"metadata of {issuer} is invalid") from exc
