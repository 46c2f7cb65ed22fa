"""The one guarded fetcher for every outbound request: issuer metadata, JWKS, introspection, CIMD.

Some of these URLs are chosen by strangers (a client ID metadata document URL and the
``jwks_uri`` inside it), so the fetcher is an SSRF boundary, built to
draft-ietf-oauth-client-id-metadata-document-02:

- https only (plain http to loopback in development, or anywhere when the operator allows it);
  no userinfo and no fragment in the URL;
- the host is resolved once and every address checked (``oauth_server.addresses``, §8.6); the
  request then goes to the checked address itself, with ``Host`` and the TLS server name (SNI and
  certificate verification) set to the host name, so a second DNS answer cannot swap it (DNS
  rebinding);
- redirects are refused, not followed (§5: "MUST NOT automatically follow HTTP redirects");
- one deadline covers resolution, connect, TLS and the whole body, so a server dripping one byte a
  second is cut off; the body is capped while it streams (§8.7 recommends 5 kilobytes);
- JSON only, parsed by ``oauth_server.json_input``; no cookies, no proxies from the environment,
  no compressed bodies (a small gzip body can inflate a thousandfold past the cap);
- a per-host rate limit, so nobody can aim this server at a third party;
- connections are pooled per host name and address, never shared between two names.

``cache_lifetime`` (from ``http_cache``) turns caching headers into how long a document may be kept;
the per-name connection pools are in ``fetch_pools``.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import socket
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from http.cookiejar import CookieJar, DefaultCookiePolicy
from typing import Any
from urllib.parse import quote_plus, urlsplit

import certifi
import httpx

from oauth_server import addresses
from oauth_server.fetch_pools import PoolPerServerName
from oauth_server.http_cache import cache_lifetime
from oauth_server.json_input import JSONInputError, loads

__all__ = ["FetchError", "FetchPolicy", "FetchRefused", "FetchResult", "Fetcher", "Resolver", "basic_authorization",
           "cache_lifetime", "default_resolver"]

Resolver = Callable[[str, int], Awaitable[list[str]]]
"""``(host, port)`` to the IP addresses it resolves to, as strings."""


@dataclass(frozen=True, slots=True)
class FetchPolicy:
    """What a ``Fetcher`` may reach. The defaults are for URLs chosen by strangers (CIMD).

    ``ca_bundle`` *replaces* the default trust store (certifi's Mozilla bundle, as httpx uses):
    an issuer on a private network is then trusted only under the operator's own CA. To trust both,
    concatenate the two PEM files. ``per_host_per_minute`` counts fetches per host name in this
    process; several workers each keep their own count.
    """

    allow_private: bool = False
    allow_loopback: bool = False
    allow_http: bool = False
    timeout: float = 5.0
    max_bytes: int = 5 * 1024
    ca_bundle: str | None = None
    per_host_per_minute: int = 30

    def __post_init__(self) -> None:
        if not (self.timeout > 0 and self.max_bytes > 0 and self.per_host_per_minute > 0):
            raise ValueError("timeout, max_bytes and per_host_per_minute must be positive")


@dataclass(frozen=True, slots=True)
class FetchResult:
    status: int
    headers: Mapping[str, str]  # lower-cased names
    body: Any  # parsed by oauth_server.json_input.loads


class FetchError(Exception):
    """The fetch failed. ``str(error)`` (also ``.reason``) is short and safe to log: it never holds
    a response body, a form field or a credential. ``.status`` is the HTTP status, if one came."""

    def __init__(self, reason: str, *, status: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


class FetchRefused(FetchError):
    """The policy said no: scheme, URL form, address, redirect, rate limit, size or content type."""


@dataclass(frozen=True, slots=True)
class _Target:
    url: httpx.URL
    host: str  # ASCII (IDNA) host name or IP address, lower case, no brackets
    netloc: str  # the Host header: host[:port]
    port: int
    literal: bool  # the host is an IP address


async def default_resolver(host: str, port: int) -> list[str]:
    """The system resolver, without blocking the event loop."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


class Fetcher:
    """Guarded GET of JSON documents and POST of forms (RFC 7662 introspection).

    One pooled ``httpx.AsyncClient``, created on first use; ``aclose`` releases it. ``resolver``
    and ``transport`` replace the system resolver and the network (tests inject both; an injected
    transport does its own TLS, so ``ca_bundle`` does not apply to it). ``clock`` drives the
    rate limit.
    """

    def __init__(self, policy: FetchPolicy = FetchPolicy(), *, resolver: Resolver | None = None,
                 transport: httpx.AsyncBaseTransport | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.policy = policy
        self._resolve = resolver or default_resolver
        self._transport = transport
        self._clock = clock
        self._client: httpx.AsyncClient | None = None
        self._recent: dict[str, collections.deque[float]] = {}
        self._sweep_at = 1024

    async def get_json(self, url: str, *, max_bytes: int | None = None) -> FetchResult:
        """GET a JSON document (``application/json`` or ``application/*+json``, RFC 6839 §3.1)."""
        return await self._fetch("GET", url, max_bytes=max_bytes, form=None, basic_auth=None)

    async def post_form(self, url: str, form: Mapping[str, str], *, basic_auth: tuple[str, str] | None = None,
                        max_bytes: int | None = None) -> FetchResult:
        """POST ``form`` urlencoded, optionally with HTTP Basic client authentication
        (RFC 6749 §2.3.1), and parse the JSON answer (RFC 7662 §2.2)."""
        return await self._fetch("POST", url, max_bytes=max_bytes, form=form, basic_auth=basic_auth)

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def _fetch(self, method: str, url: str, *, max_bytes: int | None, form: Mapping[str, str] | None,
                     basic_auth: tuple[str, str] | None) -> FetchResult:
        target = self._check_url(url)
        self._count(target.host)
        limit = self.policy.max_bytes if max_bytes is None else max_bytes
        try:
            async with asyncio.timeout(self.policy.timeout):
                checked = await self._checked_addresses(target)
                for address in checked[:-1]:
                    try:  # RFC 8305 in its simplest form: the next checked address if one refuses
                        return await self._send(method, target, address, limit, form, basic_auth)
                    except httpx.ConnectError:
                        continue
                return await self._send(method, target, checked[-1], limit, form, basic_auth)
        except (TimeoutError, httpx.TimeoutException):
            raise FetchError(f"no complete answer within {self.policy.timeout:g} seconds") from None
        except httpx.HTTPError as exc:
            raise FetchError(_transport_reason(exc)) from None

    def _check_url(self, url: str) -> _Target:
        if any(ord(c) < 0x21 or c in "\\\x7f" for c in url) or "#" in url:
            raise FetchRefused("the URL has a fragment, a space, a control character or a backslash")
        try:
            parsed = httpx.URL(url)
        except httpx.InvalidURL:
            raise FetchRefused("the URL is not valid") from None
        if parsed.scheme not in ("https", "http") or not parsed.raw_host:
            raise FetchRefused("the URL must be an absolute https URL")
        if "@" in urlsplit(url).netloc or parsed.userinfo:
            raise FetchRefused("the URL must not contain userinfo")
        host = parsed.raw_host.decode("ascii").lower().rstrip(".")
        if not host:
            raise FetchRefused("the URL must name a host")
        if parsed.scheme == "http" and not (self.policy.allow_http or self.policy.allow_loopback):
            raise FetchRefused("the URL must use https")
        port = parsed.port or (443 if parsed.scheme == "https" else 80)
        return _Target(parsed, host, parsed.netloc.decode("ascii"), port, addresses.parse(host) is not None)

    def _count(self, host: str) -> None:
        """Sliding one-minute window of fetches per host name, in this process."""
        now = self._clock()
        recent = self._recent.setdefault(host, collections.deque())
        while recent and recent[0] <= now - 60:
            recent.popleft()
        if len(recent) >= self.policy.per_host_per_minute:
            raise FetchRefused(f"more than {self.policy.per_host_per_minute} fetches a minute to this host")
        recent.append(now)
        if len(self._recent) > self._sweep_at:  # forget hosts not fetched in the last minute
            self._recent = {h: r for h, r in self._recent.items() if r and r[-1] > now - 60}
            self._sweep_at = max(1024, 2 * len(self._recent))

    async def _checked_addresses(self, target: _Target) -> list[str]:
        """Resolve once, refuse if any address is refused, and return them all to try in order
        (``localhost`` may resolve to ``::1`` first while the server listens on 127.0.0.1)."""
        if target.literal:
            found = [target.host]
        else:
            try:
                found = list(dict.fromkeys(await self._resolve(target.host, target.port)))
            except OSError:
                raise FetchError("the host name does not resolve") from None
            if not found:
                raise FetchError("the host name does not resolve")
        policy = self.policy
        for text in found:
            address = addresses.parse(text)
            if address is None:
                raise FetchRefused("the resolver returned something that is not an IP address")
            refusal = addresses.refusal(address, allow_private=policy.allow_private,
                                        allow_loopback=policy.allow_loopback)
            if refusal is not None:
                raise FetchRefused(refusal)
            if target.url.scheme == "http" and not policy.allow_http and addresses.classify(address) != "loopback":
                raise FetchRefused("plain http is allowed only to loopback addresses")
        return found

    async def _send(self, method: str, target: _Target, address: str, limit: int,
                    form: Mapping[str, str] | None, basic_auth: tuple[str, str] | None) -> FetchResult:
        headers = {"Host": target.netloc, "Accept": "application/json", "Accept-Encoding": "identity",
                   "User-Agent": "oauth_server"}
        if basic_auth is not None:
            headers["Authorization"] = basic_authorization(*basic_auth)
        tls_name = target.url.scheme == "https" and not target.literal
        extensions = {"sni_hostname": target.host} if tls_name else {}
        client = self._http_client()
        request = client.build_request(method, target.url.copy_with(host=address), headers=headers,
                                       data=form, extensions=extensions)
        response = await client.send(request, stream=True)
        try:
            status = response.status_code
            if 300 <= status < 400:
                raise FetchRefused(f"redirects are not followed (status {status})", status=status)
            if not 200 <= status < 300:
                raise FetchError(f"the server answered with status {status}", status=status)
            if response.headers.get("content-encoding", "identity").lower() != "identity":
                raise FetchRefused("compressed responses are refused", status=status)
            if method == "GET" and not _is_json(response.headers.get("content-type", "")):
                raise FetchRefused("the response is not JSON (content type)", status=status)
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > limit:
                raise FetchRefused(f"the response is larger than {limit} bytes", status=status)
            body = await _read_capped(response.aiter_bytes(), limit, status)
        finally:
            await response.aclose()
        try:
            parsed = loads(body, max_bytes=limit)
        except JSONInputError as exc:
            raise FetchError(str(exc), status=status) from None
        return FetchResult(status, dict(response.headers.items()), parsed)

    def _http_client(self) -> httpx.AsyncClient:
        if self._client is None:
            transport = self._transport
            if transport is None:
                context = ssl.create_default_context(cafile=self.policy.ca_bundle or certifi.where())
                transport = PoolPerServerName(context)
            self._client = httpx.AsyncClient(
                transport=transport, trust_env=False, follow_redirects=False,
                timeout=httpx.Timeout(self.policy.timeout),
                # Requests go to IP addresses, so a cookie set by one host would be sent to every
                # other host on that address: the jar accepts none.
                cookies=CookieJar(DefaultCookiePolicy(allowed_domains=[])))
        return self._client


def basic_authorization(client_id: str, client_secret: str) -> str:
    """RFC 6749 §2.3.1: id and secret are each form-urlencoded (Appendix B), then joined for
    HTTP Basic (RFC 7617), so a ``:`` in the id survives."""
    pair = f"{quote_plus(client_id)}:{quote_plus(client_secret)}"
    return "Basic " + base64.b64encode(pair.encode("ascii")).decode("ascii")


def _is_json(content_type: str) -> bool:
    media_type = content_type.split(";", 1)[0].strip().lower()
    kind, _, subtype = media_type.partition("/")
    return kind == "application" and (subtype == "json" or (subtype.endswith("+json") and len(subtype) > 5))


async def _read_capped(chunks: AsyncIterator[bytes], limit: int, status: int) -> bytes:
    """Read the body, stopping as soon as it passes ``limit`` (the caller then closes the connection)."""
    body = bytearray()
    async for chunk in chunks:
        body += chunk
        if len(body) > limit:
            raise FetchRefused(f"the response is larger than {limit} bytes", status=status)
    return bytes(body)


def _transport_reason(exc: httpx.HTTPError) -> str:
    """A short reason for a network failure. The TLS case is named, as it is the one operators fix."""
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, ssl.SSLCertVerificationError):
            return "the server's TLS certificate was not accepted"
        cause = cause.__cause__ or cause.__context__
    if isinstance(exc, httpx.ConnectError):
        return "could not connect to the server"
    return f"the exchange with the server failed ({type(exc).__name__})"
