"""Every example query in docs/queries.md runs on a seeded store and returns rows.

The store holds simulated events as the sink writes them, and what the worker's
processor publishes for them (counters, alerts, dead letters), written through
the sink's row functions (``seed.seed_pipeline``).
"""

from __future__ import annotations

from pathlib import Path

import re
from collections import Counter
from datetime import date

import pytest
from seed import seed_pipeline

from onestop.events import EventType
from onestop.settings import Settings
from onestop.workcal import VN_TZ
from producers.simulator import SimulationConfig, simulate
from sinks.query_service import open_reader, query_rows

REPO_ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.integration

DOC = REPO_ROOT / "docs" / "queries.md"
# A late rate above the default, so that some dossiers are still open and overdue at the end of the period.
CFG = SimulationConfig(communes=5, dossiers=1500, seed=12, start=date(2026, 9, 14), days=55, late_rate=0.2)


def examples() -> list[tuple[str, str, dict[str, str]]]:
    """(heading, sql, parameters) of every ```sql block, with the parameters its `-- run with` line names."""
    text = DOC.read_text(encoding="utf-8")
    found = []
    for match in re.finditer(r"```sql\n(.*?)```", text, re.DOTALL):
        sql = match.group(1)
        heading = re.findall(r"^### (.+)$", text[:match.start()], re.MULTILINE)[-1]
        run_with = re.search(r"^-- run with (.+)$", sql, re.MULTILINE)
        params = dict(re.findall(r"--param (\w+)=(\S+)", run_with.group(1))) if run_with else {}
        found.append((heading, sql, params))
    return found


@pytest.fixture(scope="module")
def reader(tmp_path_factory):
    settings = Settings(home=tmp_path_factory.mktemp("docs-queries"), clickhouse_dsn="")
    evs = list(simulate(CFG))
    seed_pipeline(settings, evs)
    opened = open_reader(settings)
    yield opened, evs
    opened.close()


def test_the_page_has_the_examples_data_teams_ask_for():
    headings = {h for h, _, _ in examples()}
    assert {"Overdue dossiers by field and month", "The slowest procedures", "A commune's on-time trend"} <= headings
    assert len(examples()) >= 10


@pytest.mark.parametrize("heading, sql, params", examples(), ids=[f"{i}-{h}" for i, (h, _, _) in enumerate(examples())])
def test_every_example_query_runs_and_returns_rows(reader, heading, sql, params):
    opened, _ = reader
    columns, rows = query_rows(opened, sql, params)
    assert columns and rows, heading


def test_accepted_per_day_and_channel_counts_what_was_simulated(reader):
    opened, evs = reader
    heading, sql, params = next(e for e in examples() if e[0] == "Dossiers accepted per day and channel")
    _, rows = query_rows(opened, sql, params)
    since, until = date.fromisoformat(params["since"]), date.fromisoformat(params["until"])
    want = Counter((e.occurred_at.astimezone(VN_TZ).date(), int(e.channel)) for e in evs
                   if e.event_type is EventType.ACCEPTED and since <= e.occurred_at.astimezone(VN_TZ).date() < until)
    assert {(day, channel): n for day, channel, n in rows} == dict(want)
