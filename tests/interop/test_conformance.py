"""The official MCP conformance suite's authorization-server scenarios against the example.

``@modelcontextprotocol/conformance authorization`` checks the RFC 8414 metadata and runs an
authorization code grant with PKCE and a resource indicator as a public client. It prints the
authorization URL and waits for the redirect on ``127.0.0.1:<port>/callback``; this test is the
browser (signs in as demo/demo and approves). The suite needs node 22, which the fixture installs
from npm as the ``node`` package (``node_modules/node/bin/node``).
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import httpx

from example.client import FormLogin
from tests.example.running import running_example
from tests.flows.live import free_port
from tests.interop.support import HERE, node_major, npm_ci, read_line_starting, unavailable

FIXTURE = HERE / "conformance"
SCENARIOS = ("authorization-server-metadata-endpoint", "authorization-code-grant")


async def test_conformance_authorization_scenarios_pass(tmp_path: Path) -> None:
    modules = npm_ci(FIXTURE)
    node = modules / "node" / "bin" / "node"
    if not node.exists() or node_major(str(node)) != 22:
        unavailable("the npm package node@22 did not install a node 22 binary")
    cli = modules / "@modelcontextprotocol" / "conformance" / "dist" / "index.js"

    async with running_example(tmp_path) as base, httpx.AsyncClient(base_url=base) as http:
        port = free_port()
        # The suite acts as a pre-registered public client with this exact redirect URI.
        registered = await http.post("/register", json={
            "client_name": "MCP conformance suite", "redirect_uris": [f"http://127.0.0.1:{port}/callback"],
            "token_endpoint_auth_method": "none", "grant_types": ["authorization_code"],
            "response_types": ["code"]})
        assert registered.status_code == 201, registered.text
        client_id = registered.json()["client_id"]

        process = await asyncio.create_subprocess_exec(
            str(node), str(cli), "authorization", "--url", base, "--client-id", client_id,
            "--port", str(port), "--resource", f"{base}/mcp", cwd=FIXTURE,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        assert process.stdout is not None
        seen: list[str] = []
        try:
            authorization_url = await read_line_starting(process.stdout, f"{base}/authorize?", seen)
            await read_line_starting(process.stdout, "Callback server started", seen)
            await FormLogin("demo", "demo")(authorization_url)  # ends at the suite's callback
            seen.append((await asyncio.wait_for(process.stdout.read(), 60)).decode(errors="replace"))
            code = await asyncio.wait_for(process.wait(), 30)
        finally:
            if process.returncode is None:
                process.kill()
    output = "".join(seen)
    assert code == 0, output
    for scenario in SCENARIOS:
        assert re.search(rf"✓ {re.escape(scenario)}: \d+ passed, 0 failed", output), output
    # The metadata scenario counts one check per discovery document it finds (RFC 8414, and
    # since we serve it, OpenID Connect discovery): at least one per scenario, none failed.
    total = re.search(r"Total: (\d+) passed, 0 failed", output)
    assert total is not None and int(total.group(1)) >= len(SCENARIOS), output
