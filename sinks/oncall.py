"""What ``onestop alerts list`` and ``onestop alerts silence`` show: active alerts as rows, and silences as commands.

A silence mutes every alert whose labels match all its matchers, for a while.
On-call staff silence a commune (``commune_code``), one dossier
(``dossier_id``), or a commune's field (``commune_code`` + ``field``), with
amtool or the API; both forms are printed, so either can be copied.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from onestop.communes import commune
from onestop.workcal import VN_TZ
from sinks.alertmanager import Matcher

LIST_COLUMNS = ["dossier", "alert", "step", "commune", "procedure", "due", "overdue (wd)", "since", "state"]


def alert_rows(alerts: list[dict]) -> list[tuple[str, ...]]:
    """One row per Alertmanager alert (``GET /api/v2/alerts``), oldest first."""
    rows = []
    for a in sorted(alerts, key=lambda a: (a.get("startsAt", ""), a["labels"].get("dossier_id", ""))):
        labels, notes = a["labels"], a.get("annotations") or {}
        code = labels.get("commune_code", "")
        found = commune(code)
        status = a.get("status") or {}
        state = status.get("state", "")
        if status.get("silencedBy"):
            state = "silenced"
        elif status.get("inhibitedBy"):
            state = "inhibited"
        rows.append((labels.get("dossier_id", ""), labels.get("alertname", ""), labels.get("escalation", ""),
                     f"{code} {found.name}" if found else code, labels.get("procedure_code", ""),
                     notes.get("due_date", ""), notes.get("working_days_overdue", ""), _local(a.get("startsAt")),
                     state))
    return rows


def _local(text: str | None) -> str:
    if not text:
        return ""
    at = datetime.fromisoformat(text[:19] + "+00:00")
    return at.astimezone(VN_TZ).strftime("%d/%m/%Y %H:%M")


@dataclass(frozen=True)
class SilencePlan:
    matchers: list[Matcher]
    starts: datetime
    ends: datetime
    author: str
    comment: str
    url: str

    def amtool(self) -> str:
        words = ["amtool", "silence", "add", f"--alertmanager.url={self.url}",
                 f"--duration={_duration(self.ends - self.starts)}", f"--author={self.author}",
                 f"--comment={self.comment}"]
        words += [f'{m.name}="{m.value}"' for m in self.matchers]
        return " ".join(shlex.quote(w) for w in words)

    def body(self) -> dict:
        return {"matchers": [{"name": m.name, "value": m.value, "isRegex": m.isRegex, "isEqual": m.isEqual}
                             for m in self.matchers],
                "startsAt": _iso(self.starts), "endsAt": _iso(self.ends), "createdBy": self.author,
                "comment": self.comment}

    def curl(self) -> str:
        body = json.dumps(self.body(), ensure_ascii=False)
        return (f"curl -sS -X POST {shlex.quote(self.url + '/api/v2/silences')} "
                f"-H 'Content-Type: application/json' -d {shlex.quote(body)}")


def silence_plan(url: str, *, commune_code: str | None, dossier_id: str | None, field: str | None,
                 duration: timedelta, author: str, comment: str, now: datetime | None = None) -> SilencePlan:
    """The silence for a commune, a dossier, or a commune's field. At least one of them is required."""
    if not (commune_code or dossier_id):
        raise ValueError("say what to silence: a commune (--commune) or a dossier (--dossier)")
    if commune_code is not None and not (len(commune_code) == 5 and commune_code.isdigit()):
        raise ValueError(f"a commune code has 5 digits, got {commune_code!r}")
    if duration <= timedelta():
        raise ValueError("the duration must be positive")
    matchers = [Matcher(name, value) for name, value in (("commune_code", commune_code), ("dossier_id", dossier_id),
                                                         ("field", field)) if value]
    starts = (now or datetime.now(timezone.utc)).astimezone(timezone.utc)
    return SilencePlan(matchers, starts, starts + duration, author, comment, url.rstrip("/"))


def parse_duration(text: str) -> timedelta:
    """``90m``, ``2h``, ``3d``, ``1w``: amtool's units for silences."""
    units = {"m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
    number, unit = text[:-1], text[-1:]
    if unit not in units or not number.isdigit() or int(number) == 0:
        raise ValueError(f"duration {text!r}: expected a positive number and one of m, h, d, w (e.g. 2h)")
    return timedelta(seconds=int(number) * units[unit])


def _duration(span: timedelta) -> str:
    minutes = int(span.total_seconds() // 60)
    return f"{minutes // 60}h" if minutes % 60 == 0 else f"{minutes}m"


def _iso(at: datetime) -> str:
    return at.astimezone(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")
