"""mcp-remote (npm, 0.15.1) in its ``--device-code`` mode against the example, over loopback.

mcp-remote is the stdio proxy MCP hosts run for remote servers; with ``--device-code`` it
registers as a public device client (``grant_types: [device_code, refresh_token]``, no
``authorization_code``), asks ``/device_authorization`` for a code, prints the verification link
to stderr and polls the token endpoint (5 s, +5 s on ``slow_down``). This test is the host on
its stdin/stdout (initialize, then ``tools/call whoami``) and the user in between: it opens the
printed link, submits the pre-filled code, signs in as demo/demo and approves on the real page.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import sqlite3
from pathlib import Path
from typing import Any

from tests.example.running import running_example
from tests.flows.test_device_flow_live import user_decides
from tests.interop.support import HERE, node_major, npm_ci, read_line_starting, unavailable

FIXTURE = HERE / "mcp_remote"
PROXY = FIXTURE / "node_modules" / "mcp-remote" / "dist" / "proxy.js"


async def send(process: asyncio.subprocess.Process, message: dict[str, Any]) -> None:
    assert process.stdin is not None
    process.stdin.write((json.dumps(message) + "\n").encode())
    await process.stdin.drain()


async def reply(process: asyncio.subprocess.Process, message_id: int, seen: list[str]) -> dict[str, Any]:
    """The JSON-RPC response with ``message_id`` on the proxy's stdout (notifications skipped)."""
    assert process.stdout is not None
    while True:
        line = await read_line_starting(process.stdout, "{", seen, timeout=120)
        message = json.loads(line)
        if message.get("id") == message_id:
            return dict(message)


async def test_mcp_remote_device_code_signs_in_through_the_page_and_calls_whoami(tmp_path: Path) -> None:
    node = shutil.which("node")
    if node is None or (node_major(node) or 0) < 20:
        unavailable(f"node 20 or later is required (found {node and node_major(node)})")
    npm_ci(FIXTURE)
    async with running_example(tmp_path) as base:
        process = await asyncio.create_subprocess_exec(
            node, str(PROXY), f"{base}/mcp", "--device-code", cwd=tmp_path,
            env={**os.environ, "MCP_REMOTE_CONFIG_DIR": str(tmp_path / "mcp-auth")},
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        assert process.stderr is not None
        seen: list[str] = []
        try:
            await send(process, {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                "protocolVersion": "2025-06-18", "capabilities": {},
                "clientInfo": {"name": "oauth_server interop host", "version": "1"}}})
            link = await _verification_link(process.stderr, seen)
            assert link.startswith(f"{base}/device?user_code=")
            done = await user_decides(link, "approve", client_name="MCP CLI Proxy")  # mcp-remote's own name
            assert done.status_code == 200 and "Device connected" in done.text, done.text
            initialized = await reply(process, 1, seen)
            assert "result" in initialized, initialized
            await send(process, {"jsonrpc": "2.0", "method": "notifications/initialized"})
            await send(process, {"jsonrpc": "2.0", "id": 2, "method": "tools/call",
                                 "params": {"name": "whoami", "arguments": {}}})
            called = await reply(process, 2, seen)
        except BaseException:
            print("mcp-remote output:\n" + "".join(seen))
            raise
        finally:
            if process.returncode is None:
                process.kill()
            await process.wait()
    whoami = json.loads(called["result"]["content"][0]["text"])
    assert whoami["user"] == "demo" and "mcp:tools" in whoami["scopes"]
    with sqlite3.connect(tmp_path / "example.db") as db:  # what mcp-remote registered as
        (grant_types, method), = db.execute("SELECT grant_types, token_endpoint_auth_method FROM oauth_clients")
    assert json.loads(grant_types) == ["urn:ietf:params:oauth:grant-type:device_code", "refresh_token"]
    assert method == "none"


async def _verification_link(stderr: asyncio.StreamReader, seen: list[str]) -> str:
    """The link mcp-remote prints after "To authorize this client, visit:" (lines start ``[pid] ``)."""

    async def scan() -> str:
        while True:
            raw = await stderr.readline()
            if not raw:
                raise AssertionError("mcp-remote ended before printing a verification link:\n" + "".join(seen))
            line = raw.decode(errors="replace")
            seen.append(line)
            found = re.search(r"(http://\S+/device\?user_code=\S+)", line)
            if found:
                return found.group(1)

    return await asyncio.wait_for(scan(), 90)
