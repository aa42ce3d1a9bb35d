"""Isolating the records a store refuses (``sinks.isolate``) and the column checks (``sinks.columns``)."""

from dataclasses import dataclass
from datetime import date, datetime, timezone

import pytest

from sinks import columns, schema
from sinks.isolate import (INSERT_REFUSED, UNREADABLE_RECORD, UNSTORABLE_VALUE, BadRecord, RecordRows, convert,
                           insert_isolated)
from sinks.rows import COLUMNS


@dataclass
class Msg:
    offset: int
    value: bytes
    timestamp: int = -1


class Store:
    """An insert that refuses any part holding a row in ``bad``, and records what it took."""

    def __init__(self, bad: set[int], up: bool = True) -> None:
        self.bad, self.up, self.calls, self.written = bad, up, [], []

    def insert(self, part) -> None:
        self.calls.append([i.offset for i in part])
        if not self.up or any(i.offset in self.bad for i in part):
            raise RuntimeError("Unable to create native array for column seq")
        self.written += [i.offset for i in part]

    def probe(self) -> None:
        if not self.up:
            raise ConnectionError("store down")


def items(offsets) -> list[RecordRows]:
    return [RecordRows(o, f"r{o}".encode(), [[o]]) for o in offsets]


def test_a_refused_record_is_set_apart_and_every_other_record_is_written_in_order():
    store = Store(bad={13, 40})
    refused = insert_isolated("t", 3, items(range(10, 50)), store.insert, store.probe)
    assert [(r.offset, r.code, r.partition, r.value) for r in refused] == [(13, INSERT_REFUSED, 3, b"r13"),
                                                                         (40, INSERT_REFUSED, 3, b"r40")]
    assert store.written == [o for o in range(10, 50) if o not in {13, 40}]
    assert "native array" in refused[0].message


def test_a_batch_the_store_takes_is_one_insert():
    store = Store(bad=set())
    assert insert_isolated("t", 0, items(range(100)), store.insert, store.probe) == []
    assert store.calls == [list(range(100))]


def test_an_outage_refuses_nothing_and_is_raised():
    store = Store(bad=set(), up=False)
    with pytest.raises(ConnectionError):
        insert_isolated("t", 0, items(range(8)), store.insert, store.probe)
    assert store.written == []


def test_a_record_that_fails_once_and_then_goes_in_is_not_refused():
    calls = []

    def flaky(part):
        calls.append(len(part))
        if len(calls) <= 2:  # the whole batch fails, then record 0 alone fails once
            raise TimeoutError("blip")

    assert insert_isolated("t", 0, items(range(2)), flaky, lambda: None) == []


def to_rows(raw: bytes, partition: int, offset: int, *, received_at=None):
    if raw == b"junk":
        raise BadRecord("not JSON")
    if raw == b"contract":
        raise BadRecord("`seq`: too large", "invalid_field")
    return {schema.EPOCHS: [[partition, int(raw)]]}


def test_convert_refuses_unreadable_records_and_values_that_do_not_fit_their_column():
    msgs = [Msg(0, b"7"), Msg(1, b"junk"), Msg(2, b"contract"), Msg(3, str(2**64).encode()), Msg(4, b"9")]
    out = convert("ioc.metrics", 5, msgs, to_rows, lambda t, row: columns.row_problem(t, COLUMNS[t], row))
    assert [[i.offset for i in v] for v in out.tables.values()] == [[0, 4]]
    assert [(r.offset, r.code) for r in out.refused] == [(1, UNREADABLE_RECORD), (2, "invalid_field"),
                                                         (3, UNSTORABLE_VALUE)]
    assert "counter_epochs.epoch (UInt64)" in out.refused[2].message


def test_convert_hands_the_record_timestamp_to_the_converter():
    seen = []

    def remember(raw, partition, offset, *, received_at=None):
        seen.append(received_at)
        return {}

    convert("t", 0, [Msg(0, b"", 1_767_225_600_000), Msg(1, b"")], remember, lambda t, r: None)
    assert seen == [datetime(2026, 1, 1, tzinfo=timezone.utc), None]


@pytest.mark.parametrize(("column_type", "good", "bad"), [
    ("UInt32", [0, 2**32 - 1], [-1, 2**32, "1", None]),
    ("UInt8", [1, 255], [256]),
    ("Int32", [-(2**31), 2**31 - 1], [2**31]),
    ("String", ["", "Hà Tĩnh", b"\xff"], ["\ud800", None, 1]),
    ("LowCardinality(String)", ["18073"], [18073]),
    ("Nullable(String)", [None, "x"], [2]),
    ("DateTime64(3, 'UTC')", [datetime(1900, 1, 1, tzinfo=timezone.utc), datetime(2299, 12, 31, tzinfo=timezone.utc)],
     [datetime(1899, 12, 31, tzinfo=timezone.utc), datetime(2300, 1, 1, tzinfo=timezone.utc), "2026-01-01"]),
    ("Date", [date(1970, 1, 1), date(2149, 6, 6)], [date(1969, 12, 31), date(2149, 6, 7)]),
    ("Bool", [True, False], [1, None]),
])
def test_column_checks(column_type, good, bad):
    check = columns.check_for(column_type)
    assert all(check(v) for v in good) and not any(check(v) for v in bad)


def test_every_column_the_sink_writes_has_a_check():
    for table, names in COLUMNS.items():
        types = columns.table_types(table)
        assert set(names) <= set(types)
        for name in names:
            columns.check_for(types[name])
    assert columns.table_types(schema.EVENTS)["due_at"] == "Nullable(DateTime64(3, 'UTC'))"
