"""How the endpoints describe themselves in the OpenAPI schema, without lying to the reader.

Our endpoints read their parameters from the request themselves (OAuth needs a repeated
parameter refused, RFC 6749 §3.1, and the exact error code of each rule, which FastAPI's parsing
does not give). So the schema is written here, as ``openapi_extra``, not derived from fake
``Form()``/``Query()`` parameters that are never filled.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from pydantic import BaseModel

FORM_TYPE = "application/x-www-form-urlencoded"


class OAuthErrorBody(BaseModel):
    """RFC 6749 §5.2 error response body."""

    error: str
    error_description: str | None = None


def _string(description: str | None) -> dict[str, Any]:
    return {"type": "string", **({"description": description} if description else {})}


def form_body(fields: dict[str, str | None], required: tuple[str, ...] = ()) -> dict[str, Any]:
    """``openapi_extra`` for an urlencoded body: field name → description (None: none)."""
    schema: dict[str, Any] = {"type": "object", "properties": {name: _string(d) for name, d in fields.items()}}
    if required:
        schema["required"] = list(required)
    return {"requestBody": {"required": True, "content": {FORM_TYPE: {"schema": schema}}}}


def json_body(schema: dict[str, Any]) -> dict[str, Any]:
    """``openapi_extra`` for a JSON body."""
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


def query(fields: dict[str, str | None], required: tuple[str, ...] = ()) -> dict[str, Any]:
    """``openapi_extra`` for query parameters: name → description (None: none)."""
    return {"parameters": [
        {"name": name, "in": "query", "required": name in required, "schema": _string(description)}
        for name, description in fields.items()
    ]}


def json_errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for OAuth JSON errors, so the schema says what clients really get."""
    return {status: {"model": OAuthErrorBody, "description": HTTPStatus(status).phrase} for status in statuses}


def html_errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """Browser-facing errors: an HTML page, or the JSON error when the request is refused before routing."""
    json_schema = {"schema": OAuthErrorBody.model_json_schema()}
    return {status: {"description": HTTPStatus(status).phrase,
                     "content": {"text/html": {"schema": {"type": "string"}}, "application/json": json_schema}}
            for status in statuses}


#: Every endpoint can answer these: a too-large body, rate limits, storage outage, a bug.
COMMON_ERRORS = (413, 429, 500, 503)
