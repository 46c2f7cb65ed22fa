"""``parse_params``: the urlencoded parser of every endpoint (query strings and form bodies).

It must give exactly what ``urllib.parse.parse_qsl(keep_blank_values=True, errors="strict",
max_num_fields=MAX_FIELDS)`` gives (the parser it replaced for speed), refuse what that refused
with ``invalid_request`` (RFC 6749 §5.2), and never repair a malformed value silently."""

from __future__ import annotations

from urllib.parse import parse_qsl

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from oauth_server.errors import InvalidRequest
from oauth_server.web.context import MAX_FIELDS, parse_params

#: Characters that matter to the format, and a few that do not.
PIECES = st.sampled_from(["a", "b", "=", "&", "+", "%", "%2", "%20", "%2B", "%26", "%3D", "%C3%A9", "%FF", "%E2%82",
                          "é", " ", ";", "0", "code", "grant_type", "\x7f"])


def reference(raw: bytes) -> dict[str, list[str]] | str:
    try:
        pairs = parse_qsl(raw.decode("utf-8"), keep_blank_values=True, errors="strict", max_num_fields=MAX_FIELDS)
    except (UnicodeDecodeError, ValueError):
        return "refused"
    out: dict[str, list[str]] = {}
    for key, value in pairs:
        out.setdefault(key, []).append(value)
    return out


def ours(raw: bytes) -> dict[str, list[str]] | str:
    try:
        return parse_params(raw)
    except InvalidRequest:
        return "refused"


@settings(max_examples=3000, deadline=None)
@given(st.lists(PIECES, max_size=60).map("".join))
def test_parse_params_equals_parse_qsl(text: str) -> None:
    raw = text.encode("utf-8")
    assert ours(raw) == reference(raw)


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=80))
def test_parse_params_equals_parse_qsl_on_any_bytes(raw: bytes) -> None:
    assert ours(raw) == reference(raw)


@pytest.mark.parametrize(("raw", "expected"), [
    (b"grant_type=refresh_token&refresh_token=abc", {"grant_type": ["refresh_token"], "refresh_token": ["abc"]}),
    (b"scope=mcp%3Atools+mcp%3Aprompts", {"scope": ["mcp:tools mcp:prompts"]}),
    (b"a=1&a=2&&b", {"a": ["1", "2"], "b": [""]}),
    (b"redirect_uri=http%3A%2F%2F127.0.0.1%3A1%2Fcb%3Fx%3D1%26y%3D2", {"redirect_uri": ["http://127.0.0.1:1/cb?x=1&y=2"]}),
    (b"", {}),
    (b"&".join([b"a=1"] * MAX_FIELDS), {"a": ["1"] * MAX_FIELDS}),
])
def test_parse_params_examples(raw: bytes, expected: dict[str, list[str]]) -> None:
    assert parse_params(raw) == expected


@pytest.mark.parametrize(("raw", "reason"), [
    (b"code=%FF", "parameters must be UTF-8"),
    (b"\xff=1", "parameters must be UTF-8"),
    (b"&".join([b"a=1"] * (MAX_FIELDS + 1)), f"more than {MAX_FIELDS} parameters"),
])
def test_parse_params_refuses_with_invalid_request(raw: bytes, reason: str) -> None:
    """RFC 6749 §5.2 ``invalid_request``: a value that is not UTF-8 is never replaced by U+FFFD,
    and a flood of parameters is refused before any is decoded."""
    with pytest.raises(InvalidRequest, match=reason):
        parse_params(raw)
