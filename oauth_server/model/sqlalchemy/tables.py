"""The SQL schema: one Core ``Table`` per record kind, and the mapping between rows and records.

Why these choices:

* Only digests are stored (RFC 6749 §10.3, RFC 9700 §4: a leaked table yields nothing usable),
  and the digest is the primary key, so every lookup by credential is one primary-key probe.
* Column names equal the record fields, so a row becomes a record with ``Record(**row)``.
* Times are ``BigInteger`` epoch seconds, as in the records: no time zone handling anywhere.
* Tuples of strings (scopes, redirect URIs, ...) are JSON arrays in a text column: portable
  across databases, order-preserving, and safe for values that contain spaces.
* Indexes: ``grant_id`` (a replayed code or reused refresh token revokes the grant in one
  step, RFC 9700 §4.14.2) and ``expires_at`` (``purge_expired`` deletes in bounded batches).
  Grants also by ``subject`` (a user's connected apps) and ``client_id`` (an operator's view
  of one client).
* A grant's row is the lock that orders revocation and issuance: revocation updates it first
  (``revoked_at``), issuance reads it ``FOR SHARE`` in the statement that inserts (see
  ``model.py``). It carries no foreign key either.
* No foreign keys: the reference model purges clients independently of their tokens, and
  tokens are always looked up on their own; a constraint would only add write cost.
* Signing keys (RFC 9068 JWT access tokens) are rows too, so every process signs with and
  publishes the same keys. ``private_key`` holds only what ``keys.KeyCipher`` encrypted; ``kid``
  is the primary key (a duplicate is refused), ``expires_at`` is indexed for ``purge_expired``.
* A client assertion's ``jti`` (RFC 7523 §3) is used once: ``(client_id, jti)`` is the primary
  key, so of two processes inserting the same pair exactly one succeeds; kept until
  ``expires_at`` (indexed, for ``purge_expired``). Pending authorizations are indexed by
  ``client_id`` too, so deleting a client (RFC 7592 §2.3) removes its requests by index.
* RFC 8628 device authorizations: keyed by the device code's digest (each poll is one
  primary-key ``UPDATE``), the user code's digest unique (the verification page's lookup, and
  the arbiter of a collision between two fresh codes), indexed by ``client_id`` and ``expires_at``.
* Audit events (``oauth_server.audit``) are rows of their own, written only by the optional SQL
  sink: an integer key in insertion order, the common fields as indexed columns (an operator
  asks "what happened to this grant, this user, this client"), the kind's own fields as one
  JSON text, and ``time`` indexed for the retention purge.

The alembic revision in ``migrations/versions`` creates exactly this schema; a test compares them.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from sqlalchemy import DDL, BigInteger, Boolean, Column, Dialect, Integer, MetaData, String, Table, Text
from sqlalchemy import event as sa_event
from sqlalchemy.types import TypeDecorator

#: Deterministic constraint and index names, so migrations can name what they drop.
NAMING_CONVENTION: dict[str, str] = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)

#: A hex SHA-256 digest is 64 characters.
DIGEST_LENGTH = 64


class StringTuple(TypeDecorator[tuple[str, ...]]):
    """A ``tuple[str, ...]`` stored as a JSON array in a text column."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: tuple[str, ...] | None, dialect: Dialect) -> str | None:
        return None if value is None else json.dumps(list(value), separators=(",", ":"))

    def process_result_value(self, value: Any | None, dialect: Dialect) -> tuple[str, ...] | None:
        return None if value is None else tuple(json.loads(value))


def _digest(name: str, *, primary_key: bool = False, nullable: bool = False) -> Column[str]:
    return Column(name, String(DIGEST_LENGTH), primary_key=primary_key, nullable=nullable)


def _epoch(name: str, *, nullable: bool = False, index: bool = False) -> Column[int]:
    return Column(name, BigInteger, nullable=nullable, index=index)


clients = Table(
    "oauth_clients",
    metadata,
    # Server-generated ids, or an HTTPS URL for a metadata-document client: unbounded text.
    Column("client_id", Text, primary_key=True),
    Column("redirect_uris", StringTuple, nullable=False),
    Column("token_endpoint_auth_method", String(64), nullable=False),
    Column("grant_types", StringTuple, nullable=False),
    Column("response_types", StringTuple, nullable=False),
    _epoch("client_id_issued_at"),
    _digest("client_secret_digest", nullable=True),
    # RFC 7591 §3.2.1: 0 means never; indexed for purge_expired.
    _epoch("client_secret_expires_at", nullable=True, index=True),
    Column("scope", Text),
    Column("client_name", Text),
    Column("client_uri", Text),
    Column("logo_uri", Text),
    Column("tos_uri", Text),
    Column("policy_uri", Text),
    Column("contacts", StringTuple, nullable=False),
    Column("software_id", Text),
    Column("software_version", Text),
    Column("application_type", String(64)),
    # RFC 7591 §2 / RFC 7523: the client's public keys (JSON text), or where to fetch them.
    Column("jwks", Text),
    Column("jwks_uri", Text),
    # RFC 7592 §3: a credential like any other, stored as its digest.
    _digest("registration_access_token_digest", nullable=True),
    # A client ID metadata document's client: when to fetch the document again; NULL: registered.
    _epoch("metadata_document_expires_at", nullable=True),
    Column("token_endpoint_auth_signing_alg", Text),
)

