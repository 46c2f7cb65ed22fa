"""The load driver: five tests at fixed concurrency for a fixed time against one server.

It speaks HTTP/1.1 itself, one keep-alive connection per simulated client, through an
``asyncio.Protocol`` (no stream objects, no HTTP library: httpx costs more CPU per request than
the servers under test, so it would measure itself). It runs on uvloop when installed. Its own
CPU time is reported next to every figure, so a driver that became the bottleneck shows.

Every endpoint comes from the metadata documents, as an MCP client finds them: the protected
resource metadata (RFC 9728, derived from the resource URL) names the authorization server,
whose metadata (RFC 8414) names /authorize, /token and /register.

Usage::

    python -m bench.driver http://127.0.0.1:8000/mcp --adapter consent-page \
        --duration 10 --warmup 2 --connections 32 --json out.json
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import json
import os
import re
import secrets
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlencode, urlsplit

REDIRECT_URI = "http://127.0.0.1:33418/callback"
SCOPE = "mcp:tools"
#: What an MCP client accepts from a streamable HTTP server (JSON or an SSE stream).
MCP_ACCEPT = "Accept: application/json, text/event-stream\r\n"
TESTS = ("metadata", "register", "flow", "refresh", "resource")
TEST_TITLES = {
    "metadata": "1. GET authorization server metadata",
    "register": "2. POST /register (public client)",
    "flow": "3. Authorization code + PKCE flows",
    "refresh": "4. Rotating refresh_token grants",
    "resource": "5. Bearer-protected POST to the resource",
}
MAX_ERRORS = 5000  # a test that fails this often stops early instead of spinning


# -- HTTP/1.1 keep-alive client ---------------------------------------------------------------
class HTTPError(Exception):
    """A response the test did not expect (wrong status, missing field)."""


@dataclass(slots=True)
class Response:
    status: int
    headers: dict[str, str]  # lower-case names; repeated headers joined with "\n"
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class _Protocol(asyncio.Protocol):
    """Parses responses for one connection; one request in flight at a time (no pipelining)."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.waiter: asyncio.Future[Response] | None = None
        self.closed = False
        self._status = 0
        self._headers: dict[str, str] | None = None
        self._length = 0
        self._chunked = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError("connection closed by the server"))

    def data_received(self, data: bytes) -> None:
        self.buf += data
        try:
            self._parse()
        except Exception as exc:
            if self.waiter is not None and not self.waiter.done():
                self.waiter.set_exception(exc)

    def _parse(self) -> None:
        buf = self.buf
        if self._headers is None:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            lines = buf[:end].decode("latin-1").split("\r\n")
            del buf[: end + 4]
            self._status = int(lines[0][9:12])
            headers: dict[str, str] = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                name = name.lower()
                value = value.strip()
                headers[name] = f"{headers[name]}\n{value}" if name in headers else value
            self._headers = headers
            self._chunked = "chunked" in headers.get("transfer-encoding", "").lower()
            self._length = int(headers.get("content-length", "0"))
        if self._chunked:
            body = self._take_chunked()
            if body is None:
                return
        else:
            if len(buf) < self._length:
                return
            body = bytes(buf[: self._length])
            del buf[: self._length]
        response = Response(self._status, self._headers, body)
        self._headers = None
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(response)

    def _take_chunked(self) -> bytes | None:
        buf, pos = self.buf, 0
        parts: list[bytes] = []
        while True:
            eol = buf.find(b"\r\n", pos)
            if eol < 0:
                return None
            size = int(bytes(buf[pos:eol]).split(b";")[0], 16)
            start = eol + 2
            if size == 0:
                trailer_end = buf.find(b"\r\n", start)  # no trailers expected
                if trailer_end < 0:
                    return None
                del buf[: trailer_end + 2]
                return b"".join(parts)
            if len(buf) < start + size + 2:
                return None
            parts.append(bytes(buf[start : start + size]))
            pos = start + size + 2


