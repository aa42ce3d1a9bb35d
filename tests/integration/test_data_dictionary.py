"""docs/data-dictionary.md against a freshly migrated store: every table and column on both sides, same types.

The page's format: a ``### `table` `` heading, an ``Engine: `X` `` line, and a
markdown table ``| Column | Type | Meaning |``; anything else is prose.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import clickhouse_connect
import pytest

from sinks import migrations

pytestmark = pytest.mark.integration
DICTIONARY = Path(__file__).resolve().parents[2] / "docs" / "data-dictionary.md"
DB = "ioc"
_HEADING = re.compile(r"^###\s+`?([A-Za-z_]\w*)`?\s*$")
_ENGINE = re.compile(r"^Engine:\s*`(\w+)`(.*)$")
_CELL_SPLIT = re.compile(r"(?<!\\)\|")


@dataclass
class Section:
    name: str
    engine: str | None = None
    reading: str = ""  # what the Engine line says about reading it
    columns: dict[str, tuple[str, str]] = field(default_factory=dict)  # column -> (type, meaning)


def _cells(line: str) -> list[str]:
    return [c.strip().strip("`").strip() for c in _CELL_SPLIT.split(line.strip().strip("|"))]


def parse(text: str) -> dict[str, Section]:
    sections: dict[str, Section] = {}
    current: Section | None = None
    for line in text.splitlines():
        heading = _HEADING.match(line)
        if heading:
            assert heading[1] not in sections, f"{heading[1]} is documented twice"
            current = sections[heading[1]] = Section(heading[1])
            continue
        if line.startswith(("# ", "## ")):
            current = None
        if current is None:
            continue
        engine = _ENGINE.match(line)
        if engine:
            current.engine, current.reading = engine[1], engine[2]
        elif line.startswith("|"):
            cells = _cells(line)
            if len(cells) != 3 or cells[0].lower() == "column" or not cells[0].strip("-: "):
                continue
            assert cells[0] not in current.columns, f"{current.name}.{cells[0]} is documented twice"
            current.columns[cells[0]] = (cells[1], cells[2])
    return sections


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> dict[str, Section]:
    """What a fresh store holds, from system.tables and system.columns, in the same shape."""
    client = clickhouse_connect.get_client(dsn=f"chdb://{tmp_path_factory.mktemp('dictionary')}")
    try:
        migrations.migrate(client, DB)
        tables = {name: Section(name, engine) for name, engine in client.query(
            f"SELECT name, engine FROM system.tables WHERE database = '{DB}'").result_rows}
        for table, column, type_ in client.query(
                f"SELECT table, name, type FROM system.columns WHERE database = '{DB}'").result_rows:
            tables[table].columns[column] = (type_, "")
    finally:
        client.close()
    return tables


@pytest.fixture(scope="module")
def documented() -> dict[str, Section]:
    sections = parse(DICTIONARY.read_text(encoding="utf-8"))
    assert len(sections) > 30 and all(s.columns for s in sections.values())
    return sections


def test_every_table_and_view_is_documented_and_nothing_else(store, documented):
    assert sorted(set(store) - set(documented)) == [], "in the store, missing from the dictionary"
    assert sorted(set(documented) - set(store)) == [], "in the dictionary, not in the store"


def test_every_column_is_documented_with_the_stores_type(store, documented):
    problems = []
    for table in sorted(set(store) & set(documented)):
        have, doc = store[table].columns, documented[table].columns
        problems += [f"{table}.{c}: missing from the dictionary" for c in have if c not in doc]
        problems += [f"{table}.{c}: not in the store" for c in doc if c not in have]
        problems += [f"{table}.{c}: the store says {have[c][0]}, the dictionary {doc[c][0]}"
                     for c in have if c in doc and have[c][0] != doc[c][0]]
    assert problems == []


def test_every_column_has_a_meaning(documented):
    assert [f"{t}.{c}" for t, s in documented.items() for c, (_, meaning) in s.columns.items() if not meaning] == []


def test_each_table_is_documented_with_its_engine(store, documented):
    assert {t: documented[t].engine for t in store if t in documented} == {t: s.engine for t, s in store.items()}


def test_tables_that_can_hold_a_row_twice_say_how_to_read_them(store, documented):
    replacing = [t for t, s in store.items() if s.engine == "ReplacingMergeTree"]
    assert replacing
    assert [t for t in replacing if "FINAL" not in documented[t].reading
            and "read through" not in documented[t].reading] == []
    assert [t for t, s in store.items() if s.engine == "AggregatingMergeTree"
            and "uniqExactMerge" not in documented[t].reading] == []


def test_the_parser_sees_a_table_as_the_page_writes_it():
    sample = ("## Group\n\n### `t`\n\nEngine: `View` · already deduplicated.\n\n| Column | Type | Meaning |\n"
              "|---|---|---|\n| `a` | `DateTime64(3, 'UTC')` | when, in UTC \\| local |\n\n## Next\n\n| x | y | z |\n")
    [section] = parse(sample).values()
    assert (section.name, section.engine) == ("t", "View")
    assert section.columns == {"a": ("DateTime64(3, 'UTC')", "when, in UTC \\| local")}