pending_authorizations = Table(
    "oauth_pending_authorizations",
    metadata,
    _digest("request_digest", primary_key=True),
    Column("client_id", Text, nullable=False, index=True),
    Column("redirect_uri", Text, nullable=False),
    Column("redirect_uri_provided_explicitly", Boolean, nullable=False),
    Column("scopes", StringTuple, nullable=False),
    Column("code_challenge", String(128), nullable=False),
    Column("resource", Text, nullable=False),
    Column("state", Text),
    _epoch("expires_at", index=True),
    _digest("browser_digest", nullable=True),
)

grants = Table(
    "oauth_grants",
    metadata,
    Column("grant_id", String(64), primary_key=True),
    Column("client_id", Text, nullable=False, index=True),
    Column("subject", Text, nullable=False, index=True),
    Column("scopes", StringTuple, nullable=False),
    Column("resource", Text, nullable=False),
    _epoch("created_at"),
    # Kept, revoked or not, until no credential of the grant can be live; then purged.
    _epoch("expires_at", index=True),
    # RFC 9700 §4.5 / §4.14.2: set once by revoke_grant; issuance checks it atomically.
    _epoch("revoked_at", nullable=True),
    # Set by record_grant_use when tokens are issued in the grant (never on a bearer check).
    _epoch("last_used_at", nullable=True),
)

authorization_codes = Table(
    "oauth_authorization_codes",
    metadata,
    _digest("code_digest", primary_key=True),
    Column("grant_id", String(64), nullable=False, index=True),
    Column("client_id", Text, nullable=False),
    Column("subject", Text, nullable=False),
    Column("redirect_uri", Text, nullable=False),
    Column("redirect_uri_provided_explicitly", Boolean, nullable=False),
    Column("scopes", StringTuple, nullable=False),
    Column("code_challenge", String(128), nullable=False),
    Column("resource", Text, nullable=False),
    _epoch("expires_at", index=True),
    # RFC 6749 §10.5: single use; set once by consume_authorization_code, kept so replay is seen.
    _epoch("consumed_at", nullable=True),
)

access_tokens = Table(
    "oauth_access_tokens",
    metadata,
    _digest("token_digest", primary_key=True),
    Column("grant_id", String(64), nullable=False, index=True),
    Column("client_id", Text, nullable=False),
    Column("subject", Text, nullable=False),
    Column("scopes", StringTuple, nullable=False),
    Column("resource", Text, nullable=False),
    _epoch("expires_at", index=True),
)

refresh_tokens = Table(
    "oauth_refresh_tokens",
    metadata,
    _digest("token_digest", primary_key=True),
    Column("grant_id", String(64), nullable=False, index=True),
    Column("client_id", Text, nullable=False),
    Column("subject", Text, nullable=False),
    Column("scopes", StringTuple, nullable=False),
    Column("resource", Text, nullable=False),
    _epoch("expires_at", index=True),
    _epoch("grant_expires_at"),
    # RFC 9700 §4.14.2: set once by rotate_refresh_token, kept so reuse is detected.
    _epoch("rotated_at", nullable=True),
    Column("granted_scopes", StringTuple, nullable=False),
)

signing_keys = Table(
    "oauth_signing_keys",
    metadata,
    # RFC 7638 thumbprints; RFC 7517 §4.5 leaves a kid's form open: unbounded text.
    Column("kid", Text, primary_key=True),
    Column("algorithm", String(16), nullable=False),
    Column("public_jwk", Text, nullable=False),
    # Encrypted at rest (AES-256-GCM, keys.KeyCipher); the model never sees the key in clear.
    Column("private_key", Text, nullable=False),
    _epoch("created_at"),
    _epoch("activates_at"),
    # Set once, by retire_signing_key (UPDATE ... WHERE retires_at IS NULL); NULL: still signing.
    _epoch("retires_at", nullable=True),
    # Its last token's expiry: unpublished and purged after it; NULL: never.
    _epoch("expires_at", nullable=True, index=True),
)

