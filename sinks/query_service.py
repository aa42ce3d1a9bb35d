"""Where a read-only query goes: the server, the store's owner, or the embedded store opened directly.

- A server DSN (``ONESTOP_CLICKHOUSE_DSN=http://…``): straight to the server.
- The embedded store while a process owns it (the sink): to that process's
  loopback endpoint (``sinks.store_owner``), found through its advert file.
- The embedded store when nothing owns it: opened directly in this process,
  read-only, for the length of the command.

Opening directly takes the store's lock for a moment, so a sink that starts at
that moment waits for it (``sinks.clickhouse.connect`` retries); and a
command that finds the store held by a process that has not advertised yet
(a sink starting up) waits for the advert.
"""

from __future__ import annotations

import os
import time
from contextlib import contextmanager
from typing import Any, Iterator, Mapping

from onestop.settings import Settings
from sinks.clickhouse import StoreError, connect
from sinks.readonly import ChdbReader, Reader, ServerReader, StoreLocked, chdb_path, rows_of
from sinks.store_owner import OwnerReader, find_owner, holder_pid

WAIT_FOR_OWNER_S = 15.0


def open_reader(settings: Settings, *, wait_s: float = WAIT_FOR_OWNER_S) -> Reader:
    dsn = settings.effective_clickhouse_dsn
    if not dsn.startswith("chdb://"):
        return ServerReader(connect(settings), where=f"the ClickHouse server ({_host(dsn)})")
    path = chdb_path(dsn)
    deadline = time.monotonic() + wait_s
    while True:
        owner = find_owner(settings)
        if owner is not None:
            return owner
        holder = holder_pid(path)
        if holder is None:
            if not os.path.isdir(path):
                raise StoreError(f"there is no store at {path} yet: start the sink (`onestop sink`) first, "
                                 "or set ONESTOP_HOME / ONESTOP_CLICKHOUSE_DSN")
            try:
                return ChdbReader(path)
            except StoreLocked:
                pass  # a process took the store just now; look for its advert again
        if time.monotonic() >= deadline:
            raise StoreError(f"the store {path} is held by pid {holder or '?'}, which does not answer queries; "
                             "stop that process, or let the sink own the store (it answers queries while it runs)")
        time.sleep(0.2)


@contextmanager
def reader_for(settings: Settings) -> Iterator[Reader]:
    reader = open_reader(settings)
    try:
        yield reader
    finally:
        reader.close()


def query_rows(reader: Reader, sql: str, parameters: Mapping[str, Any] | None = None) -> tuple[list[str], list[tuple]]:
    """A small result, materialised: column names and rows."""
    with reader.stream(sql, parameters) as batches:
        return rows_of(batches)


def owner_or_free(settings: Settings, *, wait_s: float = WAIT_FOR_OWNER_S) -> OwnerReader | None:
    """The process that owns the embedded store, or None when no process holds it.

    A process that holds the store without advertising yet (a sink starting up) is
    given ``wait_s`` to advertise; after that, StoreError names it.
    """
    path = chdb_path(settings.effective_clickhouse_dsn)
    deadline = time.monotonic() + wait_s
    while True:
        owner = find_owner(settings)
        if owner is not None:
            return owner
        holder = holder_pid(path)
        if holder is None:
            return None
        if time.monotonic() >= deadline:
            raise StoreError(f"the store {path} is held by pid {holder}, which does not answer queries; "
                             "wait for it to finish or stop it, then try again")
        time.sleep(0.2)


class ReaderRows:
    """A reader seen as the small part of a clickhouse-connect client that ``sinks.migrations`` reads through."""

    def __init__(self, reader: Reader) -> None:
        self.reader = reader

    def query(self, query: str, parameters: dict | None = None) -> "_Rows":
        return _Rows(query_rows(self.reader, query, parameters)[1])

    def command(self, cmd: str) -> object:
        raise StoreError(f"{self.reader.where} answers read-only queries only")


class _Rows:
    def __init__(self, rows: list[tuple]) -> None:
        self.result_rows = rows


def _host(dsn: str) -> str:
    return dsn.split("@", 1)[1] if "@" in dsn else dsn.split("://", 1)[-1]