class Connection:
    """One keep-alive connection; reconnects when the server closed it."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.host_header = f"Host: {host}:{port}\r\n"
        self.proto: _Protocol | None = None
        self.loop = asyncio.get_running_loop()
        self.connects = 0

    async def connect(self) -> None:
        self.close()
        _, proto = await self.loop.create_connection(_Protocol, self.host, self.port)
        self.proto = proto
        self.connects += 1

    def close(self) -> None:
        if self.proto is not None and self.proto.transport is not None:
            self.proto.transport.close()
        self.proto = None

    async def request(self, method: str, target: str, headers: str = "", body: bytes = b"") -> Response:
        """Send one request; ``headers`` is preformatted (``"Name: value\\r\\n"`` lines)."""
        proto = self.proto
        if proto is None or proto.closed:
            await self.connect()
            proto = self.proto
            assert proto is not None
        length = f"Content-Length: {len(body)}\r\n" if body or method == "POST" else ""
        head = f"{method} {target} HTTP/1.1\r\n{self.host_header}{headers}{length}\r\n"
        waiter: asyncio.Future[Response] = self.loop.create_future()
        proto.waiter = waiter
        assert proto.transport is not None
        proto.transport.write(head.encode("latin-1") + body if body else head.encode("latin-1"))
        response = await waiter
        if response.headers.get("connection", "").lower() == "close":
            self.close()
        return response

    async def get(self, target: str, headers: str = "") -> Response:
        return await self.request("GET", target, headers)

    async def post_form(self, target: str, fields: dict[str, str], headers: str = "") -> Response:
        body = urlencode(fields).encode()
        return await self.request(
            "POST", target, f"Content-Type: application/x-www-form-urlencoded\r\n{headers}", body)

    async def post_json(self, target: str, document: Any, headers: str = "") -> Response:
        body = json.dumps(document, separators=(",", ":")).encode()
        return await self.request("POST", target, f"Content-Type: application/json\r\n{headers}", body)


def expect(response: Response, *statuses: int) -> Response:
    if response.status not in statuses:
        raise HTTPError(f"HTTP {response.status} (expected {'/'.join(map(str, statuses))}): {response.body[:160]!r}")
    return response


# -- discovery ----------------------------------------------------------------------------------
def path_of(url: str) -> str:
    parts = urlsplit(url)
    return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")


def well_known(url: str, name: str) -> str:
    """RFC 8414 §3.1 / RFC 9728 §3.1: the well-known segment goes between host and path."""
    path = urlsplit(url).path.rstrip("/")
    return f"/.well-known/{name}{path}"


@dataclass
class Target:
    """Where things are on the server under test, all read from its metadata documents."""

    host: str
    port: int
    resource: str = ""
    resource_path: str = ""
    resource_metadata_path: str = ""
    issuer: str = ""
    metadata_path: str = ""
    authorization_path: str = ""
    token_path: str = ""
    registration_path: str = ""

    @classmethod
    async def discover(cls, resource_url: str) -> Target:
        parts = urlsplit(resource_url)
        target = cls(parts.hostname or "127.0.0.1", parts.port or 80)
        conn = Connection(target.host, target.port)
        try:
            target.resource_metadata_path = well_known(resource_url, "oauth-protected-resource")
            prm = expect(await conn.get(target.resource_metadata_path), 200).json()
            target.resource = prm["resource"]
            target.resource_path = path_of(target.resource)
            target.issuer = prm["authorization_servers"][0]
            target.metadata_path = well_known(target.issuer, "oauth-authorization-server")
            asm = expect(await conn.get(target.metadata_path), 200).json()
            target.authorization_path = path_of(asm.get("authorization_endpoint", ""))
            target.token_path = path_of(asm.get("token_endpoint", ""))
            target.registration_path = path_of(asm["registration_endpoint"]) if "registration_endpoint" in asm else ""
        finally:
            conn.close()
        return target


# -- flow adapters: how each server gets from /authorize to a code ----------------------------
def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(32)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


_HIDDEN = re.compile(r'<input[^>]*type="hidden"[^>]*name="([^"]+)"[^>]*value="([^"]*)"')
_ACTION = re.compile(r'<form[^>]*action="([^"]*)"')


def _unescape(value: str) -> str:
    return (value.replace("&#39;", "'").replace("&#x27;", "'").replace("&quot;", '"').replace("&lt;", "<")
            .replace("&gt;", ">").replace("&amp;", "&"))


class CookieJar:
    """The few cookie rules a consent round trip needs: name=value, last one wins."""

    def __init__(self) -> None:
        self.cookies: dict[str, str] = {}

    def update(self, response: Response) -> None:
        for line in response.headers.get("set-cookie", "").split("\n"):
            if "=" in line:
                name, _, rest = line.partition("=")
                self.cookies[name.strip()] = rest.split(";", 1)[0].strip()

    def header(self) -> str:
        if not self.cookies:
            return ""
        return "Cookie: " + "; ".join(f"{k}={v}" for k, v in self.cookies.items()) + "\r\n"


@dataclass
class Client:
    """A registered public client and its browser (one per connection)."""

    client_id: str
    jar: CookieJar = field(default_factory=CookieJar)
    refresh_token: str = ""
    access_token: str = ""
    mcp_session: str = ""


class FlowAdapter:
    """Test 3's per-server steps from /authorize to a code; registration and /token are shared."""

    name = "base"
    tests: tuple[str, ...] = TESTS
    requests_per_flow = 0

    async def register(self, conn: Connection, target: Target) -> Client:
        body = {"redirect_uris": [REDIRECT_URI], "token_endpoint_auth_method": "none",
                "grant_types": ["authorization_code", "refresh_token"], "response_types": ["code"],
                "client_name": "bench client", "scope": SCOPE}
        document = expect(await conn.post_json(target.registration_path, body), 201, 200).json()
        return Client(document["client_id"])

    def authorize_target(self, target: Target, client: Client, challenge: str, state: str) -> str:
        query = urlencode({"response_type": "code", "client_id": client.client_id, "redirect_uri": REDIRECT_URI,
                           "code_challenge": challenge, "code_challenge_method": "S256", "state": state,
                           "scope": SCOPE, "resource": target.resource})
        return f"{target.authorization_path}?{query}"

    async def code(self, conn: Connection, target: Target, client: Client) -> tuple[str, str]:
        raise NotImplementedError

    async def flow(self, conn: Connection, target: Target, client: Client) -> dict[str, Any]:
        verifier, code = await self.code(conn, target, client)
        response = await conn.post_form(target.token_path, {
            "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI,
            "code_verifier": verifier, "client_id": client.client_id, "resource": target.resource})
        tokens: dict[str, Any] = expect(response, 200).json()
        if not tokens.get("access_token") or not tokens.get("refresh_token"):
            raise HTTPError(f"token response without access_token and refresh_token: {tokens}")
        client.access_token, client.refresh_token = tokens["access_token"], tokens["refresh_token"]
        return tokens


