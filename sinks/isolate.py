"""One bad record never stops a sink: convert, check and insert records so that a refused one is set apart.

A sink turns the records of one topic-partition into rows (``convert``) and
writes them (``insert_isolated``). Whatever goes wrong with one record — it
cannot be read, a value does not fit its column, the store refuses its rows
even alone — makes that record a ``Refused``, with a reason code and its Kafka
coordinates, for the caller to dead-letter; the rest of the batch is written
and the offsets may advance.

``insert_isolated`` takes any insert callable: a refused batch is split in
halves until the records the store refuses on their own are found. Before a
single record is blamed, ``probe`` must show that the store itself answers
(otherwise the failure is an outage and is raised: nothing is refused, nothing
committed), and the record is tried once more. Nothing here knows ClickHouse
or Kafka, so the alert router and later sinks use the same steps.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Iterable, Protocol, Sequence

log = logging.getLogger(__name__)

# Reason codes of the sinks (docs/dlq.md).
UNREADABLE_RECORD = "unreadable_record"  # the record cannot be converted into rows
UNSTORABLE_VALUE = "unstorable_value"  # a value of its rows does not fit its column
INSERT_REFUSED = "insert_refused"  # the store refused the record's rows, even alone, while it answered a probe

Rows = dict[str, list[list[Any]]]


class BadRecord(ValueError):
    """A record a converter cannot turn into rows; ``code`` says why (a contract or admission code, or
    ``unreadable_record``)."""

    def __init__(self, message: str, code: str = UNREADABLE_RECORD) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class Message(Protocol):
    """What is read of a Kafka record (kafka-python's ConsumerRecord has it)."""

    offset: int
    value: bytes | None
    timestamp: int  # milliseconds since the epoch; -1 when unknown


@dataclass(frozen=True)
class RecordRows:
    """The rows one record gives one table (and, once batches of several partitions are merged, where it
    came from)."""

    offset: int
    value: bytes
    rows: list[list[Any]]
    topic: str = ""
    partition: int = -1


@dataclass(frozen=True)
class Refused:
    topic: str
    partition: int
    offset: int
    value: bytes
    code: str
    message: str


@dataclass
class Converted:
    tables: dict[str, list[RecordRows]] = field(default_factory=dict)  # per table, in offset order
    refused: list[Refused] = field(default_factory=list)


Converter = Callable[..., Rows]  # (raw, partition, offset, *, received_at) -> {table: rows}; raises BadRecord
RowCheck = Callable[[str, list[Any]], "str | None"]  # (table, row) -> why it does not fit, or None


def convert(topic: str, partition: int, messages: Iterable[Message], to_rows: Converter,
            check_row: RowCheck) -> Converted:
    """Every record's rows, checked; a record that fails either step is refused whole."""
    out = Converted()
    for m in messages:
        value = m.value or b""
        try:
            headers = getattr(m, "headers", None)  # late data: the spool's and the simulator's marks
            extra = {"headers": headers} if headers else {}
            tables = to_rows(value, partition, m.offset, received_at=_timestamp(m), **extra)
        except BadRecord as exc:
            out.refused.append(Refused(topic, partition, m.offset, value, exc.code, exc.message))
            continue
        problem = next((p for table, rows in tables.items() for row in rows if (p := check_row(table, row))), None)
        if problem is not None:
            out.refused.append(Refused(topic, partition, m.offset, value, UNSTORABLE_VALUE, problem))
            continue
        for table, rows in tables.items():
            if rows:
                out.tables.setdefault(table, []).append(RecordRows(m.offset, value, rows, topic, partition))
    return out


def insert_isolated(topic: str, partition: int, items: Sequence[RecordRows],
                    insert: Callable[[Sequence[RecordRows]], None], probe: Callable[[], None]) -> list[Refused]:
    """Insert ``items``; return the records the store refuses on their own. Raises if the store is down."""
    refused: list[Refused] = []
    pending = [list(items)] if items else []
    while pending:
        part = pending.pop()
        try:
            insert(part)
            continue
        except Exception as exc:  # the store's errors are many types; the record is what we can isolate
            error = exc
        if len(part) > 1:
            middle = len(part) // 2
            pending += [part[middle:], part[:middle]]  # first half first: inserts keep offset order
            continue
        probe()  # raises when the store itself does not answer: an outage, not a bad record
        try:
            insert(part)
            continue
        except Exception as exc:
            error = exc
        item = part[0]
        where = (item.topic or topic, item.partition if item.partition >= 0 else partition)
        log.warning("%s[%d]@%d: the store refused the record's rows: %s", *where, item.offset, error)
        refused.append(Refused(*where, item.offset, item.value, INSERT_REFUSED, f"{type(error).__name__}: {error}"))
    return refused


def _timestamp(m: Message) -> datetime | None:
    stamp = getattr(m, "timestamp", None)
    return datetime.fromtimestamp(stamp / 1000, timezone.utc) if isinstance(stamp, int) and stamp > 0 else None
