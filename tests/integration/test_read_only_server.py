"""The read-only path against a ClickHouse server, when ONESTOP_TEST_CLICKHOUSE_URL names one.

No server can run on the development machines, so this is skipped there; the
same refusals are tested on chDB in test_read_only_store.py.
"""

from __future__ import annotations

import os

import pytest

from onestop.settings import Settings
from sinks.query_service import open_reader, query_rows
from sinks.readonly import ReadRefused, ServerReader

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(not os.environ.get("ONESTOP_TEST_CLICKHOUSE_URL"),
                                 reason="set ONESTOP_TEST_CLICKHOUSE_URL=http://user:pass@host:8123 to run")]


@pytest.fixture
def reader():
    opened = open_reader(Settings(clickhouse_dsn=os.environ["ONESTOP_TEST_CLICKHOUSE_URL"]))
    assert isinstance(opened, ServerReader)
    yield opened
    opened.close()


def test_a_select_streams_with_parameters(reader):
    columns, rows = query_rows(reader, "SELECT number AS n FROM numbers(10) WHERE number >= {low:UInt8}", {"low": 7})
    assert columns == ["n"] and rows == [(7,), (8,), (9,)]


@pytest.mark.parametrize("sql, why", [
    ("CREATE TABLE onestop_readonly_probe (a UInt8) ENGINE = Memory", "CREATE is not a read"),
    ("SYSTEM STOP MERGES", "SYSTEM is not a read"),
    ("SELECT 1; SELECT 2", "one statement at a time"),
    ("SELECT 1 SETTINGS max_threads = 1", "READONLY|readonly"),
])
def test_the_server_path_refuses(reader, sql, why):
    with pytest.raises(ReadRefused, match=why):
        with reader.stream(sql):
            pass
