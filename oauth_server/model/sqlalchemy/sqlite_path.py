"""The model's statements on SQLite: reads on the caller's thread, writes committed in groups.

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
* **Writes** are committed in groups (group commit): every write queued while the event loop ran
  its current callbacks goes into ONE transaction, ``BEGIN IMMEDIATE``, each write in its own
  savepoint (a write that fails or is refused rolls back alone), ``COMMIT``. The statements run
  on the event loop's thread, on the process's one writing connection, with a busy timeout of
  zero: they take microseconds, and a thread hand-off per write cost more than the write (the
  hand-offs, GIL switches and wake-ups were a fifth of a refresh's CPU, ``bench/README.md``).
  Only what can wait runs on the writer thread: the ``COMMIT`` under ``synchronous=FULL`` (its
  fsync), the WAL checkpoints under ``NORMAL``, and a whole group when another process holds
  the write lock (the thread waits for it with the busy timeout; the loop never does). While a
  FULL commit is in flight the next group gathers, so a slow disk makes groups bigger, not the
  loop slower. A caller hears its result only after its group's ``COMMIT`` returned, so every
  write answered is committed with the durability of ``PRAGMA synchronous`` (``SYNCHRONOUS``).

Single use and "revocation wins" are unchanged: writes are still serialized by SQLite's one
write lock (``BEGIN IMMEDIATE`` takes it first), each write's statements run one after another
inside it, and the conditional ``UPDATE``/``DELETE ... RETURNING`` still decides who got a row.
The statements are the model's SQLAlchemy Core, compiled once by SQLAlchemy's SQLite dialect
(``asyncpg_path.Compiled``).
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
    """A write (steps in one savepoint), or a read that found SQLite busy (for the writer thread)."""

    steps: list[tuple[str, list[Any]]]
    guarded: bool  # the first statement must touch a row, else the write is rolled back (None)
    write: bool
    future: asyncio.Future[list[Outcome] | None]
    loop: asyncio.AbstractEventLoop


#: A job and its result, or the exception to raise in its caller.
Answer = tuple[_Job, list[Outcome] | None, BaseException | None]


@dataclass(slots=True)
class _Commit:
    """For the committer thread: COMMIT a group the loop ran on ``connection``, then settle it there."""

    connection: sqlite3.Connection
    answers: list[Answer]
    loop: asyncio.AbstractEventLoop


#: For the committer thread: checkpoint the WAL (NORMAL: the loop's connection never does it itself).
_CHECKPOINT = "checkpoint"
#: NORMAL: the writer thread checkpoints the WAL after this many group commits (SQLite's own
#: default is every 1000 pages; a group writes a few pages).
_CHECKPOINT_EVERY = 200


class _Worker:
    """A daemon thread serving a queue with ``serve(queue)``, started at the first ``put``."""

    def __init__(self, name: str, serve: Any) -> None:
        self.name = name
        self.serve = serve
        self.queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def put(self, work: object) -> None:
        if self._thread is None or not self._thread.is_alive():
            with self._lock:
                if self._thread is None or not self._thread.is_alive():
                    self._thread = threading.Thread(target=self.serve, args=(self.queue,), name=self.name, daemon=True)
                    self._thread.start()
        self.queue.put(work)

    async def stop(self) -> None:
        """After the work queued so far."""
        thread, self._thread = self._thread, None
        if thread is not None and thread.is_alive():
            self.queue.put(None)
            await asyncio.to_thread(thread.join)


class SqlitePath(CompiledCache):
    """The SQLite file at ``path``: per-thread readers, one writing connection for the event loop's
    group commits, two threads for what may wait, compiled statements.

    Two threads, so that a commit never queues behind a wait for the lock: the committer runs
    only what takes no lock (the FULL ``COMMIT`` of a transaction that holds it already, PASSIVE
    checkpoints); the writer runs the groups that must wait for another process's writer. One
    thread doing both would wait for a lock held by a transaction whose commit it had queued."""

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
        self._writer = _Worker("oauth-sqlite-writer", self._write_loop)
        self._committer = _Worker("oauth-sqlite-committer", self._commit_loop)
        # The loop's group commit: the loop it runs on, its connection, the writes gathering.
        self._home: asyncio.AbstractEventLoop | None = None
        self._home_connection: sqlite3.Connection | None = None
        self._gathering: list[_Job] = []
        self._flush_scheduled = False
        self._committing = False  # a FULL commit is on the writer thread: the next group waits
        self._commits = 0

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
        job = _Job(steps, guarded, write, loop.create_future(), loop)
        if write and self._adopt(loop):
            self._gathering.append(job)
            self._schedule_flush()
        else:
            self._writer.put(job)
        return await job.future

    def _adopt(self, loop: asyncio.AbstractEventLoop) -> bool:
        """Whether ``loop`` runs the group commits: the first loop to write does, until it closes.
        A model used from another loop meanwhile (another thread's) writes through the writer
        thread, whose queue is safe from any thread; the group's state is touched by one loop only."""
        if self._home is loop:
            return True
        if self._home is not None and not self._home.is_closed():
            return False
        if self._committing:  # its loop closed mid-commit: the thread may still use that connection
            self._home_connection = None
        self._home, self._gathering, self._flush_scheduled, self._committing = loop, [], False, False
        return True

    def _schedule_flush(self) -> None:
        if not self._flush_scheduled and not self._committing and self._home is not None:
            self._flush_scheduled = True
            self._home.call_soon(self._flush)

    async def close(self) -> None:
        """Finish the writes queued before this call, stop the writer, close every connection."""
        for _ in range(int(self.busy_timeout * 100) + 100):  # the loop's groups: settled within the busy timeout
            if not (self._gathering or self._committing) or self._home is None or self._home.is_closed():
                break
            await asyncio.sleep(0.01)
        await self._writer.stop()
        await self._committer.stop()
        home, self._home_connection, self._home = self._home_connection, None, None
        if home is not None:
            home.close()
        with self._lock:
            readers, self._readers = self._readers, []
            self._local = threading.local()
        for connection in readers:
            connection.close()

    # -- the loop's group commit -----------------------------------------------------------------
    def _flush(self) -> None:
        """Run every write gathered so far as one transaction on the loop's connection."""
        self._flush_scheduled = False
        if self._committing or not self._gathering:
            return
        group, self._gathering = self._gathering, []
        try:
            connection = self._home_connection
            if connection is None:
                connection = self._connect(0)
                if self.synchronous == "NORMAL":  # checkpoints fsync: the committer thread runs them
                    connection.execute("PRAGMA wal_autocheckpoint=0")
                self._home_connection = connection
            connection.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode in _BUSY_CODES:  # another process writes: the thread waits for it
                for job in group:
                    self._writer.put(job)
                return
            _settle([(job, None, exc) for job in group])
            return
        except sqlite3.Error as exc:
            _settle([(job, None, exc) for job in group])
            return
        try:
            answers, failed = _apply(connection, group)
        except Exception as exc:  # not SQLite's: nothing of the group may stay half-done
            with contextlib.suppress(sqlite3.Error):
                connection.execute("ROLLBACK")
            _settle([(job, None, exc) for job in group])
            self._schedule_flush()
            return
        if failed:
            _settle(answers)
            self._schedule_flush()
        elif self.synchronous == "FULL":
            self._committing = True
            self._committer.put(_Commit(connection, answers, asyncio.get_running_loop()))
        else:
            _settle(_commit(connection, answers))
            self._commits += 1
            if self._commits % _CHECKPOINT_EVERY == 0:
                self._committer.put(_CHECKPOINT)
            self._schedule_flush()

    def _committed(self, answers: list[Answer]) -> None:
        """Back on the loop after a FULL commit: answer its writes, start the next group."""
        self._committing = False
        _settle(answers)
        self._schedule_flush()

    # -- the threads ------------------------------------------------------------------------------
    def _commit_loop(self, jobs: queue.SimpleQueue[_Commit | str | None]) -> None:
        connection: sqlite3.Connection | None = None  # for checkpoints only
        try:
            while (work := jobs.get()) is not None:
                if isinstance(work, _Commit):
                    answers = _commit(work.connection, work.answers)
                    with contextlib.suppress(RuntimeError):  # the loop is closed: nobody is waiting
                        work.loop.call_soon_threadsafe(self._committed, answers)
                    continue
                with contextlib.suppress(sqlite3.Error):  # a checkpoint: the next one retries
                    if connection is None:
                        connection = self._connect(0)
                    connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        finally:
            if connection is not None:
                connection.close()

    def _write_loop(self, jobs: queue.SimpleQueue[_Job | None]) -> None:
        connection: sqlite3.Connection | None = None
        try:
            while (job := jobs.get()) is not None:
                group = [job]
                with contextlib.suppress(queue.Empty):
                    while len(group) < _MAX_GROUP:
                        more = jobs.get_nowait()
                        if more is None:
                            jobs.put(None)  # stop after this group
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
        answers, failed = _apply(connection, writes)
        return settled + (answers if failed else _commit(connection, answers))


def _apply(connection: sqlite3.Connection, writes: list[_Job]) -> tuple[list[Answer], bool]:
    """Each write in its own savepoint, inside the open transaction: the answers, and whether
    SQLite rolled the whole transaction back (I/O error, full disk: every write failed)."""
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
            if not connection.in_transaction:
                return [(j, None, exc) for j in writes], True
            if own:
                connection.execute("ROLLBACK TO job")
                connection.execute("RELEASE job")
            done.append((job, None, exc))
    return done, False


def _commit(connection: sqlite3.Connection, answers: list[Answer]) -> list[Answer]:
    """COMMIT the open transaction: ``answers``, or every write failed if the commit did."""
    try:
        connection.execute("COMMIT")
    except sqlite3.Error as exc:
        with contextlib.suppress(sqlite3.Error):
            connection.execute("ROLLBACK")
        return [(job, None, exc) for job, _, _ in answers]
    return answers


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
