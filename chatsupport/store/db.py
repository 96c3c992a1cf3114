"""The SQLite file: connections, the one writer thread, and reads from any thread.

SQLite allows one writer at a time, so every write runs on a single thread that owns the write connection and
wraps each unit of work in ``BEGIN IMMEDIATE … COMMIT`` (no ``database is locked`` surprises half-way through a
transaction). Reads use one connection per thread. Commits are ``synchronous=FULL``: once a write returns, it
survives a power cut — the widget acknowledges a customer's message only after that.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from concurrent.futures import Future
from pathlib import Path
from typing import Any, Callable, Iterable, TypeVar

import apsw
import sqlite_vec

T = TypeVar("T")
Row = dict[str, Any]
WriteFn = Callable[[apsw.Connection], T]

BUSY_TIMEOUT_MS = 10_000
# The SQL default for timestamp columns: UTC ISO-8601 with milliseconds and a Z, so stamps sort as text.
NOW = "(strftime('%Y-%m-%dT%H:%M:%fZ','now'))"


class StoreError(RuntimeError):
    """The database cannot be used as it is (missing extension, newer schema, corruption)."""


def _dict_row(cursor: apsw.Cursor, row: tuple[Any, ...]) -> Row:
    return {d[0]: v for d, v in zip(cursor.getdescription(), row)}


def connect(path: Path | str, *, readonly: bool = False, synchronous: str = "FULL") -> apsw.Connection:
    """Open the database with sqlite-vec loaded and the pragmas every connection needs."""
    flags = apsw.SQLITE_OPEN_READONLY if readonly else apsw.SQLITE_OPEN_READWRITE | apsw.SQLITE_OPEN_CREATE
    conn = apsw.Connection(str(path), flags=flags)
    conn.set_busy_timeout(BUSY_TIMEOUT_MS)
    try:
        conn.enable_load_extension(True)
        conn.load_extension(sqlite_vec.loadable_path())
        conn.enable_load_extension(False)
    except apsw.Error as exc:
        raise StoreError(f"sqlite-vec could not be loaded ({exc}); reinstall the 'sqlite-vec' package") from exc
    if not readonly:
        conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute(f"PRAGMA synchronous={'FULL' if synchronous == 'FULL' else 'NORMAL'}")
    conn.row_trace = _dict_row
    return conn


def capabilities(conn: apsw.Connection) -> dict[str, Any]:
    """What this SQLite build offers; the app refuses to start without FTS5 and sqlite-vec."""
    options = {row["compile_options"] for row in conn.execute("PRAGMA compile_options")}
    try:
        vec_version = conn.execute("SELECT vec_version() AS v").fetchone()["v"]
    except apsw.SQLError:
        vec_version = None
    return {
        "sqlite": apsw.sqlite_lib_version(),
        "apsw": apsw.apsw_version(),
        "fts5": "ENABLE_FTS5" in options,
        "sqlite_vec": vec_version,
    }


def require_capabilities(conn: apsw.Connection) -> dict[str, Any]:
    caps = capabilities(conn)
    missing = [name for name in ("fts5", "sqlite_vec") if not caps[name]]
    if missing:
        raise StoreError(f"SQLite {caps['sqlite']} lacks: {', '.join(missing)}")
    return caps


class Database:
    """One SQLite file: a writer thread for every change, a connection per thread for reads."""

    def __init__(self, path: Path, synchronous: str = "FULL"):
        """``synchronous`` exists for benchmarks; the product always writes with FULL."""
        self.path = path
        self._local = threading.local()
        self._readers: list[tuple[threading.Thread, apsw.Connection]] = []
        self._readers_lock = threading.Lock()
        self._jobs: queue.Queue[tuple[WriteFn[Any], Future[Any]] | None] = queue.Queue()
        self._writer_conn = connect(path, synchronous=synchronous)
        self.capabilities = require_capabilities(self._writer_conn)
        self._writer = threading.Thread(target=self._write_loop, name="db-writer", daemon=True)
        self._writer.start()

    # --- writes -------------------------------------------------------------------------------------------
    def _write_loop(self) -> None:
        conn = self._writer_conn
        while True:
            job = self._jobs.get()
            if job is None:
                break
            fn, future = job
            if not future.set_running_or_notify_cancel():
                continue
            try:
                conn.execute("BEGIN IMMEDIATE")
                result = fn(conn)
                conn.execute("COMMIT")
            except BaseException as exc:  # noqa: BLE001 - handed to the caller
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                future.set_exception(exc)
            else:
                future.set_result(result)
        conn.close()

    def submit(self, fn: WriteFn[T]) -> "Future[T]":
        future: Future[T] = Future()
        self._jobs.put((fn, future))
        return future

    def write(self, fn: WriteFn[T]) -> T:
        """Run ``fn(conn)`` in one transaction on the writer thread and return its result (blocking)."""
        return self.submit(fn).result()

    async def awrite(self, fn: WriteFn[T]) -> T:
        return await asyncio.wrap_future(self.submit(fn))

    def execute_write(self, sql: str, params: Iterable[Any] | dict[str, Any] = ()) -> None:
        self.write(lambda conn: conn.execute(sql, params))

    # --- reads --------------------------------------------------------------------------------------------
    def reader(self) -> apsw.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = connect(self.path)
            conn.execute("PRAGMA query_only=ON")
            self._local.conn = conn
            with self._readers_lock:
                self._close_orphans()
                self._readers.append((threading.current_thread(), conn))
        return conn

    def _close_orphans(self) -> None:
        """Close the readers of threads that have ended. Worker threads come and go (anyio retires one after 10 s
        idle), and each new one opens a reader: without this, an appliance with quiet spells would collect
        connections, each with its page cache, for as long as it runs."""
        alive = []
        for thread, conn in self._readers:
            if thread.is_alive():
                alive.append((thread, conn))
            else:
                with contextlib.suppress(apsw.Error):  # dropped either way; nothing else holds it
                    conn.close()
        self._readers = alive

    def memory(self) -> dict[str, int]:
        """Open connections (the writer and one reader per live thread) and the bytes their page caches hold;
        a connection busy in its own thread at this moment cannot be asked (APSW refuses) and counts as 0."""
        with self._readers_lock:
            conns = [conn for _, conn in self._readers]
        conns.append(self._writer_conn)
        cached = 0
        for conn in conns:
            try:
                cached += conn.status(apsw.SQLITE_DBSTATUS_CACHE_USED)[0]
            except (apsw.ThreadingViolationError, apsw.ConnectionClosedError):
                pass
        return {"connections": len(conns), "page_cache_bytes": cached}

    def query(self, sql: str, params: Iterable[Any] | dict[str, Any] = ()) -> list[Row]:
        return list(self.reader().execute(sql, params))

    def query_one(self, sql: str, params: Iterable[Any] | dict[str, Any] = ()) -> Row | None:
        return self.reader().execute(sql, params).fetchone()

    async def aquery(self, sql: str, params: Iterable[Any] | dict[str, Any] = ()) -> list[Row]:
        return await asyncio.to_thread(self.query, sql, params)

    async def aquery_one(self, sql: str, params: Iterable[Any] | dict[str, Any] = ()) -> Row | None:
        return await asyncio.to_thread(self.query_one, sql, params)

    def close(self) -> None:
        self._jobs.put(None)
        self._writer.join(timeout=30)
        with self._readers_lock:
            for _, conn in self._readers:
                conn.close()
            self._readers.clear()
