"""JSON from peers is parsed within limits (``oauth_server.json_input``), and a document beyond
them is a 400 with the endpoint's own error, never a 500.

RFC 8259 §9: "An implementation may set limits on the size of texts that it accepts. An
implementation may set limits on the maximum depth of nesting." RFC 7591 §3.2.2: a registration
the server refuses is answered 400 ``invalid_client_metadata``.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from oauth_server import json_input
from oauth_server.json_input import JSONInputError, load_object, loads

BIG = 1 << 20
# RFC 6749 §5.2: error_description = 1*( %x20-21 / %x23-5B / %x5D-7E )
DESCRIPTION = re.compile(r"[\x20\x21\x23-\x5b\x5d-\x7e]+")


def nested(depth: int, opener: str = "[", closer: str = "]", inner: str = "") -> str:
    return opener * depth + inner + closer * depth


def refused(raw: bytes | str, match: str, **limits: int) -> JSONInputError:
    with pytest.raises(JSONInputError, match=match) as caught:
        loads(raw, **{"max_bytes": BIG, **limits})
    assert DESCRIPTION.fullmatch(str(caught.value)), "the description must be fit for error_description"
    return caught.value


def depth_of(value: Any) -> int:
    if isinstance(value, list):
        return 1 + max(map(depth_of, value), default=0)
    if isinstance(value, dict):
        return 1 + max(map(depth_of, value.values()), default=0)
    return 0


# -- the module ------------------------------------------------------------------------------


def alternating(depth: int) -> str:
    text = "1"
    for level in range(depth):
        text = f"[{text}]" if level % 2 else f'{{"a":{text}}}'
    return text


SHAPES = {
    "arrays": nested,
    "objects": lambda depth: nested(depth, '{"a":', "}", "1"),
    "arrays and objects": alternating,
}


@pytest.mark.parametrize("shape", SHAPES)
def test_json_depth_limit_is_exact_at_the_boundary(shape: str) -> None:
    """RFC 8259 §9 (depth limit): 32 levels parse, 33 are refused, arrays and objects alike."""
    at_limit, over = SHAPES[shape](32), SHAPES[shape](33)
    assert (depth_of(json.loads(at_limit)), depth_of(json.loads(over))) == (32, 33)
    assert loads(at_limit, max_bytes=BIG) == json.loads(at_limit)
    refused(over, "nested deeper than 32 levels")


@pytest.mark.parametrize("max_depth", [0, 1, 2, 5, 64])
def test_json_depth_limit_follows_max_depth(max_depth: int) -> None:
    """RFC 8259 §9 (depth limit): the limit is the caller's; 0 allows a bare value only."""
    assert loads(nested(max_depth, inner="1"), max_bytes=BIG, max_depth=max_depth) is not None
    refused(nested(max_depth + 1), f"deeper than {max_depth} levels", max_depth=max_depth)


def test_json_depth_limit_refuses_before_parsing(monkeypatch: pytest.MonkeyPatch) -> None:
    """RFC 8259 §9 (depth limit): json.loads recurses per level, so it must never see the document."""

    def must_not_parse(*args: object, **kwargs: object) -> None:
        raise AssertionError("json.loads was called")

    monkeypatch.setattr(json, "loads", must_not_parse)
    for document in (nested(100_000), "[" * 100_000, nested(1000, '{"a":', "}", "1")):
        with pytest.raises(JSONInputError):
            loads(document, max_bytes=BIG)


def test_json_depth_limit_ignores_brackets_inside_strings() -> None:
    """RFC 8259 §7: brackets in a string are characters, not structure; they neither add depth
    nor hide it."""
    deep_text = json.dumps(["[" * 1000, "{" * 1000, "]" * 1000 + "}" * 1000])
    assert loads(deep_text, max_bytes=BIG, max_depth=1) == json.loads(deep_text)
    closers_in_a_string = nested(33, inner='"' + "]" * 40 + '"')
    refused(closers_in_a_string, "nested deeper than 32 levels")
    # A string that seems to close the brackets before it, followed by real depth.
    refused('["]]]]",' + nested(33) + "]", "nested deeper than 32 levels")