def _code_from(location: str, state: str) -> str:
    params = parse_qs(urlsplit(location).query)
    if "code" not in params:
        raise HTTPError(f"no code in the redirect: {location[:200]}")
    if params.get("state", [""])[0] != state:
        raise HTTPError("state changed on the way back")
    return params["code"][0]


class ConsentPageFlow(FlowAdapter):
    """/authorize → 30x to a consent page → GET it → POST its form (approve) → 30x with a code.

    Ours: the page is ours, bound to the browser by a cookie and a form token. mcp-oauth-server:
    the page is the app's (bench/peers/mcp-oauth-server/server.mjs) and the form posts to
    ``authenticateHandler``. Both: 4 requests a flow with /token.
    """

    name = "consent-page"
    requests_per_flow = 4
    #: Fields the person fills in on the page besides approving (the example's sign-in).
    login: ClassVar[dict[str, str]] = {}

    async def code(self, conn: Connection, target: Target, client: Client) -> tuple[str, str]:
        verifier, challenge = pkce_pair()
        state = secrets.token_urlsafe(8)
        jar = client.jar
        response = expect(await conn.get(self.authorize_target(target, client, challenge, state), jar.header()),
                          302, 303)
        jar.update(response)
        page = expect(await conn.get(path_of(response.headers["location"]), jar.header()), 200)
        jar.update(page)
        html = page.body.decode()
        fields = {name: _unescape(value) for name, value in _HIDDEN.findall(html)}
        action = _ACTION.search(html)
        fields.update(self.login, decision="approve")
        confirm = expect(await conn.post_form(path_of(_unescape(action.group(1))) if action else
                                              path_of(response.headers["location"]), fields, jar.header()),
                         302, 303)
        jar.update(confirm)
        return verifier, _code_from(confirm.headers["location"], state)


