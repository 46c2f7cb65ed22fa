"""The model's statements on SQLite: reads on the caller's thread, writes committed in groups by one writer.

Why: through SQLAlchemy's async layer and aiosqlite every statement hopped to a worker thread and
back, the pool's connections were as many writers queuing on SQLite's busy handler (which sleeps
in steps of up to 100 ms instead of waking when the lock is free), and every commit waited for
its own fsync. Under load the server spent most of its time waiting and most of its CPU in the
two async layers (figures in ``bench/README.md``).

* **Reads** run at once on the calling thread, on a connection of that thread that never writes.
  In WAL mode a reader never waits for the writer, and a primary-key lookup in SQLite's page
  cache takes microseconds: less than handing it to a thread. A read that finds the database
  busy anyway (only while another process recovers a crashed WAL) is handed to the writer
  thread, which waits for it with the busy timeout, so the event loop is never blocked on a lock.
* **Writes** go to one writer thread that owns the process's only writing connection. It takes
  every write queued so far and runs them in ONE transaction (group commit): ``BEGIN
  IMMEDIATE``, each write in its own savepoint (a write that fails or is refused rolls back
  alone), ``COMMIT``. A caller hears its result only after that ``COMMIT`` returned, so every
  write answered is committed with the durability of ``PRAGMA synchronous`` (see
  ``SYNCHRONOUS``); a group costs one lock acquisition and one fsync, however many writes it holds.

Single use and "revocation wins" are unchanged: writes are still serialized by SQLite's one
write lock (``BEGIN IMMEDIATE`` takes it first, waiting up to the busy timeout for another
process's writer), each write's statements run one after another inside it, and the
conditional ``UPDATE``/``DELETE ... RETURNING`` still decides who got a row. The statements are
the model's SQLAlchemy Core, compiled once by SQLAlchemy's SQLite dialect (``asyncpg_path.Compiled``).
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import sqlite3
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Dialect
from sqlalchemy.sql import ClauseElement

from oauth_server.model.sqlalchemy.asyncpg_path import CompiledCache

#: ``PRAGMA synchronous`` values offered, in WAL mode. FULL: a committed write survives a power
#: loss (the WAL is fsynced at every commit, here once per group). NORMAL: it survives a crash
#: of the process, not of the machine (the WAL is fsynced at checkpoints only); the database
#: is never corrupted either way.
SYNCHRONOUS = ("FULL", "NORMAL")
#: Writes in one group transaction at most: bounds how long the lock is held at a time.
_MAX_GROUP = 256
_BUSY_CODES = (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)

#: One statement to run: the statement, its parameters, and for a plain INSERT the columns given.
Step = tuple[ClauseElement, Mapping[str, Any], Sequence[str]]
#: What a statement did: rows touched, and the rows it returned (raw tuples).
Outcome = tuple[int, list[tuple[Any, ...]]]


@dataclass(slots=True)
class _Job:
    """Work for the writer thread: a write (steps in one savepoint), or a read that found SQLite busy."""

    steps: list[tuple[str, list[Any]]]
    guarded: bool  # the first statement must touch a row, else the write is rolled back (None)
    write: bool
    future: asyncio.Future[list[Outcome] | None]
    loop: asyncio.AbstractEventLoop


#: A job and its result, or the exception to raise in its caller.
Answer = tuple[_Job, list[Outcome] | None, BaseException | None]


class SqlitePath(CompiledCache):
    """The SQLite file at ``path``: per-thread readers, one writer thread, compiled statements."""

    def __init__(self, path: str, dialect: Dialect, busy_timeout: float, synchronous: str) -> None:
        if synchronous not in SYNCHRONOUS:
            raise ValueError(f"sqlite_synchronous must be one of {SYNCHRONOUS}, not {synchronous!r}")
        super().__init__(dialect)
        self.path = path
        self.busy_timeout = busy_timeout
        self.synchronous = synchronous
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._writer: threading.Thread | None = None

    def _connect(self, busy_timeout: float) -> sqlite3.Connection:
        connection = sqlite3.connect(self.path, timeout=busy_timeout, isolation_level=None, check_same_thread=False)
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute(f"PRAGMA synchronous={self.synchronous}")
        return connection

    def _reader(self) -> sqlite3.Connection:
        connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if connection is None:
            connection = self._local.connection = sqlite3.connect(
                self.path, timeout=0, isolation_level=None, check_same_thread=False)
            with self._lock:
                self._readers.append(connection)
        return connection

    # -- the caller's side ---------------------------------------------------------------------
    async def execute(self, statement: ClauseElement, params: Mapping[str, Any],
                      column_keys: Sequence[str] = ()) -> tuple[int, list[dict[str, Any]]]:
        """Run one statement (a write in a group transaction); rows touched and rows returned."""
        compiled = self.compiled(statement, column_keys)
        args = compiled.args(params)
        if getattr(statement, "is_dml", False):
            count, rows = await self._single(compiled.sql, args, write=True)
        else:
            try:
                count, rows = _run(self._reader(), compiled.sql, args)
            except sqlite3.OperationalError as exc:
                if exc.sqlite_errorcode not in _BUSY_CODES:
                    raise _translate(exc, compiled.sql) from exc
                count, rows = await self._single(compiled.sql, args, write=False)
            except sqlite3.Error as exc:
                raise _translate(exc, compiled.sql) from exc
        return count, [compiled.row(row) for row in rows]

    async def _single(self, sql: str, args: list[Any], *, write: bool) -> Outcome:
        outcomes = await self._submit([(sql, args)], guarded=False, write=write)
        if not outcomes:
            raise RuntimeError("the writer answered nothing to an unguarded statement")
        return outcomes[0]

    async def write(self, steps: Sequence[Step], *,
                    guarded: bool = False) -> list[tuple[int, list[dict[str, Any]]]] | None:
        """Run ``steps`` as one write (all or nothing). ``guarded``: when the first statement touches
        no row, roll the write back and return None."""
        compiled = [self.compiled(statement, keys) for statement, _, keys in steps]
        work = [(c.sql, c.args(params)) for c, (_, params, _) in zip(compiled, steps, strict=True)]
        outcomes = await self._submit(work, guarded=guarded, write=True)
        if outcomes is None:
            return None
        return [(count, [c.row(row) for row in rows]) for c, (count, rows) in zip(compiled, outcomes, strict=True)]

    async def _submit(self, steps: list[tuple[str, list[Any]]], *, guarded: bool, write: bool) -> list[Outcome] | None:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[list[Outcome] | None] = loop.create_future()
        self._ensure_writer()
        self._jobs.put(_Job(steps, guarded, write, future, loop))
        return await future

    def _ensure_writer(self) -> None:
        if self._writer is None or not self._writer.is_alive():
            with self._lock:
                if self._writer is None or not self._writer.is_alive():
                    self._writer = threading.Thread(target=self._write_loop, name="oauth-sqlite-writer", daemon=True)
                    self._writer.start()

    async def close(self) -> None:
        """Stop the writer (after the writes queued before this call) and close every connection."""
        writer, self._writer = self._writer, None
        if writer is not None and writer.is_alive():
            self._jobs.put(None)
            await asyncio.to_thread(writer.join)
        with self._lock:
            readers, self._readers = self._readers, []
            self._local = threading.local()
        for connection in readers:
            connection.close()

    # -- the writer thread ---------------------------------------------------------------------
    def _write_loop(self) -> None:
        connection: sqlite3.Connection | None = None
        try:
            while True:
                job = self._jobs.get()
                if job is None:
                    return
                group = [job]
                with contextlib.suppress(queue.Empty):
                    while len(group) < _MAX_GROUP:
                        more = self._jobs.get_nowait()
                        if more is None:
                            self._jobs.put(None)  # stop after this group
                            break
                        group.append(more)
                try:
                    if connection is None:
                        connection = self._connect(self.busy_timeout)
                except sqlite3.Error as exc:
                    _settle_all([(j, None, exc) for j in group])
                    continue
                _settle_all(self._run_group(connection, group))
        finally:
            if connection is not None:
                connection.close()

    def _run_group(self, connection: sqlite3.Connection, group: list[_Job]) -> list[Answer]:
        """Reads first (no transaction), then every write in one transaction: the answers to settle."""
        settled: list[Answer] = []
        writes = []
        for job in group:
            if job.write:
                writes.append(job)
                continue
            try:
                settled.append((job, [_run(connection, sql, args) for sql, args in job.steps], None))
            except sqlite3.Error as exc:
                settled.append((job, None, exc))
        if not writes:
            return settled
        try:
            connection.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            return settled + [(job, None, exc) for job in writes]
        done: list[Answer] = []
        for job in writes:
            own = len(job.steps) > 1 or job.guarded  # one statement is atomic by itself
            try:
                if own:
                    connection.execute("SAVEPOINT job")
                outcomes: list[Outcome] = []
                refused = False
                for sql, args in job.steps:
                    count, rows = _run(connection, sql, args)
                    if not outcomes and job.guarded and count < 1 and not rows:
                        refused = True
                        break
                    outcomes.append((count, rows))
                if own:
                    if refused:
                        connection.execute("ROLLBACK TO job")
                    connection.execute("RELEASE job")
                done.append((job, None if refused else outcomes, None))
            except sqlite3.Error as exc:
                if not connection.in_transaction:  # SQLite rolled the whole group back (I/O error, full disk)
                    return settled + [(j, None, exc) for j in writes]
                if own:
                    connection.execute("ROLLBACK TO job")
                    connection.execute("RELEASE job")
                done.append((job, None, exc))
        try:
            connection.execute("COMMIT")
        except sqlite3.Error as exc:
            with contextlib.suppress(sqlite3.Error):
                connection.execute("ROLLBACK")
            return settled + [(job, None, exc) for job in writes]
        return settled + done


def _run(connection: sqlite3.Connection, sql: str, args: list[Any]) -> Outcome:
    cursor = connection.execute(sql, args)
    rows = cursor.fetchall()  # to the end: the statement is reset, so no read snapshot stays open
    return cursor.rowcount, rows


def _settle_all(answers: list[Answer]) -> None:
    """Hand each answer to its caller's loop: one wake-up per loop, not per write."""
    by_loop: dict[asyncio.AbstractEventLoop, list[Answer]] = {}
    for answer in answers:
        by_loop.setdefault(answer[0].loop, []).append(answer)
    for loop, batch in by_loop.items():
        with contextlib.suppress(RuntimeError):  # the caller's loop is closed: nobody is waiting
            loop.call_soon_threadsafe(_settle, batch)


def _settle(batch: list[Answer]) -> None:
    for job, result, exc in batch:
        if job.future.done():  # the caller was cancelled
            continue
        if exc is None:
            job.future.set_result(result)
        else:
            sql = job.steps[0][0] if job.steps else None
            failure = _translate(exc, sql) if isinstance(exc, sqlite3.Error) else exc
            if failure is not exc:
                failure.__cause__ = exc
            job.future.set_exception(failure)


def _translate(exc: sqlite3.Error, sql: str | None) -> BaseException:
    """SQLAlchemy's exception for a sqlite3 error (IntegrityError, OperationalError, ...), as the
    rest of the model and ``failures`` expect."""
    return sa_exc.DBAPIError.instance(sql, None, exc, sqlite3.Error)
