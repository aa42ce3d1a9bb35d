"""The Grafana JSON the SDK builds from the panel source: what Grafana itself would reject or show wrong.

Grafana cannot run here, so each property Grafana relies on is checked on the
JSON: data-source uids that provisioning defines, unique refIds, the time
filter in every time-series query, a 24-column grid without overlaps, defined
variables, and the committed files equal to a fresh build.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from dashboards.catalog import DASHBOARDS
from dashboards.grafana import build, export
from dashboards.macros import used_variables, uses_time_filter
from dashboards.model import Panel, layout

ROOT = Path(__file__).resolve().parents[2]
PROVISIONING = ROOT / "deploy" / "grafana" / "provisioning"
BUILT = {d.uid: build(d) for d in DASHBOARDS}
BUILT_VARIABLES = {"__interval", "__rate_interval", "__interval_ms", "__range", "__from", "__to"}


def _provisioned_uids() -> dict[str, str]:
    uids = {}
    for path in (PROVISIONING / "datasources").glob("*.yml"):
        for source in yaml.safe_load(path.read_text(encoding="utf-8"))["datasources"]:
            uids[source["uid"]] = source["type"]
    return uids


def _panels(model: dict) -> list[dict]:
    return model["panels"]


def _targets(model: dict):  # type: ignore[no-untyped-def]
    for panel in _panels(model):
        for target in panel["targets"]:
            yield panel, target


def _query_text(target: dict) -> str:
    return target.get("rawSql") or target.get("expr") or ""


@pytest.mark.parametrize("uid", BUILT)
def test_every_target_references_a_provisioned_data_source(uid):
    provisioned = _provisioned_uids()
    for panel, target in _targets(BUILT[uid]):
        for ref in (panel["datasource"], target["datasource"]):
            assert ref["uid"] in provisioned, f"{panel['title']}: {ref} is not provisioned"
            assert provisioned[ref["uid"]] == ref["type"], f"{panel['title']}: type of {ref['uid']}"
    for variable in BUILT[uid].get("templating", {}).get("list", []):
        assert variable["datasource"]["uid"] in provisioned


@pytest.mark.parametrize("uid", BUILT)
def test_ref_ids_are_unique_within_each_panel(uid):
    for panel in _panels(BUILT[uid]):
        ref_ids = [t["refId"] for t in panel["targets"]]
        assert ref_ids and len(ref_ids) == len(set(ref_ids)), panel["title"]


@pytest.mark.parametrize("uid", BUILT)
def test_every_time_series_query_uses_the_time_filter(uid):
    for panel, target in _targets(BUILT[uid]):
        if panel["type"] != "timeseries":
            continue
        if target["datasource"]["type"] == "prometheus":
            continue  # Prometheus queries are always ranged by Grafana
        assert target["queryType"] == "timeseries" and target["format"] == 0, panel["title"]
        assert uses_time_filter(target["rawSql"]), f"{panel['title']} has no $__timeFilter"


def _overlap(a: dict, b: dict) -> bool:
    return a["x"] < b["x"] + b["w"] and b["x"] < a["x"] + a["w"] and a["y"] < b["y"] + b["h"] and b["y"] < a["y"] + a["h"]


@pytest.mark.parametrize("uid", BUILT)
def test_panels_fit_the_24_column_grid_without_overlap(uid):
    positions = [p["gridPos"] for p in _panels(BUILT[uid])]
    for pos in positions:
        assert pos["x"] >= 0 and pos["w"] >= 1 and pos["x"] + pos["w"] <= 24 and pos["h"] >= 1, pos
    for i, a in enumerate(positions):
        for b in positions[i + 1:]:
            assert not _overlap(a, b), (a, b)


@pytest.mark.parametrize("uid", BUILT)
def test_every_variable_a_query_uses_is_defined(uid):
    model = BUILT[uid]
    defined = {v["name"] for v in model.get("templating", {}).get("list", [])} | BUILT_VARIABLES
    for panel, target in _targets(model):
        missing = used_variables(_query_text(target)) - defined
        assert not missing, f"{panel['title']} uses undefined {missing}"


def test_the_commune_drill_down_filters_every_clickhouse_panel_by_its_variable():
    for panel, target in _targets(BUILT["onestop-commune"]):
        assert "'${commune}'" in target["rawSql"], panel["title"]
    for panel, target in _targets(BUILT["onestop-province"]):
        assert "${commune}" not in target["rawSql"], panel["title"]


def test_clickhouse_targets_follow_the_plugins_v4_query_model():
    for uid in ("onestop-province", "onestop-commune"):
        for panel, target in _targets(BUILT[uid]):
            assert target["editorType"] == "sql" and target["datasource"]["type"] == "grafana-clickhouse-datasource"
            assert (target["queryType"], target["format"]) in {("table", 1), ("timeseries", 0)}
            assert "{db}" not in target["rawSql"] and "@scope" not in target["rawSql"]


def test_panels_carry_vietnamese_titles_english_descriptions_and_units():
    for dashboard in DASHBOARDS:
        for panel in dashboard.panels:
            assert re.search(r"[ăâđêôơưạảấầẩẫậắằẳẵặẹẻẽếềểễệỉịọỏốồổỗộớờởỡợụủứừửữựỳỵỷỹàáèéìíòóùúý]",
                             panel.title.lower()), panel.title
            assert panel.title_en and len(panel.description) > 40 and panel.unit


def test_a_too_wide_panel_is_refused():
    wide = Panel("x", "Rộng", "Wide", "d" * 50, "SELECT 1", "stat", width=25)
    with pytest.raises(ValueError, match="24-column"):
        layout((wide,))


def test_the_grid_check_catches_an_overlap():
    assert _overlap({"x": 0, "y": 0, "w": 12, "h": 4}, {"x": 11, "y": 3, "w": 4, "h": 4})
    assert not _overlap({"x": 0, "y": 0, "w": 12, "h": 4}, {"x": 12, "y": 0, "w": 12, "h": 4})


def test_the_committed_dashboards_equal_a_fresh_build(tmp_path):
    for path in export(tmp_path):
        committed = ROOT / "dashboards" / "grafana" / path.name
        assert committed.exists(), f"{committed} missing: run `onestop dashboards export dashboards/grafana`"
        assert json.loads(committed.read_text(encoding="utf-8")) == json.loads(path.read_text(encoding="utf-8")), \
            f"{committed.name} is out of date: run `onestop dashboards export dashboards/grafana`"


def test_the_dashboards_provider_points_at_the_mounted_directory():
    provider = yaml.safe_load((PROVISIONING / "dashboards" / "onestop.yml").read_text(encoding="utf-8"))
    assert provider["providers"][0]["folderUid"] == "onestop-ioc"
    assert provider["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"

