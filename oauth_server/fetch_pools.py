"""Connection pools for the guarded fetcher: one per host name, so a TLS connection verified
for one name never carries another name's request (see ``fetch``)."""

from __future__ import annotations

import collections
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import httpx


@dataclass(slots=True)
class _Pool:
    transport: httpx.AsyncHTTPTransport
    busy: int = 0
    retired: bool = False


class PoolPerServerName(httpx.AsyncBaseTransport):
    """Connection pools per host name, each pooling by address.

    httpcore pools connections by origin, which here is the pinned address. Shared across names,
    a TLS connection verified for a.example would carry b.example's request when both resolve to
    the same address (one CDN), and b.example's answer would be taken without its certificate.
    Pools beyond ``max_pools`` are closed least recently used first, once no response still
    streams from them.
    """

    def __init__(self, ssl_context: ssl.SSLContext, max_pools: int = 64) -> None:
        self._ssl_context = ssl_context
        self._max_pools = max_pools
        self._pools: collections.OrderedDict[str, _Pool] = collections.OrderedDict()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        name = f"{request.url.scheme}://{request.headers['host']}"
        pool = self._pools.pop(name, None)
        if pool is None:
            pool = _Pool(httpx.AsyncHTTPTransport(verify=self._ssl_context, trust_env=False))
        self._pools[name] = pool
        pool.busy += 1
        try:
            while len(self._pools) > self._max_pools:
                _, old = self._pools.popitem(last=False)
                old.retired = True
                if old.busy == 0:
                    await old.transport.aclose()
            response = await pool.transport.handle_async_request(request)
        except BaseException:
            await self._release(pool)
            raise
        assert isinstance(response.stream, httpx.AsyncByteStream)  # noqa: S101 (httpx's async transport)
        stream = _ReleasingStream(response.stream, lambda: self._release(pool))
        return httpx.Response(response.status_code, headers=response.headers, stream=stream,
                              extensions=response.extensions)

    async def _release(self, pool: _Pool) -> None:
        pool.busy -= 1
        if pool.retired and pool.busy == 0:
            await pool.transport.aclose()

    async def aclose(self) -> None:
        pools, self._pools = list(self._pools.values()), collections.OrderedDict()
        for pool in pools:
            pool.retired = True
            await pool.transport.aclose()


class _ReleasingStream(httpx.AsyncByteStream):
    def __init__(self, stream: httpx.AsyncByteStream, release: Callable[[], Awaitable[None]]) -> None:
        self._stream = stream
        self._release: Callable[[], Awaitable[None]] | None = release

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._stream:
            yield chunk

    async def aclose(self) -> None:
        try:
            await self._stream.aclose()
        finally:
            release, self._release = self._release, None
            if release is not None:
                await release()
