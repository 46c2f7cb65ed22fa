"""Parsing JSON that arrives from outside: size, depth, encoding and ambiguity limits first.

Every JSON document the server reads from a peer (client registration and RFC 7592 updates,
client ID metadata documents, JWKS, metadata fetched from issuers) goes through ``loads`` or
``load_object``, so one hostile document can only ever earn a 400 with the endpoint's own error.

Python's ``json`` parser recurses once per nesting level: two kilobytes of ``[`` exhaust the
interpreter's recursion limit and turn into a 500. RFC 8259 §9 allows the cure: "An
implementation may set limits on the size of texts that it accepts. An implementation may set
limits on the maximum depth of nesting." The depth is measured before ``json.loads`` runs,
without recursion and without a Python step per character: bytes methods and one compiled
regular expression walk the input in C.
"""

from __future__ import annotations

import functools
import json
import math
import re
from typing import Any

#: Deep enough for any OAuth or JOSE document (a JWKS is four levels), shallow enough that
#: ``json.loads`` stays far from the recursion limit.
DEFAULT_MAX_DEPTH = 32
#: The nesting patterns are compiled by ``re``, which itself recurses once per level.
MAX_DEPTH_LIMIT = 256

# RFC 6749 §5.2 restricts error_description to %x20-21 / %x23-5B / %x5D-7E, so a member name
# is repeated back to the client only when it is a plain token.
_SAFE_NAME = re.compile(r"[A-Za-z0-9_.:-]{1,64}")

# RFC 8259 §8.2: a "\uD800" escape without its pair decodes to a lone surrogate, which is no
# Unicode character: UTF-8 cannot encode it, so it would fail later (storing it in a database)
# instead of here. An escaped backslash is removed before looking, so "\\uD800" is text.
_LONE_SURROGATE = re.compile(
    r"\\u[dD][89abAB][0-9a-fA-F]{2}(?!\\u[dD][c-fC-F][0-9a-fA-F]{2})"
    r"|(?<!\\u[dD][89abAB][0-9a-fA-F]{2})\\u[dD][c-fC-F][0-9a-fA-F]{2}"
)

_NOT_QUOTES_OR_BRACKETS = bytes(b for b in range(256) if b not in b'"[]{}')
# Nesting depth does not depend on which kind of bracket opens a level; a mismatched pair is
# invalid JSON that json.loads refuses where it occurs.
_ONE_KIND = bytes.maketrans(b"{}", b"[]")


class JSONInputError(ValueError):
    """The document was refused. ``str(error)`` is safe to show to the client (RFC 6749 §5.2)."""


def loads(raw: bytes | str, *, max_bytes: int, max_depth: int = DEFAULT_MAX_DEPTH) -> Any:
    """Parse a JSON text from a peer, refusing what RFC 8259 leaves to the implementation.

    Refused with ``JSONInputError``:

    - more than ``max_bytes`` bytes of UTF-8 (RFC 8259 §9: size limits);
    - not UTF-8 (RFC 8259 §8.1: JSON exchanged between systems MUST be UTF-8), including a
      ``\\u`` escape of a lone surrogate (RFC 8259 §8.2);
    - nested deeper than ``max_depth`` arrays and objects (RFC 8259 §9), checked before parsing;
    - ``NaN``, ``Infinity``, ``-Infinity`` and numbers beyond a double's range (RFC 8259 §6: not
      permitted, and §9 lets an implementation limit the range of numbers);
    - an object naming a member twice. RFC 8259 §4 says names SHOULD be unique and that
      receivers disagree on which duplicate wins; two ``redirect_uris`` in one registration
      would be read one way here and another way by whoever validated the document, so an
      ambiguous document is refused rather than guessed at;
    - anything else ``json.loads`` refuses.
    """
    if not 0 <= max_depth <= MAX_DEPTH_LIMIT:
        raise ValueError(f"max_depth must be between 0 and {MAX_DEPTH_LIMIT}")
    if len(raw) > max_bytes:  # a str has at least as many UTF-8 bytes as characters
        raise _too_large(max_bytes)
    if isinstance(raw, str):
        text = raw
        try:
            data = raw.encode("utf-8")
        except UnicodeEncodeError:  # lone surrogates
            raise JSONInputError("the JSON document is not UTF-8") from None
        if len(data) > max_bytes:
            raise _too_large(max_bytes)
    else:
        data = raw
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise JSONInputError("the JSON document is not UTF-8") from None
    problem = _depth_error(data, max_depth)
    if problem is not None:
        raise problem
    if "\\u" in text and _LONE_SURROGATE.search(text.replace("\\\\", "")):
        raise JSONInputError("the JSON document escapes a lone surrogate, which is not a character")
    try:
        return json.loads(text, object_pairs_hook=_unique_members, parse_constant=_refuse_constant,
                          parse_float=_finite_float)
    except JSONInputError:
        raise
    except json.JSONDecodeError as exc:
        # exc.msg may quote a backslash, which error_description may not contain: position only.
        raise JSONInputError(
            f"the JSON document is not valid JSON (line {exc.lineno}, column {exc.colno})") from None
    except ValueError:  # an integer longer than sys.get_int_max_str_digits()
        raise JSONInputError("the JSON document has a number with too many digits") from None


