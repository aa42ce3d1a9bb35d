"""ClickHouse access through clickhouse-connect: embedded chDB by default, a server when the DSN says so.

chDB allows one process per data directory and has no network port, so with
the embedded store the process that writes also answers queries
(``sinks.store_owner``); ``onestop query`` finds it through its advert file.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Callable, Sequence

import clickhouse_connect
from clickhouse_connect.driver.client import Client

from onestop.communes import all_communes
from onestop.settings import Settings
from sinks import migrations, schema

log = logging.getLogger(__name__)


class StoreError(RuntimeError):
    """A ClickHouse operation failed; the message names the table and the cause."""


LOCK_WAIT_S = 30.0  # a command reading the embedded store directly holds its lock for a moment


def connect(settings: Settings, *, lock_wait_s: float = LOCK_WAIT_S) -> Client:
    dsn = settings.effective_clickhouse_dsn
    kwargs: dict[str, Any] = {"dsn": dsn}
    if dsn.startswith("chdb://"):
        (settings.home / "chdb").mkdir(parents=True, exist_ok=True) if not settings.clickhouse_dsn else None
    elif settings.clickhouse_password is not None:
        kwargs["password"] = settings.clickhouse_password.get_secret_value()
    deadline = time.monotonic() + lock_wait_s
    while True:
        try:
            return clickhouse_connect.get_client(**kwargs)
        except Exception as exc:  # clickhouse-connect raises several types; keep the cause
            if dsn.startswith("chdb://") and "EmbeddedServer" in str(exc) and time.monotonic() < deadline:
                log.info("the chDB store is held by another process; waiting for it")
                time.sleep(0.5)
                continue
            raise StoreError(f"cannot open ClickHouse at {_redact(dsn)}: {exc}") from exc


def _redact(dsn: str) -> str:
    if "@" in dsn and "://" in dsn:
        scheme, rest = dsn.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return dsn


def ensure_schema(client: Client, database: str, *, progress: Callable[[migrations.Migration], None] | None = None,
                  layout: migrations.Layout = migrations.SINGLE_SERVER) -> list[migrations.Migration]:
    """Apply pending migrations (``sinks.migrations``), load the communes dimension; return the migrations applied."""
    applied = migrations.migrate(client, database, progress=progress, layout=layout)
    _load_communes(client, database)
    return applied


def _load_communes(client: Client, database: str) -> None:
    rows = [[c.code, c.name, c.division_type, c.province_code, c.province_name] for c in all_communes().values()]
    insert(client, f"{database}.{schema.COMMUNES}", rows,
           ["code", "name", "division_type", "province_code", "province_name"], token="communes:v1")


def insert(client: Client, table: str, rows: Sequence[Sequence[Any]], columns: Sequence[str], *, token: str) -> None:
    """Synchronous, deduplicated insert: a retry with the same token is a no-op."""
    if not rows:
        return
    try:
        client.insert(table, rows, column_names=list(columns),
                      settings={"insert_deduplication_token": token, "async_insert": 0})
    except Exception as exc:
        raise StoreError(f"insert into {table} ({len(rows)} rows, token {token}) failed: {exc}") from exc


def insert_arrow(client: Client, table: str, data: Any, *, token: str) -> None:
    """``insert`` for a whole ``pyarrow.Table`` of columns (bulk writers); deduplicated the same way."""
    if not data.num_rows:
        return
    try:
        client.insert_arrow(table, data, settings={"insert_deduplication_token": token, "async_insert": 0})
    except Exception as exc:
        raise StoreError(f"insert into {table} ({data.num_rows} rows, token {token}) failed: {exc}") from exc


def command(client: Client, sql: str) -> None:
    try:
        client.command(sql)
    except Exception as exc:
        raise StoreError(f"{' '.join(sql.split()[:4])} … failed: {exc}") from exc


def query(client: Client, sql: str, parameters: dict | None = None) -> tuple[list[str], list[tuple]]:
    try:
        result = client.query(sql, parameters=parameters)
    except Exception as exc:
        raise StoreError(f"query failed: {exc}") from exc
    return list(result.column_names), [tuple(r) for r in result.result_rows]
