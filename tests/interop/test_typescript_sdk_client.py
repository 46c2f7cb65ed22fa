"""The TypeScript MCP SDK client (``@modelcontextprotocol/sdk`` 1.x, node 20) against the example.

``ts_client/client.mjs`` discovers, registers, redirects (prints the URL), and receives the code
on its own loopback callback server; this test is the user's browser in between: it signs in as
demo/demo on the consent page and approves. Then the node client lists tools and calls whoami.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

from example.client import FormLogin
from tests.example.running import running_example
from tests.interop.support import HERE, node_major, npm_ci, read_line_starting, unavailable

FIXTURE = HERE / "ts_client"


async def test_typescript_sdk_client_signs_in_and_calls_whoami(tmp_path: Path) -> None:
    node = shutil.which("node")
    if node is None or node_major(node) != 20:
        unavailable(f"node 20 is required (found {node and node_major(node)})")
    npm_ci(FIXTURE)

    async with running_example(tmp_path) as base:
        process = await asyncio.create_subprocess_exec(
            node, "client.mjs", f"{base}/mcp", cwd=FIXTURE,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        assert process.stdout is not None and process.stderr is not None
        seen: list[str] = []
        try:
            line = await read_line_starting(process.stdout, "AUTHORIZE ", seen)
            authorization_url = line.removeprefix("AUTHORIZE ")
            assert authorization_url.startswith(f"{base}/authorize?")
            assert "code_challenge_method=S256" in authorization_url
            assert f"resource={base.replace(':', '%3A').replace('/', '%2F')}%2Fmcp" in authorization_url

            browser = FormLogin("demo", "demo")
            await browser(authorization_url)  # ends by visiting the node client's loopback callback
            assert "TypeScript SDK interop client" in browser.pages[0]

            tools = json.loads((await read_line_starting(process.stdout, "TOOLS ", seen)).removeprefix("TOOLS "))
            whoami = json.loads((await read_line_starting(process.stdout, "WHOAMI ", seen)).removeprefix("WHOAMI "))
            assert await asyncio.wait_for(process.wait(), 30) == 0
        except BaseException:
            if process.returncode is None:
                process.kill()
            stderr = (await process.stderr.read()).decode(errors="replace")
            print("node stdout:\n" + "".join(seen) + "\nnode stderr:\n" + stderr)
            raise
    assert tools == ["whoami", "echo", "get_time", "protected-data"]
    assert whoami["user"] == "demo"
    assert "mcp:tools" in whoami["scopes"]
    assert whoami["client_id"]