def load_object(raw: bytes | str, *, max_bytes: int, max_depth: int = DEFAULT_MAX_DEPTH) -> dict[str, Any]:
    """``loads``, then require an object at the top, as every OAuth and JOSE document is."""
    value = loads(raw, max_bytes=max_bytes, max_depth=max_depth)
    if not isinstance(value, dict):
        raise JSONInputError("the JSON document must be an object")
    return value


def _depth_error(data: bytes, max_depth: int) -> JSONInputError | None:
    """Why ``data`` must not reach ``json.loads``: nested deeper than ``max_depth``, or with
    strings or brackets that cannot be JSON. None when it may be parsed.

    Strings are removed first so brackets inside them do not count: escaped backslashes go,
    then escaped quotes, then everything but quotes and brackets, and what remains splits on
    ``"`` into outside and inside pieces. The
    brackets outside must then form a sequence of groups at most ``max_depth`` deep, which a
    regular expression can say once the depth is bounded (``_groups_within``).
    """
    if data.count(b"[") + data.count(b"{") <= max_depth:
        return None  # json.loads cannot recurse more often than there are brackets to open
    if b"\\" in data:
        data = data.replace(b"\\\\", b"").replace(b'\\"', b"")
    pieces = data.translate(None, _NOT_QUOTES_OR_BRACKETS).split(b'"')
    if len(pieces) % 2 == 0:
        return JSONInputError("the JSON document is not valid JSON (a string does not end)")
    brackets = b"".join(pieces[::2]).translate(_ONE_KIND)
    within = _groups_within(max_depth).match(brackets)  # never None: the empty prefix matches
    end = within.end() if within is not None else 0
    if end == len(brackets):
        return None
    # A group that opens at ``end`` and is not matched either closes too deep or never closes;
    # when the brackets are as many opening as closing, it closes.
    if brackets[end] == ord("[") and brackets.count(b"[") * 2 == len(brackets):
        return JSONInputError(f"the JSON document is nested deeper than {max_depth} levels")
    return JSONInputError("the JSON document is not valid JSON (its brackets do not pair up)")


@functools.lru_cache(maxsize=8)
def _groups_within(max_depth: int) -> re.Pattern[bytes]:
    """Brackets-only text that is a run of balanced groups nested at most ``max_depth`` deep.

    Depth 1 is ``(?:\\[\\])*+``, depth n wraps depth n-1 in one more pair. The quantifiers are
    possessive, so the match walks the text once and never backtracks.
    """
    pattern = b""
    for _ in range(max_depth):
        pattern = rb"(?:\[" + pattern + rb"\])*+"
    return re.compile(pattern)


def _unique_members(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    members = dict(pairs)
    if len(members) == len(pairs):
        return members
    seen: set[str] = set()
    for name, _ in pairs:
        if name in seen:
            if _SAFE_NAME.fullmatch(name):
                raise JSONInputError(f"the JSON document names the member {name} twice in one object")
            break
        seen.add(name)
    raise JSONInputError("the JSON document names a member twice in one object")


def _refuse_constant(name: str) -> Any:
    raise JSONInputError(f"the JSON document contains {name}, which JSON does not allow")


def _finite_float(literal: str) -> float:
    value = float(literal)
    if math.isinf(value):
        raise JSONInputError("the JSON document has a number too large to represent")
    return value


def _too_large(max_bytes: int) -> JSONInputError:
    return JSONInputError(f"the JSON document is larger than {max_bytes} bytes")
