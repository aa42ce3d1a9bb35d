"""The history benchmark runs end to end on a reduced history (the full one is `make bench-history`).

It only checks that the run exits 0 and prints a load rate and one timing per
panel of the province overview and the commune drill-down; speed is never
asserted (docs/benchmarks.md has the figures).
"""

from __future__ import annotations

import pytest

from dashboards.catalog import COMMUNE, PROVINCE
from tests.bench import history

pytestmark = pytest.mark.integration


def test_the_reduced_history_benchmark_prints_every_panel(tmp_path, capsys):
    out = tmp_path / "history.json"
    assert history.main(["--events", "200000", "--runs", "1", "--chunk", "20000", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "events/s" in printed
    for dashboard in (PROVINCE, COMMUNE):
        for panel in dashboard.panels:
            assert any(line.startswith(dashboard.uid) and f" {panel.key} " in line for line in printed.splitlines()), \
                f"no figure for {dashboard.uid} {panel.key}"
    import json

    figures = json.loads(out.read_text())
    assert figures["load"]["events"] > 190_000 and len(figures["panels"]) == len(PROVINCE.panels) + len(COMMUNE.panels)
