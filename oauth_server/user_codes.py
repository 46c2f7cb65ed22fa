"""User codes of the device authorization grant (RFC 8628 §6.1), typed by a person.

The character set is RFC 8628 §6.1's base-20 consonants ``BCDFGHJKLMNPQRSTVWXZ``: no vowels
(no words spelled by accident), no digits or letters that look alike (0/O, 1/I/L, 5/S are
absent on both sides). Eight characters, shown as ``XXXX-XXXX``: 20^8 = 2.56e10 codes, about
34.6 bits. That is far too little for a credential on its own, so a user code is only ever
useful together with the rate limits on the verification page and its short lifetime
(SECURITY.md works out the odds, RFC 8628 §5.1).

Each character comes from ``secrets.choice``, which draws an index with ``secrets.randbelow``:
rejection sampling, so every character is equally likely (a ``byte % 20`` would favour the first
16 characters, since 256 = 12 * 20 + 16). A code is compared after ``normalize``: upper case,
with dashes and white space dropped (RFC 8628 §6.1: "the server should ignore any characters
like punctuation that are not in the user-code character set"), and stored as its SHA-256
digest like every other credential.
"""

from __future__ import annotations

import secrets

ALPHABET = "BCDFGHJKLMNPQRSTVWXZ"
LENGTH = 8
#: What a person may type around the characters: dashes and white space, ignored.
_IGNORED = str.maketrans("", "", "- \t\r\n")
#: A form field longer than this is not a mistyped code; refused before any work.
MAX_INPUT = 32


def new_user_code() -> str:
    """A fresh code, grouped for reading: ``WDJB-MJHT``."""
    raw = "".join(secrets.choice(ALPHABET) for _ in range(LENGTH))
    return display(raw)


def display(normalized: str) -> str:
    """``WDJBMJHT`` -> ``WDJB-MJHT``."""
    half = len(normalized) // 2
    return f"{normalized[:half]}-{normalized[half:]}"


def normalize(typed: str) -> str | None:
    """The code a person typed, in its one stored spelling, or None if it cannot be a code."""
    if len(typed) > MAX_INPUT or not typed.isascii():  # "ß".upper() is "SS": no aliases
        return None
    code = typed.translate(_IGNORED).upper()
    if len(code) != LENGTH or any(char not in ALPHABET for char in code):
        return None
    return code