assertion_jtis = Table(
    "oauth_assertion_jtis",
    metadata,
    Column("client_id", Text, primary_key=True),
    # Bounded by the model (base.MAX_JTI_LENGTH) rather than by the column: one rule everywhere.
    Column("jti", Text, primary_key=True),
    _epoch("expires_at", index=True),
)

device_authorizations = Table(
    "oauth_device_authorizations",
    metadata,
    # RFC 8628 §3.2: both codes stored as digests; the device code is the key the device polls by.
    _digest("device_code_digest", primary_key=True),
    # The verification page looks a typed user code up by digest; unique, so a collision of two
    # freshly drawn codes is refused by the database (the server draws again).
    Column("user_code_digest", String(DIGEST_LENGTH), nullable=False, unique=True),
    Column("client_id", Text, nullable=False, index=True),
    Column("scopes", StringTuple, nullable=False),
    Column("resource", Text, nullable=False),
    _epoch("expires_at", index=True),
    # RFC 8628 §3.5: seconds between polls, grown by each slow_down; the last poll's time.
    Column("poll_interval", Integer, nullable=False),
    _epoch("last_polled_at", nullable=True),
    # pending -> approved | denied, once, only while unexpired.
    Column("status", String(16), nullable=False),
    Column("subject", Text),
    Column("grant_id", String(64)),
    # Set once by consume_device_authorization, kept until expiry so a replay is seen.
    _epoch("consumed_at", nullable=True),
)


audit_events = Table(
    "oauth_audit_events",
    metadata,
    # SQLite numbers rows only through an INTEGER PRIMARY KEY; elsewhere 64 bits.
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    _epoch("time", index=True),
    Column("kind", String(64), nullable=False),
    Column("client_id", Text, index=True),
    Column("subject", Text, index=True),
    Column("grant_id", String(64), index=True),
    # The kind's own fields (oauth_server.audit.events), a JSON object; never a credential.
    Column("details", Text, nullable=False),
)

# SQLite has no notifications, so other processes' client writes are counted instead: a trigger
# on every INSERT, UPDATE and DELETE of ``oauth_clients`` (ours, another process's, the CLI's,
# an operator's SQL) bumps the row ``clients`` here, in the same transaction. A process may use
# its cached client records while the count is what it was when they were read
# (``client_cache``). Postgres announces each write instead (``notices``); the table is unused there.
change_counters = Table(
    "oauth_change_counters",
    metadata,
    Column("name", String(32), primary_key=True),
    Column("value", BigInteger, nullable=False),
)

#: ``CREATE TRIGGER`` statements of the SQLite client counter (also run by migration 0008).
_COUNT_CLIENTS = ("BEGIN INSERT INTO oauth_change_counters (name, value) VALUES ('clients', 1) "
                  "ON CONFLICT (name) DO UPDATE SET value = value + 1; END")
SQLITE_CLIENT_TRIGGERS = (
    "CREATE TRIGGER IF NOT EXISTS oauth_clients_counted_insert AFTER INSERT ON oauth_clients " + _COUNT_CLIENTS,
    "CREATE TRIGGER IF NOT EXISTS oauth_clients_counted_update AFTER UPDATE ON oauth_clients " + _COUNT_CLIENTS,
    "CREATE TRIGGER IF NOT EXISTS oauth_clients_counted_delete AFTER DELETE ON oauth_clients " + _COUNT_CLIENTS,
)
for _trigger in SQLITE_CLIENT_TRIGGERS:
    sa_event.listen(metadata, "after_create", DDL(_trigger).execute_if(dialect="sqlite"))  # type: ignore[no-untyped-call]

#: The tables holding grant-bound credentials, which ``revoke_grant`` clears.
GRANT_TABLES = (refresh_tokens, access_tokens, authorization_codes)

# -- rows <-> records -----------------------------------------------------------------------
def to_row(record: object) -> dict[str, Any]:
    """The insert parameters of a record; shallow, so tuples reach ``StringTuple`` as tuples."""
    return {name: getattr(record, name) for name in _field_names(type(record))}


def prefixed(prefix: str, record: object) -> dict[str, Any]:
    """The record's columns as the parameters ``<prefix><column>`` of an ``_insert_from`` statement."""
    return {f"{prefix}{name}": value for name, value in to_row(record).items()}


def _field_names(kind: type[Any]) -> tuple[str, ...]:
    names = _FIELDS.get(kind)
    if names is None:
        names = _FIELDS[kind] = tuple(f.name for f in dataclasses.fields(kind))
    return names


_FIELDS: dict[type[Any], tuple[str, ...]] = {}
