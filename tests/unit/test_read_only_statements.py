"""The statement check of the read path, on statements as ClickHouse's parser writes them back."""

import pytest

from sinks.readonly import ReadRefused, check_statement, literal, query_parameter


@pytest.mark.parametrize("formatted", [
    "SELECT count() FROM ioc.dossier_events", "WITH 1 AS a SELECT a", "SHOW TABLES FROM ioc",
    "DESCRIBE TABLE ioc.alerts", "EXPLAIN SELECT 1", "EXISTS TABLE ioc.alerts",
    "SELECT 1 AS format", "SELECT 'INTO OUTFILE' AS words", "SELECT 'x FORMAT CSV'",
])
def test_reads_pass(formatted):
    check_statement(formatted)


@pytest.mark.parametrize("formatted, why", [
    ("INSERT INTO ioc.alerts FORMAT Values", "INSERT is not a read"),
    ("SYSTEM STOP MERGES", "SYSTEM is not a read"),
    ("KILL QUERY WHERE 1 ASYNC", "KILL is not a read"),
    ("SET readonly = 0", "SET is not a read"),
    ("USE ioc", "USE is not a read"),
    ("", "an empty statement"),
    ("SELECT 1 INTO OUTFILE '/tmp/x.csv'", "INTO OUTFILE"),
    ("SELECT 1 FORMAT CSV", "FORMAT clause"),
])
def test_the_rest_is_refused(formatted, why):
    with pytest.raises(ReadRefused, match=why):
        check_statement(formatted)


def test_a_literal_keeps_quotes_and_backslashes_inside():
    assert literal("it's a \\ test") == "'it\\'s a \\\\ test'"


def test_parameters_in_the_engines_text_form():
    from datetime import date, datetime, timedelta, timezone

    local = datetime(2026, 10, 1, 7, 0, 0, 123000, tzinfo=timezone(timedelta(hours=7)))
    assert query_parameter(local) == "2026-10-01 00:00:00.123"  # as DateTime64(3, 'UTC')
    assert query_parameter(date(2026, 10, 1)) == "2026-10-01"
    assert query_parameter(["18754", "03595"]) == "['18754','03595']"
    assert query_parameter(5) == "5"
