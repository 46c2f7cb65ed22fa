"""Jinja2 templates: the app's own directory first (to override), then ours. Autoescaped."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jinja2 import ChoiceLoader, Environment, FileSystemLoader, select_autoescape
from starlette.responses import HTMLResponse

PACKAGE_TEMPLATES = Path(__file__).resolve().parent.parent / "templates"

# Pages that show consent or errors: never framed (clickjacking, RFC 9700 §4.16), never cached.
PAGE_HEADERS = {
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "frame-ancestors 'none'; default-src 'none'; style-src 'unsafe-inline'",
    "Cache-Control": "no-store",
    "Pragma": "no-cache",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}


class Templates:
    """Renders ``oauth_server/consent.html``, ``connected_apps.html`` and ``error.html``."""

    def __init__(self, directory: str | Path | None = None) -> None:
        loaders = [FileSystemLoader(str(directory))] if directory else []
        loaders.append(FileSystemLoader(str(PACKAGE_TEMPLATES)))
        # Loaded once, never re-checked: a stat of every template file on each render is a cost
        # on the consent hot path (bench/README.md). Restart the app to see an edited template.
        self.env = Environment(loader=ChoiceLoader(loaders), autoescape=select_autoescape(default=True),
                               auto_reload=False)

    def render(self, name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
        body = self.env.get_template(name).render(**context)
        return HTMLResponse(body, status_code=status_code, headers=PAGE_HEADERS)
