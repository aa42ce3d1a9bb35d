"""Write deploy/prometheus/tests/silent_commune.test.yml: promtool tests of OnestopCommuneSilent on real dates.

    python -m tests.tools.silent_commune_series           # rewrite the file
    python -m tests.tools.silent_commune_series --check   # exit 1 if the file is not what this writes

The working-time series the rule joins on (``onestop_working_time`` and the working clock) are
computed here from the domain calendar (``onestop.workcal``, ``onestop.workclock``), exactly as
the worker exports them, for a weekday, a night, a weekend, Tết 2026 and a make-up Saturday.
Whether the rule must fire at each instant is written by hand in ``CASES`` (office hours
07:30-11:30 and 13:00-17:00; more than 2 working hours of silence, for 15 minutes), not derived
from the calendar, so the test checks the rule against the law's calendar, not against itself.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import yaml

from onestop.workcal import VN_TZ, WorkCalendar
from onestop.workclock import WorkingClock

REPO_ROOT = Path(__file__).resolve().parents[2]

OUT = REPO_ROOT / "deploy" / "prometheus" / "tests" / "silent_commune.test.yml"
RULES = REPO_ROOT / "deploy" / "prometheus" / "rules" / "communes.yml"
STEP = timedelta(minutes=5)
SILENT, LIVELY = "18754", "18100"  # Phường Sông Trí goes quiet; Phường Trần Phú keeps sending
WORKER = 'job="onestop-worker",instance="worker:9101",province_code="42"'


def vn(*args: int) -> datetime:
    return datetime(*args, tzinfo=VN_TZ)


@dataclass(frozen=True)
class Case:
    name: str
    last_event: datetime  # the silent commune's last event; the series start here
    checks: tuple[tuple[datetime, bool], ...]  # (instant, alert firing?), by hand


CASES = (
    Case("a weekday: working hours count, the lunch break does not", vn(2026, 12, 3, 10), (
        (vn(2026, 12, 3, 11, 30), False),  # 1.5 working hours
        (vn(2026, 12, 3, 13, 40), False),  # 2 h 10 min, but not yet for 15 minutes
        (vn(2026, 12, 3, 14, 0), True),
        (vn(2026, 12, 3, 17, 30), False),  # office closed
        (vn(2026, 12, 4, 8, 0), True),  # Friday morning, still silent
    )),
    Case("no alert at night; the evening hour and the morning add up", vn(2026, 12, 3, 16), (
        (vn(2026, 12, 3, 16, 50), False),
        (vn(2026, 12, 3, 22, 0), False),
        (vn(2026, 12, 4, 3, 0), False),
        (vn(2026, 12, 4, 8, 30), False),  # 16:00-17:00 and 07:30-08:30: exactly 2 hours
        (vn(2026, 12, 4, 9, 0), True),
    )),
    Case("no alert on a Saturday or a Sunday", vn(2026, 12, 4, 13), (
        (vn(2026, 12, 4, 16, 0), True),  # Friday afternoon: 3 hours
        (vn(2026, 12, 5, 10, 0), False),
        (vn(2026, 12, 6, 10, 0), False),
        (vn(2026, 12, 6, 23, 0), False),
        (vn(2026, 12, 7, 8, 0), True),  # Monday morning
    )),
    Case("no alert on Tết (Mon 16 to Fri 20 Feb 2026, weekdays off)", vn(2026, 2, 13, 13), (
        (vn(2026, 2, 13, 16, 0), True),
        (vn(2026, 2, 16, 10, 0), False),  # Tết eve
        (vn(2026, 2, 17, 10, 0), False),  # Mùng 1 Tết
        (vn(2026, 2, 20, 10, 0), False),  # Mùng 4 Tết
        (vn(2026, 2, 23, 8, 0), True),  # first working day after Tết
    )),
    Case("a make-up Saturday is working time (Sat 22 Aug 2026)", vn(2026, 8, 21, 16, 30), (
        (vn(2026, 8, 22, 9, 0), False),  # 16:30-17:00 and 07:30-09:00: exactly 2 hours
        (vn(2026, 8, 22, 9, 30), True),
    )),
)


def promtool_values(values: list[int]) -> str:
    """promtool's expanding notation: runs with a constant step become ``a+bxn`` (n+1 values)."""
    out, i = [], 0
    while i < len(values):
        j = i
        step = values[i + 1] - values[i] if i + 1 < len(values) else 0
        while j + 1 < len(values) and values[j + 1] - values[j] == step:
            j += 1
        if j == i:
            out.append(str(values[i]))
        else:
            out.append(f"{values[i]}{'+' if step >= 0 else '-'}{abs(step)}x{j - i}")
        i = j + 1
    return " ".join(out)


def _annotations() -> dict[str, str]:
    rules = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    [rule] = [r for g in rules["groups"] for r in g["rules"] if r.get("alert") == "OnestopCommuneSilent"]
    found = {k: v.replace("{{ $labels.commune_code }}", SILENT) for k, v in rule["annotations"].items()}
    assert not any("{{" in v for v in found.values()), "annotations use more than the commune code"
    return found


def case_test(case: Case, clock: WorkingClock) -> dict:
    end = max(at for at, _ in case.checks) + timedelta(hours=1)
    samples = [case.last_event + k * STEP for k in range(int((end - case.last_event) / STEP) + 1)]
    readings = [int(clock.seconds(t)) for t in samples]
    working = [int(clock.is_working(t)) for t in samples]
    notes = _annotations()
    tests = []
    for at, firing in case.checks:
        minutes = int((at - case.last_event).total_seconds() // 60)
        expected = [{"exp_labels": {"severity": "warning", "province_code": "42", "commune_code": SILENT},
                     "exp_annotations": notes}] if firing else []
        tests.append({"eval_time": f"{minutes}m", "alertname": "OnestopCommuneSilent", "exp_alerts": expected})
    return {
        "name": f"{case.name} (from {case.last_event:%a %d %b %Y %H:%M})",
        "interval": "5m",
        "input_series": [
            {"series": f"onestop_working_time{{{WORKER}}}", "values": promtool_values(working)},
            {"series": f"onestop_working_clock_seconds{{{WORKER}}}", "values": promtool_values(readings)},
            {"series": f'onestop_commune_last_event_working_clock_seconds{{{WORKER},commune_code="{SILENT}"}}',
             "values": promtool_values([readings[0]] * len(samples))},
            {"series": f'onestop_commune_last_event_working_clock_seconds{{{WORKER},commune_code="{LIVELY}"}}',
             "values": promtool_values(readings)},
        ],
        "alert_rule_test": tests,
    }


def render() -> str:
    clock = WorkingClock(WorkCalendar())
    document = {"rule_files": ["../rules/communes.yml"], "evaluation_interval": "1m",
                "tests": [case_test(case, clock) for case in CASES]}
    header = ("# GENERATED by `python -m tests.tools.silent_commune_series` from the domain calendar; do not edit.\n"
              "# promtool test rules deploy/prometheus/tests/silent_commune.test.yml\n")
    return header + yaml.safe_dump(document, allow_unicode=True, sort_keys=False, width=100000)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if the file differs instead of writing it")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        if not OUT.exists() or OUT.read_text(encoding="utf-8") != text:
            print(f"{OUT} is out of date: run python -m tests.tools.silent_commune_series", file=sys.stderr)
            return 1
        return 0
    Path(OUT).write_text(text, encoding="utf-8")
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
