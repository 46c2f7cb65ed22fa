"""Where events go: the ``on_event`` hook, the default JSON-lines log, and the failure rule.

``AuthorizationServer(on_event=...)`` takes one callable, plain or ``async``, called once per
event in the request that caused it, after the fact happened. The rule that shapes this module:
an audit sink that fails (a full disk, a database outage, a bug in the hook) must never turn a
token request into an error; the fact already happened, and refusing the response would only
add an outage to the lost line. So ``AuditTrail.emit`` logs the failure on ``oauth_server`` and
returns. Only cancellation (a ``BaseException``) passes through, as it must.
"""

from __future__ import annotations

import inspect
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Protocol, runtime_checkable

from oauth_server.audit.events import AuditEvent

logger = logging.getLogger("oauth_server")
#: The default hook's logger: one JSON object per line (INFO; attacks and refusals WARNING).
audit_logger = logging.getLogger("oauth_server.audit")

EventHook = Callable[[AuditEvent], Awaitable[None] | None]
"""``on_event(event)``: a plain function or a coroutine function."""


def log_event(event: AuditEvent) -> None:
    """The default hook: the event as one JSON line on the ``oauth_server.audit`` logger.

    The message is the JSON object; ``extra={"audit_event": {...}}`` gives structured-log
    handlers the same dict. Nothing is serialised when the logger would drop the record, so a
    server that does not collect audit lines pays one level check per event.
    """
    level = logging.WARNING if event.severity == "warning" else logging.INFO
    if not audit_logger.isEnabledFor(level):
        return
    body = event.as_dict()
    audit_logger.log(level, json.dumps(body, separators=(",", ":"), ensure_ascii=False),
                     extra={"audit_event": body})


@runtime_checkable
class RetainingSink(Protocol):
    """A hook that stores events and deletes them after the retention (the SQL sink)."""

    async def purge(self, before: int, batch: int = 1000) -> int:
        """Delete up to ``batch`` events older than ``before``; how many went."""
        ...


class AuditTrail:
    """The server's emitter: hands each event to the hook, and keeps a failing hook harmless."""

    __slots__ = ("_is_async", "hook")

    def __init__(self, hook: EventHook | None) -> None:
        self.hook = hook
        self._is_async = hook is not None and _is_coroutine_function(hook)

    async def emit(self, event: AuditEvent) -> None:
        """Deliver ``event``; a failing hook is logged, never raised (module docstring)."""
        hook = self.hook
        if hook is None:
            return
        try:
            result = hook(event)
            if self._is_async or inspect.isawaitable(result):
                await result  # type: ignore[misc]
        except Exception:
            logger.error("audit hook failed for a %s event; the request goes on", event.kind, exc_info=True)


def _is_coroutine_function(hook: object) -> bool:
    call = getattr(hook, "__call__", None)  # noqa: B004 -- an instance with an async __call__ too
    return inspect.iscoroutinefunction(hook) or inspect.iscoroutinefunction(call)


#: A trail that drops everything: the default of a ``GrantContext`` built without a server.
NO_AUDIT = AuditTrail(None)
