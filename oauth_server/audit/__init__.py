"""Audit events: a typed stream of the security-relevant facts of the server.

``AuthorizationServer(on_event=hook)``: ``hook(event)`` (plain or ``async``) receives each
``AuditEvent`` (``events.py``: one frozen dataclass per kind) in the request that caused it.
The default, ``log_event``, writes one JSON object per line on the ``oauth_server.audit``
logger; ``SQLAuditSink`` stores them in ``oauth_audit_events``; ``on_event=None`` turns them
off. No event carries a credential, and a failing hook never fails a request (``trail.py``).
``SQLAuditSink`` is loaded on first use, so the core does not import SQLAlchemy for it.
"""

from __future__ import annotations

import importlib
import typing

from oauth_server.audit.events import (
    EVENT_KINDS,
    AuditEvent,
    CIMDFetchRefused,
    ClientDeleted,
    ClientRegistered,
    ClientUpdated,
    CodeIssued,
    CodeReplayDetected,
    ConsentApproved,
    ConsentDenied,
    Event,
    GrantRevokedByUser,
    RateLimitHit,
    RefreshReuseDetected,
    TokenIntrospected,
    TokenRevoked,
    TokensIssued,
    TokensRefreshed,
)
from oauth_server.audit.retention import purge_events
from oauth_server.audit.trail import NO_AUDIT, AuditTrail, EventHook, RetainingSink, log_event

if typing.TYPE_CHECKING:
    from oauth_server.audit.sql import SQLAuditSink

__all__ = [
    "EVENT_KINDS",
    "NO_AUDIT",
    "AuditEvent",
    "AuditTrail",
    "CIMDFetchRefused",
    "ClientDeleted",
    "ClientRegistered",
    "ClientUpdated",
    "CodeIssued",
    "CodeReplayDetected",
    "ConsentApproved",
    "ConsentDenied",
    "Event",
    "EventHook",
    "GrantRevokedByUser",
    "RateLimitHit",
    "RefreshReuseDetected",
    "RetainingSink",
    "SQLAuditSink",
    "TokenIntrospected",
    "TokenRevoked",
    "TokensIssued",
    "TokensRefreshed",
    "log_event",
    "purge_events",
]


def __getattr__(name: str) -> object:
    if name != "SQLAuditSink":
        raise AttributeError(f"module 'oauth_server.audit' has no attribute {name!r}")
    value = importlib.import_module("oauth_server.audit.sql").SQLAuditSink
    globals()[name] = value
    return value
