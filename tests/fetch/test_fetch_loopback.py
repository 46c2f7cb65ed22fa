"""The fetcher against real sockets, on 127.0.0.1 only: TLS name checks on a pinned address,
the size cap while streaming, the total deadline, content types, statuses, the rate limit and
RFC 6749 §2.3.1 client authentication. Nothing here sends a packet beyond loopback."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import socket
import ssl
import time
import traceback
from pathlib import Path
from urllib.parse import parse_qs, unquote_plus

import pytest

from oauth_server.fetch import Fetcher, FetchError, FetchPolicy, FetchRefused
from oauth_server.fetch_pools import PoolPerServerName
from tests.fetch.certs import ThrowawayCA
from tests.fetch.loopback import LoopbackServer, Received, answer, response
from tests.helpers import FrozenClock

DEV = FetchPolicy(allow_loopback=True, timeout=2.0)


async def loopback_names(host: str, port: int) -> list[str]:
    """Every name the https tests use lives on 127.0.0.1; nothing is asked of real DNS."""
    assert host in ("localhost", "alias.localhost"), host
    return ["127.0.0.1"]


@pytest.fixture
def ca(tmp_path: Path) -> ThrowawayCA:
    return ThrowawayCA.create(tmp_path)


# --- TLS: the request goes to the address, the certificate is checked for the name ---------------

async def test_tls_certificate_is_checked_for_the_host_name_not_the_pinned_address(ca: ThrowawayCA) -> None:
    """The leaf names only DNS:localhost, no IP: success proves hostname checking used the
    ``sni_hostname`` extension while the socket went to 127.0.0.1."""
    async with LoopbackServer(answer(200, b'{"ok": true}'), ca.server_context("localhost")) as server:
        fetcher = Fetcher(FetchPolicy(allow_loopback=True, ca_bundle=ca.pem_path), resolver=loopback_names)
        result = await fetcher.get_json(f"https://localhost:{server.port}/doc?x=1")
        await fetcher.aclose()
    assert result.status == 200 and result.body == {"ok": True}
    assert server.server_names == ["localhost"]
    assert server.received[0].headers["host"] == f"localhost:{server.port}"
    assert server.received[0].target == "/doc?x=1"


async def test_tls_certificate_for_another_name_is_refused_even_if_it_names_the_address(ca: ThrowawayCA) -> None:
    context = ca.server_context("other.example", addresses=("127.0.0.1",))
    async with LoopbackServer(answer(200), context) as server:
        fetcher = Fetcher(FetchPolicy(allow_loopback=True, ca_bundle=ca.pem_path), resolver=loopback_names)
        with pytest.raises(FetchError, match="TLS certificate was not accepted"):
            await fetcher.get_json(f"https://localhost:{server.port}/doc")
        await fetcher.aclose()
    assert server.received == []


async def test_tls_without_the_ca_bundle_the_test_ca_is_not_trusted(ca: ThrowawayCA) -> None:
    async with LoopbackServer(answer(200), ca.server_context("localhost")) as server:
        fetcher = Fetcher(FetchPolicy(allow_loopback=True), resolver=loopback_names)
        with pytest.raises(FetchError, match="TLS certificate was not accepted"):
            await fetcher.get_json(f"https://localhost:{server.port}/doc")
        await fetcher.aclose()


async def test_tls_connections_are_pooled_per_host_name_not_per_address(ca: ThrowawayCA) -> None:
    """Two names on one address (a CDN) never share a connection verified for the other name;
    one name reuses its own."""
    context = ca.server_context("localhost", "alias.localhost")
    async with LoopbackServer(answer(200), context) as server:
        fetcher = Fetcher(FetchPolicy(allow_loopback=True, ca_bundle=ca.pem_path), resolver=loopback_names)
        for host in ("localhost", "localhost", "alias.localhost", "alias.localhost"):
            await fetcher.get_json(f"https://{host}:{server.port}/doc")
        await fetcher.aclose()
    assert server.server_names == ["localhost", "alias.localhost"]
    assert server.connections == 2
    assert [r.headers["host"].split(":")[0] for r in server.received] == [
        "localhost", "localhost", "alias.localhost", "alias.localhost"]


# --- size cap while streaming, total deadline -------------------------------------------------------

async def test_size_cap_stops_reading_a_10_mb_body_while_it_streams() -> None:
    """No Content-Length, so only the streaming cap can stop it: the server sees the connection
    closed long before it could send 10 MB."""
    total = 10 * 1024 * 1024
    sent = 0
    finished = asyncio.Event()

    async def flood(received: Received, writer: asyncio.StreamWriter) -> None:
        nonlocal sent
        writer.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 16384)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n")
        chunk = b"[" + b"0," * 32767 + b"0"
        try:
            while sent < total:
                writer.write(chunk)
                await writer.drain()
                sent += len(chunk)
        except ConnectionError:
            pass
        finally:
            finished.set()
            writer.close()

    async with LoopbackServer(flood) as server:
        fetcher = Fetcher(DEV)
        started = time.monotonic()
        with pytest.raises(FetchRefused, match="larger than 5120 bytes"):
            await fetcher.get_json(f"http://127.0.0.1:{server.port}/big")
        await asyncio.wait_for(finished.wait(), 5)
        await fetcher.aclose()
    assert time.monotonic() - started < 5
    assert sent < 1024 * 1024, sent  # of 10 MB


async def test_declared_content_length_over_the_cap_is_refused_before_the_body() -> None:
    async def declare(received: Received, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 10485760\r\n\r\n")
        await writer.drain()
        await asyncio.sleep(10)

    async with LoopbackServer(declare) as server:
        fetcher = Fetcher(DEV)
        with pytest.raises(FetchRefused, match="larger than 100 bytes"):
            await fetcher.get_json(f"http://127.0.0.1:{server.port}/big", max_bytes=100)
        await fetcher.aclose()


async def test_max_bytes_per_call_raises_the_cap() -> None:
    body = json.dumps({"keys": ["k" * 100] * 100}).encode()
    async with LoopbackServer(answer(200, body, "application/jwk-set+json")) as server:
        fetcher = Fetcher(DEV)
        with pytest.raises(FetchRefused):
            await fetcher.get_json(f"http://127.0.0.1:{server.port}/jwks")
        result = await fetcher.get_json(f"http://127.0.0.1:{server.port}/jwks", max_bytes=64 * 1024)
        await fetcher.aclose()
    assert len(result.body["keys"]) == 100


async def test_slow_drip_is_cut_at_the_total_deadline() -> None:
    """Each byte arrives well within the per-read timeout; only a deadline over the whole
    exchange stops it (a one-byte-a-second drip is the slower case of the same thing)."""
    async def drip(received: Received, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n")
        for _ in range(40):  # then stall, so a missing deadline fails this test quickly
            writer.write(b" ")
            await writer.drain()
            await asyncio.sleep(0.1)

    async with LoopbackServer(drip) as server:
        fetcher = Fetcher(FetchPolicy(allow_loopback=True, timeout=0.5))
        started = time.monotonic()
        with pytest.raises(FetchError, match=r"no complete answer within 0\.5 seconds"):
            await fetcher.get_json(f"http://127.0.0.1:{server.port}/slow")
        elapsed = time.monotonic() - started
        await fetcher.aclose()
    assert 0.4 < elapsed < 1.5


async def test_silent_server_is_cut_at_the_deadline() -> None:
    async def silent(received: Received, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(10)

    async with LoopbackServer(silent) as server:
        fetcher = Fetcher(FetchPolicy(allow_loopback=True, timeout=0.3))
        with pytest.raises(FetchError, match="no complete answer"):
            await fetcher.get_json(f"http://127.0.0.1:{server.port}/silent")
        await fetcher.aclose()


# --- what the answer must look like -----------------------------------------------------------------

@pytest.mark.parametrize("content_type", ["text/html", "text/plain; charset=utf-8", "application/jsonp",
                                          "application/+json", ""])
async def test_get_json_refuses_a_non_json_content_type(content_type: str) -> None:
    async with LoopbackServer(answer(200, b"{}", content_type)) as server:
        fetcher = Fetcher(DEV)
        with pytest.raises(FetchRefused, match="not JSON"):
            await fetcher.get_json(f"http://127.0.0.1:{server.port}/doc")
        await fetcher.aclose()


@pytest.mark.parametrize("content_type", ["application/json", "Application/JSON; charset=utf-8",
                                          "application/jwk-set+json", "application/oauth-authz-req+json"])
async def test_get_json_accepts_json_and_structured_json_types(content_type: str) -> None:
    async with LoopbackServer(answer(200, b'{"a": 1}', content_type)) as server:
        fetcher = Fetcher(DEV)
        result = await fetcher.get_json(f"http://127.0.0.1:{server.port}/doc")
        await fetcher.aclose()
    assert result.body == {"a": 1}
    assert result.headers["content-type"] == content_type


async def test_compressed_bodies_are_refused_and_identity_is_asked_for() -> None:
    handler = answer(200, b"\x1f\x8b...", extra={"Content-Encoding": "gzip"})
    async with LoopbackServer(handler) as server:
        fetcher = Fetcher(DEV)
        with pytest.raises(FetchRefused, match="compressed"):
            await fetcher.get_json(f"http://127.0.0.1:{server.port}/doc")
        await fetcher.aclose()
    assert server.received[0].headers["accept-encoding"] == "identity"


@pytest.mark.parametrize("status", [400, 401, 404, 500, 503])
async def test_non_2xx_status_is_an_error_carrying_the_status_but_not_the_body(status: int) -> None:
    async with LoopbackServer(answer(status, b'{"error": "secret-detail-in-body"}')) as server:
        fetcher = Fetcher(DEV)
        with pytest.raises(FetchError) as caught:
            await fetcher.get_json(f"http://127.0.0.1:{server.port}/doc")
        await fetcher.aclose()
    assert caught.value.status == status
    assert not isinstance(caught.value, FetchRefused)
    assert "secret-detail-in-body" not in str(caught.value)


async def test_invalid_json_is_an_error_from_json_input() -> None:
    async with LoopbackServer(answer(200, b'{"a": 1, "a": 2}')) as server:
        fetcher = Fetcher(DEV)
        with pytest.raises(FetchError, match="names the member a twice"):
            await fetcher.get_json(f"http://127.0.0.1:{server.port}/doc")
        await fetcher.aclose()


# --- rate limit -----------------------------------------------------------------------------------

async def test_rate_limit_refuses_the_31st_fetch_to_a_host_within_a_minute() -> None:
    clock = FrozenClock()
    async with LoopbackServer(answer(200)) as server:
        fetcher = Fetcher(DEV, clock=clock)
        url = f"http://127.0.0.1:{server.port}/doc"
        for _ in range(30):
            await fetcher.get_json(url)
        with pytest.raises(FetchRefused, match="more than 30 fetches a minute"):
            await fetcher.get_json(url)
        assert len(server.received) == 30
        clock.advance(60)
        await fetcher.get_json(url)
        await fetcher.aclose()
    assert len(server.received) == 31


# --- post_form: RFC 7662 introspection with RFC 6749 §2.3.1 client authentication ------------------

CLIENT_ID = "client id:with/odd+chars"
CLIENT_SECRET = "s3cret: &=+/%é~"


async def test_post_form_sends_a_urlencoded_form_and_basic_auth_encoded_per_rfc6749_2_3_1() -> None:
    async with LoopbackServer(answer(200, b'{"active": true}')) as server:
        fetcher = Fetcher(DEV)
        result = await fetcher.post_form(f"http://127.0.0.1:{server.port}/introspect",
                                         {"token": "abc def&x=y", "token_type_hint": "access_token"},
                                         basic_auth=(CLIENT_ID, CLIENT_SECRET))
        await fetcher.aclose()
    assert result.body == {"active": True}
    received = server.received[0]
    assert received.method == "POST"
    assert received.headers["content-type"] == "application/x-www-form-urlencoded"
    assert parse_qs(received.body.decode("ascii"), strict_parsing=True) == {
        "token": ["abc def&x=y"], "token_type_hint": ["access_token"]}
    scheme, _, encoded = received.headers["authorization"].partition(" ")
    assert scheme == "Basic"
    user, password = base64.b64decode(encoded).decode("ascii").split(":")  # one colon: both sides encoded
    assert (unquote_plus(user), unquote_plus(password)) == (CLIENT_ID, CLIENT_SECRET)


async def test_post_form_never_puts_the_secret_or_the_form_in_errors_or_logs(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    token = "-".join(("the", "token", "value"))  # built, so no source line in a traceback spells it
    async with LoopbackServer(answer(401, b'{"error": "invalid_client"}')) as server:
        fetcher = Fetcher(DEV)
        with pytest.raises(FetchError) as caught:
            await fetcher.post_form(f"http://127.0.0.1:{server.port}/introspect", {"token": token},
                                    basic_auth=(CLIENT_ID, CLIENT_SECRET))
        await fetcher.aclose()
    assert caught.value.status == 401
    encoded_secret = base64.b64encode(CLIENT_SECRET.encode()).decode()
    rendered = "".join(traceback.format_exception(caught.value)) + repr(caught.value) + caplog.text
    for secret in (CLIENT_SECRET, "s3cret", encoded_secret, token):
        assert secret not in rendered


async def test_post_form_sends_no_authorization_without_basic_auth() -> None:
    async with LoopbackServer(answer(200, b'{"active": false}')) as server:
        fetcher = Fetcher(DEV)
        await fetcher.post_form(f"http://127.0.0.1:{server.port}/introspect", {"token": "t"})
        await fetcher.aclose()
    assert "authorization" not in server.received[0].headers


async def test_connections_to_one_host_are_pooled() -> None:
    async with LoopbackServer(answer(200)) as server:
        fetcher = Fetcher(DEV)
        for _ in range(3):
            await fetcher.get_json(f"http://127.0.0.1:{server.port}/doc")
        await fetcher.aclose()
    assert server.connections == 1


async def test_a_refused_answer_closes_its_connection_and_the_next_fetch_works() -> None:
    replies = iter([response(302, extra={"Location": "http://169.254.169.254/"}), response(200, b"[1]")])

    async def handler(received: Received, writer: asyncio.StreamWriter) -> None:
        writer.write(next(replies))
        await writer.drain()

    async with LoopbackServer(handler) as server:
        fetcher = Fetcher(DEV)
        with pytest.raises(FetchRefused, match="redirects are not followed"):
            await fetcher.get_json(f"http://127.0.0.1:{server.port}/moved")
        assert (await fetcher.get_json(f"http://127.0.0.1:{server.port}/doc")).body == [1]
        await fetcher.aclose()
    assert [r.target for r in server.received] == ["/moved", "/doc"]


async def test_pools_beyond_the_limit_close_only_once_their_response_is_read() -> None:
    """The least recently used host's pool is retired when another host needs room, but a
    response still streaming from it completes."""
    release = asyncio.Event()

    async def handler(received: Received, writer: asyncio.StreamWriter) -> None:
        if received.target == "/slow":
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 9\r\n\r\n[1,")
            await writer.drain()
            await release.wait()
            writer.write(b"2,3,4]")
        else:
            writer.write(response(200, b"[]"))
        await writer.drain()

    async with LoopbackServer(handler) as server:
        pools = PoolPerServerName(ssl.create_default_context(), max_pools=1)
        fetcher = Fetcher(DEV, resolver=loopback_names, transport=pools)
        slow = asyncio.create_task(fetcher.get_json(f"http://localhost:{server.port}/slow"))
        while not server.received:
            await asyncio.sleep(0.01)
        await fetcher.get_json(f"http://alias.localhost:{server.port}/doc")  # retires localhost's busy pool
        release.set()
        assert (await slow).body == [1, 2, 3, 4]
        await fetcher.get_json(f"http://localhost:{server.port}/doc")  # a fresh pool for localhost
        await fetcher.aclose()
    assert server.connections == 3


async def test_the_next_checked_address_is_tried_when_one_refuses_the_connection() -> None:
    """RFC 8305 in its simplest form: ``localhost`` may resolve to an address nobody listens on
    first (here ``::1``, where this server does not listen) and to the server's address second;
    every address was checked beforehand."""
    async with LoopbackServer(answer(200, b'{"a": 1}')) as server:
        async def two_addresses(host: str, port: int) -> list[str]:
            return ["::1", "127.0.0.1"]

        fetcher = Fetcher(DEV, resolver=two_addresses)
        result = await fetcher.get_json(f"http://localhost:{server.port}/doc")
        await fetcher.aclose()
    assert result.body == {"a": 1}


async def test_every_address_refusing_the_connection_is_an_error() -> None:
    async def nobody(host: str, port: int) -> list[str]:
        return ["::1", "127.0.0.1"]  # nothing listens on port 9 of either

    fetcher = Fetcher(DEV, resolver=nobody)
    with pytest.raises(FetchError, match="could not connect"):
        await fetcher.get_json("http://localhost:9/doc")
    await fetcher.aclose()
