"""The fetcher's policy, one rule per test, with an injected resolver and a guarded mock transport.

draft-ietf-oauth-client-id-metadata-document-02 §8.6 (no special-use addresses, RFC 6890), §5
(no redirects), §8.7 (size). The transport answers like a server but sends nothing, and FAILS
THE TEST if it is ever asked to connect anywhere but the two public test addresses: every
refusal below happens before it is called.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx
import pytest

from oauth_server import addresses
from oauth_server.fetch import (
    Fetcher,
    FetchError,
    FetchPolicy,
    FetchRefused,
    basic_authorization,
    cache_lifetime,
    default_resolver,
)
from tests.helpers import FrozenClock

PUBLIC_V4 = "93.184.216.34"
PUBLIC_V6 = "2606:2800:220:1:248:1893:25c8:1946"

Answer = Callable[[httpx.Request], httpx.Response]


def json_answer(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json={"issuer": "https://as.example"})


@dataclass
class Guarded:
    """An ``httpx.MockTransport`` that fails the test on any request not pinned to a public test address."""

    answer: Answer = json_answer
    requests: list[httpx.Request] = field(default_factory=list)

    def handle(self, request: httpx.Request) -> httpx.Response:
        if request.url.host not in (PUBLIC_V4, PUBLIC_V6):
            pytest.fail(f"the transport was asked to connect to {request.url.host!r}")
        self.requests.append(request)
        return self.answer(request)

    @property
    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)


@dataclass
class Resolver:
    """Answers from a table, counting the questions."""

    table: dict[str, list[str]]
    asked: list[tuple[str, int]] = field(default_factory=list)

    async def __call__(self, host: str, port: int) -> list[str]:
        self.asked.append((host, port))
        return list(self.table[host])


def fetcher(guarded: Guarded, resolver: Resolver | None = None, policy: FetchPolicy | None = None) -> Fetcher:
    return Fetcher(policy or FetchPolicy(), resolver=resolver or Resolver({}), transport=guarded.transport)


# --- refused addresses: as IP literals and as what a name resolves to -----------------------------

REFUSED = [
    "127.0.0.1", "169.254.169.254", "::1", "::ffff:10.0.0.1", "::ffff:127.0.0.1", "0.0.0.0", "::",
    "224.0.0.1", "100.64.0.1", "64:ff9b::a00:1", "2002:a00:1::1", "10.0.0.5", "172.16.0.1", "192.168.1.1",
    "fc00::1", "fe80::1", "255.255.255.255", "240.0.0.1", "192.0.2.1", "2001:db8::1", "198.18.0.1",
    "2001:0:4136:e378:8000:63bf:3fff:fdd2", "::127.0.0.1", "ff02::1", "::ffff:169.254.169.254",
]


def literal(address: str) -> str:
    return f"[{address}]" if ":" in address else address


@pytest.mark.parametrize("address", REFUSED)
async def test_special_use_ip_literal_is_refused_before_the_transport(address: str) -> None:
    guarded, resolver = Guarded(), Resolver({})
    with pytest.raises(FetchRefused, match="resolves to a"):
        await fetcher(guarded, resolver).get_json(f"https://{literal(address)}/doc")
    assert guarded.requests == [] and resolver.asked == []  # literals need no resolution


@pytest.mark.parametrize("address", REFUSED)
async def test_name_resolving_to_a_special_use_address_is_refused_before_the_transport(address: str) -> None:
    guarded, resolver = Guarded(), Resolver({"evil.example": [address]})
    with pytest.raises(FetchRefused, match="resolves to a"):
        await fetcher(guarded, resolver).get_json("https://evil.example/doc")
    assert guarded.requests == [] and resolver.asked == [("evil.example", 443)]


@pytest.mark.parametrize("answers", [[PUBLIC_V4, "10.0.0.5"], ["10.0.0.5", PUBLIC_V4], [PUBLIC_V6, "::1"]])
async def test_one_refused_address_among_public_ones_refuses_the_name(answers: list[str]) -> None:
    guarded = Guarded()
    with pytest.raises(FetchRefused):
        await fetcher(guarded, Resolver({"mixed.example": answers})).get_json("https://mixed.example/doc")
    assert guarded.requests == []


async def test_resolver_answer_that_is_not_an_address_is_refused() -> None:
    guarded = Guarded()
    with pytest.raises(FetchRefused, match="not an IP address"):
        await fetcher(guarded, Resolver({"odd.example": ["localhost"]})).get_json("https://odd.example/")


async def test_unresolvable_name_is_an_error() -> None:
    async def fails(host: str, port: int) -> list[str]:
        raise OSError("Name or service not known")

    guarded = Guarded()
    with pytest.raises(FetchError, match="does not resolve"):
        await Fetcher(resolver=fails, transport=guarded.transport).get_json("https://nowhere.example/")
    with pytest.raises(FetchError, match="does not resolve"):
        await fetcher(guarded, Resolver({"empty.example": []})).get_json("https://empty.example/")


def test_allow_loopback_does_not_allow_private_and_neither_allows_link_local() -> None:
    def allowed(address: str, **policy: bool) -> bool:
        flags = {"allow_private": False, "allow_loopback": False, **policy}
        return addresses.refusal(ipaddress.ip_address(address), **flags) is None

    assert allowed("127.0.0.1", allow_loopback=True) and allowed("::ffff:127.0.0.1", allow_loopback=True)
    assert not allowed("127.0.0.1", allow_private=True)
    assert allowed("10.0.0.5", allow_private=True) and allowed("100.64.0.1", allow_private=True)
    assert allowed("64:ff9b::a00:1", allow_private=True)
    assert not allowed("10.0.0.5", allow_loopback=True)
    for never in ("169.254.169.254", "fe80::1", "224.0.0.1", "0.0.0.0", "::", "192.0.2.1",
                  "64:ff9b::7f00:1", "2002:7f00:1::1", "::127.0.0.1", "2001:0:4136:e378:8000:63bf:3fff:fdd2"):
        assert not allowed(never, allow_loopback=True, allow_private=True), never


@pytest.mark.parametrize(("address", "kind"), [
    ("93.184.216.34", "public"), (PUBLIC_V6, "public"),
    # IPv4-mapped: judged exactly as the embedded IPv4 address.
    ("::ffff:10.0.0.1", "private"), ("::ffff:127.0.0.1", "loopback"), ("::ffff:93.184.216.34", "public"),
    ("::ffff:169.254.169.254", "link-local"),
    # NAT64 (64:ff9b::/96) and 6to4 (2002::/16): the embedded IPv4's kind if public or private, else refused.
    ("64:ff9b::a00:1", "private"), ("64:ff9b::5db8:d822", "public"), ("64:ff9b::7f00:1", "translated"),
    ("64:ff9b::a9fe:a9fe", "translated"), ("2002:a00:1::1", "private"), ("2002:5db8:d822::1", "public"),
    ("2002:7f00:1::1", "translated"), ("64:ff9b:1::a00:1", "private"),
    # Teredo, IPv4-compatible (deprecated), scoped.
    ("2001:0:4136:e378:8000:63bf:3fff:fdd2", "translated"), ("::127.0.0.1", "reserved"), ("::5db8:d822", "reserved"),
    ("fe80::1%eth0", "scoped"),
    ("127.0.0.1", "loopback"), ("::1", "loopback"), ("169.254.169.254", "link-local"), ("fe80::1", "link-local"),
    ("0.0.0.0", "unspecified"), ("::", "unspecified"), ("255.255.255.255", "broadcast"),
    ("224.0.0.1", "multicast"), ("ff02::1", "multicast"), ("100.64.0.1", "private"), ("198.18.0.1", "private"),
    ("fd00::1", "private"), ("192.0.2.1", "documentation"), ("3fff::1", "documentation"),
    ("240.0.0.1", "reserved"), ("0.1.2.3", "reserved"), ("192.0.0.8", "reserved"), ("192.88.99.1", "reserved"),
    ("fec0::1", "reserved"), ("100::1", "reserved"), ("5f00::1", "reserved"), ("2001:10::1", "reserved"),
])
def test_address_kinds(address: str, kind: str) -> None:
    assert addresses.classify(ipaddress.ip_address(address)) == kind


# --- the URL's form -------------------------------------------------------------------------------

@pytest.mark.parametrize(("url", "reason"), [
    ("https://user@as.example/", "userinfo"),
    ("https://user:pw@as.example/", "userinfo"),
    ("https://@as.example/", "userinfo"),
    ("https://as.example/doc#frag", "fragment"),
    ("https://as.example/doc#", "fragment"),
    ("http://as.example/doc", "must use https"),
    ("ftp://as.example/doc", "absolute https"),
    ("file:///etc/passwd", "absolute https"),
    ("/relative/path", "absolute https"),
    ("https://as.example\\@127.0.0.1/", "backslash"),
    ("https://as.example/ doc", "space"),
    ("https://as.example/\ndoc", "control"),
])
async def test_url_form_is_refused_before_resolution_and_transport(url: str, reason: str) -> None:
    guarded, resolver = Guarded(), Resolver({"as.example": [PUBLIC_V4]})
    with pytest.raises(FetchRefused, match=reason):
        await fetcher(guarded, resolver).get_json(url)
    assert guarded.requests == [] and resolver.asked == []


async def test_plain_http_to_a_public_host_needs_allow_http() -> None:
    guarded, resolver = Guarded(), Resolver({"as.example": [PUBLIC_V4]})
    with pytest.raises(FetchRefused, match="only to loopback"):  # allow_loopback permits http to loopback only
        await fetcher(guarded, resolver, FetchPolicy(allow_loopback=True)).get_json("http://as.example/doc")
    assert guarded.requests == []
    result = await fetcher(guarded, resolver, FetchPolicy(allow_http=True)).get_json("http://as.example/doc")
    assert result.status == 200
    assert guarded.requests[0].url == httpx.URL(f"http://{PUBLIC_V4}/doc")
    assert "sni_hostname" not in guarded.requests[0].extensions


# --- what an allowed request looks like: pinned to the checked address ----------------------------

async def test_allowed_request_goes_to_the_checked_address_with_host_and_sni_set_to_the_name() -> None:
    guarded, resolver = Guarded(), Resolver({"as.example": [PUBLIC_V4]})
    result = await fetcher(guarded, resolver).get_json("https://AS.example:8443/.well-known/x?a=1&b=2")
    assert result.status == 200 and result.body == {"issuer": "https://as.example"}
    assert result.headers["content-type"] == "application/json"
    [request] = guarded.requests
    assert request.url == httpx.URL(f"https://{PUBLIC_V4}:8443/.well-known/x?a=1&b=2")
    assert request.headers["host"] == "as.example:8443"
    assert request.extensions["sni_hostname"] == "as.example"
    assert request.headers["accept-encoding"] == "identity"
    assert resolver.asked == [("as.example", 8443)]


async def test_ipv6_address_is_bracketed_in_the_pinned_url() -> None:
    guarded = Guarded()
    await fetcher(guarded, Resolver({"v6.example": [PUBLIC_V6]})).get_json("https://v6.example/doc")
    assert guarded.requests[0].url.netloc == f"[{PUBLIC_V6}]".encode()
    assert guarded.requests[0].headers["host"] == "v6.example"


async def test_international_name_is_resolved_and_verified_in_its_ascii_form() -> None:
    guarded, resolver = Guarded(), Resolver({"xn--bcher-kva.example": [PUBLIC_V4]})
    await fetcher(guarded, resolver).get_json("https://bücher.example/doc")
    assert guarded.requests[0].extensions["sni_hostname"] == "xn--bcher-kva.example"
    assert guarded.requests[0].headers["host"] == "xn--bcher-kva.example"


async def test_public_ip_literal_needs_no_resolution_and_sends_no_server_name() -> None:
    guarded, resolver = Guarded(), Resolver({})
    await fetcher(guarded, resolver).get_json(f"https://[{PUBLIC_V6}]/doc")
    assert resolver.asked == []
    assert "sni_hostname" not in guarded.requests[0].extensions
    assert guarded.requests[0].headers["host"] == f"[{PUBLIC_V6}]"


async def test_each_fetch_resolves_once_and_a_rebinding_answer_is_checked_again() -> None:
    """DNS rebinding: the second answer points inside; it is checked like the first, and the
    first request went to the address that was checked, not to a second lookup."""
    answers = iter([[PUBLIC_V4], ["127.0.0.1"]])

    async def rebinding(host: str, port: int) -> list[str]:
        return next(answers)

    guarded = Guarded()
    fetch = Fetcher(resolver=rebinding, transport=guarded.transport)
    await fetch.get_json("https://rebind.example/doc")
    with pytest.raises(FetchRefused, match="loopback"):
        await fetch.get_json("https://rebind.example/doc")
    assert [r.url.host for r in guarded.requests] == [PUBLIC_V4]


# --- redirects, statuses, cookies -----------------------------------------------------------------

@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
@pytest.mark.parametrize("location", ["http://169.254.169.254/latest/meta-data/", "https://[::1]/",
                                      "https://10.0.0.5/"])
async def test_redirect_is_refused_and_never_followed(status: int, location: str) -> None:
    guarded = Guarded(lambda request: httpx.Response(status, headers={"Location": location}))
    with pytest.raises(FetchRefused, match="redirects are not followed") as caught:
        await fetcher(guarded, Resolver({"as.example": [PUBLIC_V4]})).get_json("https://as.example/doc")
    assert caught.value.status == status
    assert len(guarded.requests) == 1  # the transport fails the test if the Location is tried


async def test_not_found_is_a_fetch_error_not_a_refusal() -> None:
    guarded = Guarded(lambda request: httpx.Response(404, json={"detail": "private"}))
    with pytest.raises(FetchError) as caught:
        await fetcher(guarded, Resolver({"as.example": [PUBLIC_V4]})).get_json("https://as.example/doc")
    assert type(caught.value) is FetchError and caught.value.status == 404
    assert str(caught.value) == caught.value.reason == "the server answered with status 404"


async def test_cookies_are_neither_kept_nor_sent() -> None:
    """Requests go to addresses, so a kept cookie would reach every name on the same address."""
    guarded = Guarded(lambda request: httpx.Response(200, json={}, headers={"Set-Cookie": "sid=1; Path=/"}))
    fetch = fetcher(guarded, Resolver({"a.example": [PUBLIC_V4], "b.example": [PUBLIC_V4]}))
    await fetch.get_json("https://a.example/doc")
    await fetch.get_json("https://b.example/doc")
    await fetch.get_json("https://a.example/doc")
    assert all("cookie" not in request.headers for request in guarded.requests)


async def test_size_cap_from_a_mock_body() -> None:
    guarded = Guarded(lambda request: httpx.Response(200, json={"x": "y" * 6000}))
    with pytest.raises(FetchRefused, match="larger than 5120 bytes"):
        await fetcher(guarded, Resolver({"as.example": [PUBLIC_V4]})).get_json("https://as.example/doc")


# --- rate limit (per host name, per process) ------------------------------------------------------

async def test_rate_limit_is_a_sliding_minute_per_host_name() -> None:
    clock = FrozenClock()
    guarded = Guarded()
    resolver = Resolver({"a.example": [PUBLIC_V4], "b.example": [PUBLIC_V4]})
    fetch = Fetcher(FetchPolicy(per_host_per_minute=3), resolver=resolver, transport=guarded.transport,
                    clock=clock)
    await fetch.get_json("https://a.example/doc")  # t = 0
    for _ in range(2):  # t = 20, 40
        clock.advance(20)
        await fetch.get_json("https://a.example/doc")
    with pytest.raises(FetchRefused, match="more than 3 fetches a minute"):
        await fetch.get_json("https://A.EXAMPLE.:443/other")  # the same host name, spelled differently
    await fetch.get_json("https://b.example/doc")  # another host has its own window
    clock.advance(20)  # the first fetch is now a minute old
    await fetch.get_json("https://a.example/doc")
    with pytest.raises(FetchRefused):
        await fetch.get_json("https://a.example/doc")
    assert len(resolver.asked) == 5  # a refused fetch does not even resolve


# --- the pieces -----------------------------------------------------------------------------------

def test_policy_defaults_suit_urls_chosen_by_strangers() -> None:
    policy = FetchPolicy()
    assert not (policy.allow_private or policy.allow_loopback or policy.allow_http)
    assert policy.timeout <= 5 and policy.max_bytes == 5 * 1024 and policy.ca_bundle is None
    assert policy.per_host_per_minute == 30
    with pytest.raises(ValueError, match="positive"):
        FetchPolicy(timeout=0)


def test_basic_authorization_form_urlencodes_both_parts() -> None:
    assert basic_authorization("a:b", "c d") == "Basic YSUzQWI6Yytk"  # base64("a%3Ab:c+d")


async def test_default_resolver_on_an_address_makes_no_query() -> None:
    assert await default_resolver("127.0.0.1", 443) == ["127.0.0.1"]


@pytest.mark.parametrize(("headers", "seconds"), [
    ({}, 300),
    ({"Cache-Control": "max-age=600"}, 600),
    ({"Cache-Control": "public, max-age=600, s-maxage=1200"}, 1200),
    ({"cache-control": 'max-age="900"'}, 900),
    ({"Cache-Control": "max-age=600, max-age=5"}, 600),  # RFC 9111 §4.2.1: the first one
    ({"Cache-Control": "max-age=600", "Age": "100"}, 500),
    ({"Cache-Control": "max-age=10"}, 60),  # floor
    ({"Cache-Control": "max-age=999999999"}, 86400),  # ceiling
    ({"Cache-Control": "no-store, max-age=600"}, 60),
    ({"Cache-Control": "no-cache"}, 60),
    ({"Cache-Control": "max-age=soon"}, 60),  # invalid: stale
    ({"Expires": "Thu, 01 Jan 2026 01:00:00 GMT", "Date": "Thu, 01 Jan 2026 00:00:00 GMT"}, 3600),
    ({"Expires": "0", "Date": "Thu, 01 Jan 2026 00:00:00 GMT"}, 60),  # RFC 9111 §5.3: already expired
    ({"Expires": "Thu, 01 Jan 2026 01:00:00 GMT"}, 300),  # no Date to measure from
    ({"Cache-Control": "max-age=7200", "Expires": "Thu, 01 Jan 2026 01:00:00 GMT",
      "Date": "Thu, 01 Jan 2026 00:00:00 GMT"}, 7200),  # max-age wins over Expires
])
def test_cache_lifetime(headers: dict[str, str], seconds: float) -> None:
    assert cache_lifetime(headers, floor=60, ceiling=86400, default=300) == seconds


def test_cache_lifetime_needs_ordered_bounds() -> None:
    with pytest.raises(ValueError, match="floor"):
        cache_lifetime({}, floor=10, ceiling=5, default=7)
