"""The ceilings: bare Starlette, or bare FastAPI, on the same uvicorn, answering fixed JSON with no OAuth work.

``--framework fastapi`` is the framework's own ceiling: a ``FastAPI()`` app shaped as ours is
(metadata as path operations of an included ``APIRouter``, ``POST /mcp`` as a Starlette route
first in the app's routes), so ``ours ÷ fastapi`` shows what our code costs on top of the
framework a user mounts it in, and ``fastapi ÷ starlette`` what FastAPI itself costs.

It serves the two metadata documents (so the driver's discovery works unchanged) and a
``POST /mcp`` that answers ``{"ok": true}`` without looking at the Authorization header. Only
tests 1 (metadata) and 5 (protected resource) make sense here; the others are n/a.

Usage: python -m bench.apps.ceiling --port 8000 [--framework starlette|fastapi]
"""

from __future__ import annotations

import argparse

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from bench.apps import serve


def build_app(base_url: str, framework: str = "starlette") -> Starlette:
    as_metadata = {
        "issuer": base_url,
        "authorization_endpoint": f"{base_url}/authorize",
        "token_endpoint": f"{base_url}/token",
        "response_types_supported": ["code"],
        "code_challenge_methods_supported": ["S256"],
    }
    resource_metadata = {"resource": f"{base_url}/mcp", "authorization_servers": [base_url]}

    async def authorization_server(request: Request) -> JSONResponse:
        return JSONResponse(as_metadata)

    async def protected_resource(request: Request) -> JSONResponse:
        return JSONResponse(resource_metadata)

    async def hello(request: Request) -> JSONResponse:
        return JSONResponse({"ok": True})

    if framework == "fastapi":
        from fastapi import APIRouter, FastAPI

        router = APIRouter()
        router.add_api_route("/.well-known/oauth-authorization-server", authorization_server, methods=["GET"])
        router.add_api_route("/.well-known/oauth-protected-resource/mcp", protected_resource, methods=["GET"])
        app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
        app.include_router(router)
        app.router.routes.insert(0, Route("/mcp", hello, methods=["POST"]))
        return app
    return Starlette(routes=[
        Route("/.well-known/oauth-authorization-server", authorization_server),
        Route("/.well-known/oauth-protected-resource/mcp", protected_resource),
        Route("/mcp", hello, methods=["POST"]),
    ])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--framework", choices=["starlette", "fastapi"], default="starlette")
    args = parser.parse_args()
    serve(build_app(f"http://127.0.0.1:{args.port}", args.framework), args.port)


if __name__ == "__main__":
    main()