@pytest.mark.parametrize("tricky", [
    "\\", '"', '\\"', '\\\\"', "\\[", '"]', "\\\\", '\\"]]]]', "]\\", "\u00e9[\u2028]",
])
def test_json_depth_limit_reads_escapes_like_the_parser(tricky: str) -> None:
    """RFC 8259 §7: inside a string, \\" is a quote and \\\\ a backslash; neither ends the string.
    The scanner must agree with the parser on where each string ends, whatever precedes a quote."""
    for depth in (1, 5, 32):
        document = nested(depth, inner=json.dumps([tricky, tricky + "[", "]" + tricky]))
        assert loads(document, max_bytes=BIG, max_depth=depth + 1) == json.loads(document)
        refused(document, f"deeper than {depth} levels", max_depth=depth)
        ascii_off = json.dumps(json.loads(document), ensure_ascii=False)
        assert loads(ascii_off, max_bytes=BIG, max_depth=depth + 1) == json.loads(document)


@pytest.mark.parametrize("document", [
    '"abc', '["abc]', '["\\"]', '{"a": "\\\\\\"}', "]" * 40, "[" * 40, nested(40)[:-1], "[" * 33 + "}" * 33,
])
def test_json_refuses_unterminated_strings_and_unpaired_brackets(document: str) -> None:
    """RFC 8259 §2, §7: a string ends with a quote, and every array and object is closed."""
    refused(document, "not valid JSON|nested deeper")


def test_json_size_limit_counts_utf8_bytes() -> None:
    """RFC 8259 §9 (size limit): the limit is in bytes of UTF-8, for bytes and str input alike."""
    document = json.dumps({"name": "x" * 100})
    size = len(document.encode())
    assert loads(document.encode(), max_bytes=size) == loads(document, max_bytes=size)
    refused(document.encode(), f"larger than {size - 1} bytes", max_bytes=size - 1)
    refused(document, f"larger than {size - 1} bytes", max_bytes=size - 1)
    two_byte = json.dumps("\u00e9" * 100, ensure_ascii=False)  # 100 characters, 200 bytes in the string
    refused(two_byte, "larger than 150 bytes", max_bytes=150)


@pytest.mark.parametrize("raw", [
    b'{"a": "\xff"}', b'{"a": "\xc3"}', b'{"a": "\xed\xa0\x80"}',  # invalid, truncated, encoded surrogate
    '{"a": 1}'.encode("utf-16"), '{"a": "\ud800"}',              # UTF-16; a str with a lone surrogate
])
def test_json_must_be_utf8(raw: bytes | str) -> None:
    """RFC 8259 §8.1: JSON text exchanged between systems that are not part of a closed
    ecosystem MUST be encoded using UTF-8."""
    refused(raw, "not UTF-8|not valid JSON")


def test_json_duplicate_member_names_are_refused() -> None:
    """RFC 8259 §4: names SHOULD be unique, and receivers differ on which duplicate wins; two
    redirect_uris in one registration would be ambiguous, so the document is refused."""
    twice = '{"redirect_uris": ["https://a.example/cb"], "redirect_uris": ["https://evil.example/cb"]}'
    refused(twice, "names the member redirect_uris twice")
    refused('{"keys": [{"kty": "RSA", "kty": "EC"}]}', "names the member kty twice")
    error = refused('{"a\\"b": 1, "a\\"b": 2}', "names a member twice")
    assert 'a"b' not in str(error), "a name outside the error_description charset is not echoed"
    assert loads('{"a": {"a": 1}, "b": [{"a": 2}, {"a": 3}]}', max_bytes=BIG) == {"a": {"a": 1},
                                                                                  "b": [{"a": 2}, {"a": 3}]}


