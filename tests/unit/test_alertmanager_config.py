"""deploy/alertmanager: where each kind of alert goes (amtool's route tests), grouping, inhibition.

amtool is the one from the Debian package prometheus-alertmanager (`make tools` installs it).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "deploy" / "alertmanager" / "alertmanager.yml"
amtool = pytest.mark.skipif(shutil.which("amtool") is None, reason="amtool not installed (make tools)")

# (labels of an alert, the receivers it must reach, in the order of the routing tree)
ROUTES = [
    pytest.param({"alertname": "DossierDueSoon", "escalation": "officer", "commune_code": "18100", "field": "Hộ tịch"},
                 ["officers-webhook"], id="due soon, a commune without its own route"),
    pytest.param({"alertname": "DossierOverdue", "escalation": "officer", "commune_code": "18754", "field": "Hộ tịch"},
                 ["officers-18754-telegram"], id="overdue, Sông Trí's officers on Telegram"),
    pytest.param({"alertname": "DossierDueSoon", "escalation": "officer", "commune_code": "18073", "field": "Chứng thực"},
                 ["officers-18073-telegram"], id="due soon, Thành Sen's officers on Telegram"),
    pytest.param({"alertname": "DossierOverdue", "escalation": "officer", "commune_code": "18754", "field": "Đất đai"},
                 ["land-office-email", "officers-18754-telegram"], id="land dossier: the land office and the commune"),
    pytest.param({"alertname": "DossierOverdue", "escalation": "officer", "commune_code": "18100", "field": "Đất đai"},
                 ["land-office-email", "officers-webhook"], id="land dossier elsewhere"),
    pytest.param({"alertname": "DossierOverdue", "escalation": "commune_leaders", "commune_code": "18754"},
                 ["leaders-18754-email"], id="escalated to Sông Trí's leaders by e-mail"),
    pytest.param({"alertname": "DossierOverdue", "escalation": "commune_leaders", "commune_code": "18100"},
                 ["commune-leaders-webhook"], id="escalated to another commune's leaders"),
    pytest.param({"alertname": "DossierOverdue", "escalation": "province", "commune_code": "18754", "field": "Đất đai"},
                 ["province-office-email"], id="escalated to the province"),
    pytest.param({"alertname": "OnestopSinkDown", "severity": "critical", "job": "onestop-sink"},
                 ["ioc-webhook"], id="pipeline outage"),
    pytest.param({"alertname": "OnestopCommuneSilent", "severity": "warning", "commune_code": "18754"},
                 ["ioc-webhook"], id="silent commune goes to the IOC, not to the commune"),
]


def _config() -> dict:
    return yaml.safe_load(CONFIG.read_text(encoding="utf-8"))


@amtool
@pytest.mark.parametrize(("labels", "receivers"), ROUTES)
def test_amtool_routes(labels: dict[str, str], receivers: list[str]) -> None:
    args = [f"{k}={v}" for k, v in labels.items()]
    result = subprocess.run(["amtool", "config", "routes", "test", f"--config.file={CONFIG}",
                             f"--verify.receivers={','.join(receivers)}", *args], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@amtool
def test_amtool_check_config_finds_the_templates() -> None:
    result = subprocess.run(["amtool", "check-config", str(CONFIG)], capture_output=True, text=True)
    assert result.returncode == 0 and "1 templates" in result.stdout, result.stdout + result.stderr


def _dossier_route() -> dict:
    return next(r for r in _config()["route"]["routes"] if any("DossierOverdue" in m for m in r["matchers"]))


def test_dossier_alerts_are_grouped_per_commune_and_reminded_daily() -> None:
    route = _dossier_route()
    assert "commune_code" in route["group_by"] and "dossier_id" not in route["group_by"]
    assert route["repeat_interval"] == "24h"


def test_due_soon_is_inhibited_by_overdue_of_the_same_dossier() -> None:
    rules = _config()["inhibit_rules"]
    assert {"source_matchers": ['alertname="DossierOverdue"'], "target_matchers": ['alertname="DossierDueSoon"'],
            "equal": ["dossier_id"]} in rules


def test_inhibitions_on_other_labels_need_those_labels_on_both_sides() -> None:
    # Missing labels are equal in Alertmanager: `equal: [job]` alone would let any critical dossier
    # alert (no job) inhibit every warning one.
    for rule in _config()["inhibit_rules"]:
        for label in rule["equal"]:
            if label == "dossier_id":
                continue
            assert f'{label}=~".+"' in rule["source_matchers"] and f'{label}=~".+"' in rule["target_matchers"], rule


def test_every_receiver_tells_when_an_alert_is_resolved() -> None:
    for receiver in _config()["receivers"]:
        configs = [c for key, items in receiver.items() if key.endswith("_configs") for c in items]
        assert configs and all(c.get("send_resolved") is True for c in configs), receiver["name"]
