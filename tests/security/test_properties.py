"""Property tests (hypothesis) for the parsers an attacker controls: redirect URIs, scopes, Basic."""

from __future__ import annotations

import base64
import contextlib
from urllib.parse import quote_plus

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from oauth_server import redirect_uris, scopes
from oauth_server.errors import InvalidClient, InvalidRedirectUri, InvalidScope
from oauth_server.web.client_auth import parse_basic_authorization

REGISTERED = ("https://app.example/cb", "http://127.0.0.1:3000/cb", "com.example.app:/cb")


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=80))
def test_redirect_matcher_only_matches_registered_or_loopback_port_variants(requested: str) -> None:
    """RFC 9700 §4.1.3: anything that matches is the registered string, or differs only in a loopback port."""
    match = redirect_uris.find_match(requested, REGISTERED)
    if match is None:
        return
    assert match == requested
    if requested not in REGISTERED:
        prefix, _, rest = requested.partition("127.0.0.1:")
        assert prefix == "http://" and rest.split("/", 1)[1] == "cb" and rest.split("/", 1)[0].isdigit()


@settings(max_examples=300, deadline=None)
@given(st.from_regex(r"http://127\.0\.0\.1:[0-9]{1,5}/cb", fullmatch=True))
def test_redirect_matcher_accepts_any_loopback_port(requested: str) -> None:
    assert redirect_uris.find_match(requested, REGISTERED) == requested


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=60))
def test_redirect_registration_never_accepts_userinfo_fragment_or_backslash(uri: str) -> None:
    try:
        accepted = redirect_uris.validate_for_registration(uri)
    except InvalidRedirectUri:
        return
    assert "#" not in accepted and "\\" not in accepted
    if accepted.startswith(("http://", "https://")):
        authority = accepted.split("://", 1)[1].split("/", 1)[0].split("?", 1)[0]
        assert "@" not in authority


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=60))
def test_scope_parser_yields_valid_unique_tokens_or_invalid_scope(raw: str) -> None:
    """RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E )."""
    try:
        parsed = scopes.parse(raw)
    except InvalidScope:
        return
    if parsed is None:
        assert raw.strip(" ") == ""
        return
    assert len(set(parsed)) == len(parsed)
    for token in parsed:
        assert token and all(0x21 <= ord(c) <= 0x7E and c not in '"\\' for c in token)


@settings(max_examples=300, deadline=None)
@given(st.text(min_size=1, max_size=30), st.text(max_size=30))
def test_basic_header_roundtrip(client_id: str, secret: str) -> None:
    """RFC 6749 §2.3.1: form-urlencode, join with ':', base64: parsing inverts it exactly."""
    raw = f"{quote_plus(client_id)}:{quote_plus(secret)}".encode()
    header = "Basic " + base64.b64encode(raw).decode()
    assert parse_basic_authorization(header) == (client_id, secret)


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=60))
def test_basic_header_garbage_is_invalid_client_never_another_error(header: str) -> None:
    with contextlib.suppress(InvalidClient):
        parse_basic_authorization(header)


@pytest.mark.parametrize("header", ["basic YTpi", "BASIC   YTpi ", "Basic YTpi"])
def test_basic_header_scheme_is_case_insensitive(header: str) -> None:
    """RFC 9110 §11.1: the auth-scheme is case-insensitive; surrounding spaces are not part of it."""
    assert parse_basic_authorization(header) == ("a", "b")


@pytest.mark.parametrize("header", [
    "Basic YTpi===",  # surplus padding: Python's decoder would accept it
    "Basic YWI6Yw",  # missing padding of "ab:c"
    "Basic YT pi",  # a space inside the base64
    "Basic " + base64.b64encode(b"a").decode(),  # no colon
    "Basic " + base64.b64encode(b":b").decode(),  # empty client id
    "Basic " + base64.b64encode(b"\xff:b").decode(),  # not UTF-8
    "Bearer YTpi",
    "Basic",
])
def test_basic_header_malformed_is_invalid_client(header: str) -> None:
    """RFC 7617 §2 / RFC 4648 §4: one canonical padded base64 of ``id:secret``, or invalid_client."""
    with pytest.raises(InvalidClient):
        parse_basic_authorization(header)