@pytest.mark.parametrize("document", ["NaN", "[Infinity]", '{"a": -Infinity}', "1e999", "[-1e400]"])
def test_json_nan_and_infinity_are_refused(document: str) -> None:
    """RFC 8259 §6: "Numeric values that cannot be represented in the grammar below (such as
    Infinity and NaN) are not permitted"; §9 lets an implementation limit the range of numbers."""
    refused(document, "NaN|Infinity|too large")


@pytest.mark.parametrize("document", ["", " ", "{", '{"a" 1}', "[1,]", "'a'", '{"a": 1} x', "\ufeff{}", "1" * 5000])
def test_json_invalid_documents_are_refused_with_a_safe_description(document: str) -> None:
    """RFC 8259 §2 grammar; RFC 6749 §5.2: the description names the problem and its position,
    never echoing the parser's message (which may contain a backslash)."""
    refused(document, "not valid JSON|too many digits")


def test_json_load_object_requires_an_object() -> None:
    """RFC 7591 §2, RFC 7517 §5, RFC 8414 §3.2: every document the server reads is a JSON object."""
    assert load_object(b'{"a": [1, 2.5, "x", null, true]}', max_bytes=BIG) == {"a": [1, 2.5, "x", None, True]}
    for document in ("[]", '"x"', "1", "null"):
        with pytest.raises(JSONInputError, match="must be an object"):
            load_object(document, max_bytes=BIG)


def test_json_max_depth_is_bounded() -> None:
    """The depth patterns are compiled by ``re``, which recurses per level: the limit is checked."""
    with pytest.raises(ValueError, match="max_depth"):
        loads("[]", max_bytes=BIG, max_depth=json_input.MAX_DEPTH_LIMIT + 1)
    assert loads(nested(200), max_bytes=BIG, max_depth=json_input.MAX_DEPTH_LIMIT) is not None


WORST_SHAPES = {
    "empty arrays": "[" + ",".join(["[]"] * 21_000) + "]",
    "full depth": "[" + ",".join([nested(31)] * 1000) + "]",
    "objects": "[" + ",".join(['{"a":{"b":[1,2,{"c":"d"}]}}'] * 2300) + "]",
    "short strings": json.dumps(["[", "\\", '"'] * 3000),
}


@pytest.mark.parametrize("shape", WORST_SHAPES)
def test_json_depth_check_accepts_the_shapes_hardest_for_it(shape: str) -> None:
    """RFC 8259 §9: 64 KiB of the shapes that make the depth check work hardest (its cost is
    measured in bench/README.md, never in a timed test) are within the limit and parse."""
    data = WORST_SHAPES[shape].encode()
    assert 32_000 < len(data) <= 64 * 1024
    assert json_input._depth_error(data, 32) is None
    assert loads(data, max_bytes=64 * 1024) == json.loads(data)


@pytest.mark.parametrize("document", [r'"\ud800"', r'"\udc00"', r'["a\ud800b"]', r'{"\udbff": 1}',
                                      r'"\ud800\ud800"'])
def test_json_escaped_lone_surrogates_are_refused(document: str) -> None:
    """RFC 8259 §8.2: an escaped lone surrogate is no Unicode character; refused here rather
    than failing later when the value is stored."""
    refused(document, "lone surrogate")


@pytest.mark.parametrize(("document", "value"), [(r'"\ud83d\ude00"', "\U0001f600"),
                                                 (r'"\\ud800"', "\\ud800"), (r'"\u00e9"', "\u00e9")])
def test_json_paired_surrogates_and_escaped_backslashes_are_text(document: str, value: str) -> None:
    assert loads(document, max_bytes=100) == value


# -- properties --------------------------------------------------------------------------------

TRICKY_TEXT = st.text(st.sampled_from('"\\[]{}/ab\u00e9\u2028\U0001f600') | st.characters(codec="utf-8"),
                      max_size=12)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | TRICKY_TEXT,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(TRICKY_TEXT, children, max_size=4),
    max_leaves=60,
)