class ExampleFlow(ConsentPageFlow):
    """The example app (``python -m example.server``): its consent page is also its sign-in form
    (the demo user, an argon2 password check per flow), and ``/mcp`` is the MCP SDK's streamable
    HTTP server, so test 5 sends a real MCP ``ping`` (stateless: nothing else is needed)."""

    name = "example"
    login: ClassVar[dict[str, str]] = {"username": "demo", "password": "demo"}
    sessions = False

    async def mcp_session(self, conn: Connection, target: Target, client: Client) -> None:
        """With sessions: ``initialize`` + ``notifications/initialized`` once per connection
        (not timed), then every ping carries the session id, as an SDK client's would."""
        if not self.sessions:
            return
        auth = f"Authorization: Bearer {client.access_token}\r\n{MCP_ACCEPT}"
        init = {"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "bench", "version": "1"}}}
        response = expect(await conn.post_json(target.resource_path, init, auth), 200)
        client.mcp_session = response.headers.get("mcp-session-id", "")
        if not client.mcp_session:
            raise HTTPError("initialize answered without an Mcp-Session-Id")
        session = f"{auth}Mcp-Session-Id: {client.mcp_session}\r\n"
        expect(await conn.post_json(target.resource_path, {"jsonrpc": "2.0", "method": "notifications/initialized"},
                                    session), 202, 200)


class ExampleSessionsFlow(ExampleFlow):
    """The same with ``MCP_SESSIONS=on``: stateful MCP sessions (SSE answers)."""

    name = "example-sessions"
    sessions = True


class ExampleSignInFlow(ExampleFlow):
    """The example's flow from a new browser every time: no session cookie is kept between
    flows, so each one signs in (an argon2 check) besides consenting: the issue's "login +
    consent + token". The session flow (``example``) signs in once per connection."""

    name = "example-signin"

    async def code(self, conn: Connection, target: Target, client: Client) -> tuple[str, str]:
        client.jar = CookieJar()
        return await super().code(conn, target, client)


class ImmediateCodeFlow(FlowAdapter):
    """/authorize → 30x straight back to the client with a code (the MCP SDK examples' provider).

    No consent page exists, so a flow is 2 requests; the figure is what the SDK's routes cost,
    not a like-for-like consent round trip (see bench/README.md).
    """

    name = "immediate-code"
    requests_per_flow = 2

    async def code(self, conn: Connection, target: Target, client: Client) -> tuple[str, str]:
        verifier, challenge = pkce_pair()
        state = secrets.token_urlsafe(8)
        response = expect(await conn.get(self.authorize_target(target, client, challenge, state)), 302, 303, 307)
        return verifier, _code_from(response.headers["location"], state)


class CeilingAdapter(FlowAdapter):
    """No OAuth at all: only the metadata and resource tests; a dummy bearer token is sent."""

    name = "none"
    tests = ("metadata", "resource")


ADAPTERS: dict[str, type[FlowAdapter]] = {
    a.name: a for a in (ConsentPageFlow, ExampleFlow, ExampleSessionsFlow, ExampleSignInFlow, ImmediateCodeFlow,
                        CeilingAdapter)
}


# -- tests --------------------------------------------------------------------------------------
Op = Callable[[Connection, Client | None], Awaitable[int]]  # returns requests sent


async def setup(test: str, adapter: FlowAdapter, conn: Connection, target: Target) -> Client | None:
    """Per-connection state made before the clock starts: a client, and tokens where needed."""
    if test in ("flow", "refresh"):
        client = await adapter.register(conn, target)
        # The example's browser signs in once (argon2) on its first flow and keeps the session:
        # that first flow happens here, so test 3 measures the flows a signed-in browser makes.
        if test == "refresh" or (type(adapter) in (ExampleFlow, ExampleSessionsFlow)):
            await adapter.flow(conn, target, client)
        return client
    if test == "resource":
        if adapter.name == "none":
            return Client("none", access_token="bench")
        client = await adapter.register(conn, target)
        await adapter.flow(conn, target, client)
        if isinstance(adapter, ExampleFlow):
            await adapter.mcp_session(conn, target, client)
        return client
    return None


def make_op(test: str, adapter: FlowAdapter, target: Target) -> Op:
    if test == "metadata":
        async def metadata(conn: Connection, client: Client | None) -> int:
            expect(await conn.get(target.metadata_path), 200)
            return 1
        return metadata
    if test == "register":
        async def register(conn: Connection, client: Client | None) -> int:
            await adapter.register(conn, target)
            return 1
        return register
    if test == "flow":
        async def flow(conn: Connection, client: Client | None) -> int:
            assert client is not None
            await adapter.flow(conn, target, client)
            return adapter.requests_per_flow
        return flow
    if test == "refresh":
        async def refresh(conn: Connection, client: Client | None) -> int:
            assert client is not None
            if not client.refresh_token:  # the chain broke after an error: start a new one
                await adapter.flow(conn, target, client)
            old, client.refresh_token = client.refresh_token, ""
            response = await conn.post_form(target.token_path, {
                "grant_type": "refresh_token", "refresh_token": old, "client_id": client.client_id,
                "resource": target.resource})
            tokens = expect(response, 200).json()
            client.refresh_token = tokens["refresh_token"]
            client.access_token = tokens["access_token"]
            return 1
        return refresh
    if test == "resource":
        body = b'{"jsonrpc":"2.0","id":1,"method":"ping"}'

        mcp = MCP_ACCEPT if isinstance(adapter, ExampleFlow) else ""

        async def resource(conn: Connection, client: Client | None) -> int:
            assert client is not None
            session = f"Mcp-Session-Id: {client.mcp_session}\r\n" if client.mcp_session else ""
            headers = f"Authorization: Bearer {client.access_token}\r\nContent-Type: application/json\r\n{mcp}{session}"
            expect(await conn.request("POST", target.resource_path, headers, body), 200)
            return 1
        return resource
    raise ValueError(f"unknown test {test!r}")


def cpu_ticks(pid: int | None) -> float | None:
    """utime + stime of a process (all its threads), in seconds, from /proc."""
    if not pid:
        return None
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


async def run_test(test: str, adapter: FlowAdapter, target: Target, *, connections: int, warmup: float,
                   duration: float, server_pid: int | None = None) -> dict[str, Any]:
    """Run one test: ``connections`` workers loop for ``warmup + duration`` s; the last
    ``duration`` s are measured (completions in the window; latency of operations that started in it)."""
    conns = [Connection(target.host, target.port) for _ in range(connections)]
    await asyncio.gather(*(c.connect() for c in conns))
    errors: list[str] = []
    states = await asyncio.gather(*(setup(test, adapter, c, target) for c in conns), return_exceptions=True)
    failed = [s for s in states if isinstance(s, BaseException)]
    clients = [s for s in states if not isinstance(s, BaseException)]
    if failed:  # a server that cannot even set up fails the test, visibly
        for c in conns:
            c.close()
        return {"test": test, "ops": 0, "ops_per_s": 0.0, "errors": len(failed),
                "error_samples": [f"setup: {type(e).__name__}: {e}"[:300] for e in failed[:5]]}
    op = make_op(test, adapter, target)
    latencies: list[float] = []
    counters = {"ops": 0, "requests": 0, "errors": 0}
    loop = asyncio.get_running_loop()
    clock = time.perf_counter
    start = clock()
    measure_from = start + warmup
    end = measure_from + duration
    samples: dict[str, float | None] = {}

    async def sampler() -> None:
        await asyncio.sleep(max(0.0, measure_from - clock()))
        samples["driver0"], samples["server0"], samples["t0"] = time.process_time(), cpu_ticks(server_pid), clock()
        await asyncio.sleep(max(0.0, end - clock()))
        samples["driver1"], samples["server1"], samples["t1"] = time.process_time(), cpu_ticks(server_pid), clock()

    async def worker(conn: Connection, client: Client | None) -> None:
        while True:
            began = clock()
            if began >= end or counters["errors"] >= MAX_ERRORS:
                return
            try:
                sent = await op(conn, client)
            except Exception as exc:
                counters["errors"] += 1
                if len(errors) < 5:
                    errors.append(f"{type(exc).__name__}: {exc}"[:300])
                if isinstance(exc, (ConnectionError, OSError)):
                    conn.close()
                    await asyncio.sleep(0.01)
                continue
            done = clock()
            if measure_from <= done < end:
                counters["ops"] += 1
                counters["requests"] += sent
                if began >= measure_from:
                    latencies.append(done - began)

    sampling = loop.create_task(sampler())
    await asyncio.gather(*(worker(c, s) for c, s in zip(conns, clients, strict=True)))
    await sampling
    for c in conns:
        c.close()
    window = (samples["t1"] or end) - (samples["t0"] or measure_from)
    latencies.sort()
    result: dict[str, Any] = {
        "test": test,
        "ops": counters["ops"],
        "ops_per_s": counters["ops"] / duration,
        "requests_per_s": counters["requests"] / duration,
        "requests_per_op": (counters["requests"] / counters["ops"]) if counters["ops"] else None,
        "p50_ms": percentile(latencies, 0.50) * 1000,
        "p90_ms": percentile(latencies, 0.90) * 1000,
        "p99_ms": percentile(latencies, 0.99) * 1000,
        "max_ms": (latencies[-1] * 1000) if latencies else float("nan"),
        "errors": counters["errors"],
        "error_samples": errors,
        "reconnects": sum(c.connects for c in conns) - len(conns),
        "driver_cpu_pct": 100 * ((samples["driver1"] or 0) - (samples["driver0"] or 0)) / window,
    }
    if samples.get("server0") is not None and samples.get("server1") is not None:
        result["server_cpu_pct"] = 100 * (samples["server1"] - samples["server0"]) / window  # type: ignore[operator]
    return result


async def run_all(resource_url: str, adapter_name: str, tests: list[str], *, connections: int, warmup: float,
                  duration: float, server_pid: int | None) -> dict[str, Any]:
    adapter = ADAPTERS[adapter_name]()
    target = await Target.discover(resource_url)
    cpu_start, wall_start = time.process_time(), time.perf_counter()
    results: dict[str, Any] = {}
    for test in tests:
        if test not in adapter.tests:
            continue
        results[test] = await run_test(test, adapter, target, connections=connections, warmup=warmup,
                                       duration=duration, server_pid=server_pid)
    return {
        "resource": resource_url,
        "adapter": adapter_name,
        "target": target.__dict__,
        "config": {"connections": connections, "warmup": warmup, "duration": duration},
        "loop": type(asyncio.get_running_loop()).__module__.split(".")[0],
        "driver_cpu_s": time.process_time() - cpu_start,
        "wall_s": time.perf_counter() - wall_start,
        "tests": results,
    }


def new_event_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("resource", help="the protected resource URL, e.g. http://127.0.0.1:8000/mcp")
    parser.add_argument("--adapter", choices=sorted(ADAPTERS), default="consent-page")
    parser.add_argument("--tests", default=",".join(TESTS), help="comma-separated subset of " + ",".join(TESTS))
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--server-pid", type=int, default=None, help="report this process's CPU use too")
    parser.add_argument("--json", default=None, help="write the results here (default: stdout)")
    args = parser.parse_args(argv)
    tests = [t for t in args.tests.split(",") if t]
    unknown = set(tests) - set(TESTS)
    if unknown:
        parser.error(f"unknown tests: {sorted(unknown)}")
    loop = new_event_loop()
    try:
        result = loop.run_until_complete(run_all(
            args.resource, args.adapter, tests, connections=args.connections, warmup=args.warmup,
            duration=args.duration, server_pid=args.server_pid))
    finally:
        loop.close()
    text = json.dumps(result, indent=2)
    if args.json:
        with open(args.json, "w") as f:
            f.write(text)
    else:
        print(text)
    for name, r in result["tests"].items():
        print(f"{name:9} {r['ops_per_s']:9.1f} op/s  p50 {r.get('p50_ms', float('nan')):7.2f} ms  "
              f"p99 {r.get('p99_ms', float('nan')):7.2f} ms  errors {r['errors']}  "
              f"driver CPU {r.get('driver_cpu_pct', 0):5.1f}%  "
              f"server CPU {r.get('server_cpu_pct', float('nan')):5.1f}%",
              file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