@settings(max_examples=500, deadline=None)
@given(JSON_VALUES, st.booleans())
def test_json_within_the_limits_parses_exactly_like_json_loads(value: Any, ensure_ascii: bool) -> None:
    """RFC 8259 §9: the limits refuse only what is beyond them. A document exactly as deep as
    ``max_depth`` parses to what json.loads returns; one level less is refused as too deep."""
    document = json.dumps(value, ensure_ascii=ensure_ascii)
    depth = depth_of(value)
    assert loads(document, max_bytes=BIG, max_depth=depth) == json.loads(document)
    assert loads(document.encode(), max_bytes=BIG, max_depth=max(depth, 32)) == json.loads(document)
    if depth > 0:
        refused(document, f"nested deeper than {depth - 1} levels", max_depth=depth - 1)


@settings(max_examples=1000, deadline=None)
@given(st.binary(max_size=200) | st.text(st.sampled_from('[]{}",:\\ 0-1.eEtruefalsnul\u00e9'), max_size=200)
       .map(str.encode))
def test_json_any_input_parses_or_is_refused_with_json_input_error(raw: bytes) -> None:
    """RFC 7591 §3.2.2: whatever the body, the answer is a value or a 400, never an exception
    the endpoint did not expect (which would be a 500)."""
    try:
        loads(raw, max_bytes=BIG, max_depth=3)
    except JSONInputError as error:
        assert DESCRIPTION.fullmatch(str(error))


# -- through the app ---------------------------------------------------------------------------

HOSTILE_BODIES = {
    "1,000 [ then ]": nested(1000).encode(),
    "900 [ then ]": nested(900).encode(),
    '1,000 {"a":': nested(1000, '{"a":', "}", "1").encode(),
    "30,000 unclosed [": b"[" * 30_000,
    "closers hidden in a string": nested(1000, inner='"' + "]" * 1000 + '"').encode(),
    "duplicate redirect_uris": b'{"redirect_uris": ["https://a.example/cb"], "redirect_uris": ["https://b.example/cb"]}',
    "NaN": b'{"redirect_uris": ["https://a.example/cb"], "x": NaN}',
    "not UTF-8": b'{"redirect_uris": ["https://a.example/cb"], "client_name": "\xff"}',
    "an array": b'[{"redirect_uris": ["https://a.example/cb"]}]',
}


@pytest.mark.parametrize("name", HOSTILE_BODIES)
async def test_json_register_refuses_hostile_documents_with_invalid_client_metadata(
    http: httpx.AsyncClient, caplog: pytest.LogCaptureFixture, name: str
) -> None:
    """RFC 7591 §3.2.2: a registration the server refuses is a 400 invalid_client_metadata, for
    JSON beyond the limits of RFC 8259 §9 too; nothing of it is an error in the log."""
    caplog.set_level(logging.WARNING)
    response = await http.post("/register", content=HOSTILE_BODIES[name],
                               headers={"content-type": "application/json"})
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "invalid_client_metadata"
    assert DESCRIPTION.fullmatch(response.json()["error_description"])
    assert not [record for record in caplog.records if record.levelno >= logging.ERROR]


async def test_json_register_refuses_bodies_over_the_cap_with_413(
    http: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    """RFC 9110 §15.5.14 / RFC 8259 §9 (size limit): 100,000 levels are over the 64 KiB cap and
    are refused before anything reads them."""
    caplog.set_level(logging.WARNING)
    response = await http.post("/register", content=nested(100_000).encode(),
                               headers={"content-type": "application/json"})
    assert response.status_code == 413
    assert response.json()["error"] == "invalid_request"
    assert not [record for record in caplog.records if record.levelno >= logging.ERROR]


async def test_json_register_counts_no_brackets_inside_strings(http: httpx.AsyncClient) -> None:
    """RFC 8259 §7: a client name full of brackets is text; the registration succeeds (RFC 7591 §3.2.1)."""
    metadata = {"redirect_uris": ["https://a.example/cb"], "client_name": "[{" * 100 + "\\\"" + "]}" * 20}
    response = await http.post("/register", content=json.dumps(metadata).encode(),
                               headers={"content-type": "application/json"})
    assert response.status_code == 201, response.text
    assert response.json()["client_name"] == metadata["client_name"]
