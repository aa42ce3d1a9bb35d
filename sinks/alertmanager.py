"""Alertmanager's API v2, as the alert router and the ``onestop alerts`` commands use it.

Only what they need: post alerts, list alerts, create a silence, read the
status. Errors are two kinds, because the router treats them differently:
``AlertmanagerUnavailable`` (no answer, a timeout, 5xx, 429) is retried until
Alertmanager takes the alerts; ``AlertmanagerRejected`` (4xx) means the request
itself is wrong and retrying it would never succeed.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone

import httpx
import msgspec

from sinks.alert_book import OUR_ALERTNAMES, Posting

_encode = msgspec.json.Encoder().encode


class AlertmanagerError(Exception):
    """Alertmanager did not do what was asked. ``status`` is the HTTP status, if there was an answer."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class AlertmanagerUnavailable(AlertmanagerError):
    """No answer, or an answer that says "later" (5xx, 429): try again."""


class AlertmanagerRejected(AlertmanagerError):
    """A 4xx answer: the request is wrong, and the same request will be refused again."""


class Matcher(msgspec.Struct, frozen=True):
    name: str
    value: str
    isRegex: bool = False
    isEqual: bool = True


class AlertmanagerClient:
    def __init__(self, url: str, *, timeout: float = 10.0, transport: httpx.BaseTransport | None = None) -> None:
        self.url = url.rstrip("/")
        self._http = httpx.Client(base_url=self.url, timeout=timeout, transport=transport)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> "AlertmanagerClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _send(self, method: str, path: str, **kwargs: object) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)  # type: ignore[arg-type]
        except httpx.HTTPError as exc:
            raise AlertmanagerUnavailable(f"{method} {self.url}{path}: {type(exc).__name__}: {exc}") from exc
        if response.status_code >= 500 or response.status_code == 429:
            raise AlertmanagerUnavailable(f"{method} {self.url}{path}: {response.status_code} {response.text[:300]}",
                                          response.status_code)
        if response.status_code >= 400:
            raise AlertmanagerRejected(f"{method} {self.url}{path}: {response.status_code} {response.text[:500]}",
                                       response.status_code)
        return response

    def post_alerts(self, postings: list[Posting]) -> None:
        """Create or update ``postings``; the same labels again update the same alert."""
        self._send("POST", "/api/v2/alerts", content=_encode(postings),
                   headers={"Content-Type": "application/json"})

    def alerts(self, filters: list[str] | None = None, *, active: bool = True, silenced: bool = True,
               inhibited: bool = True) -> list[dict]:
        """Alertmanager's current alerts matching every matcher in ``filters`` (e.g. ``commune_code="18754"``)."""
        params: list[tuple[str, str]] = [("filter", f) for f in filters or []]
        params += [("active", _flag(active)), ("silenced", _flag(silenced)), ("inhibited", _flag(inhibited))]
        return self._send("GET", "/api/v2/alerts", params=params).json()

    def dossier_alerts(self, filters: list[str] | None = None) -> list[Posting]:
        """The dossier alerts Alertmanager holds (firing, silenced or inhibited), as postings."""
        names = "|".join(OUR_ALERTNAMES)
        found = self.alerts([f'alertname=~"{names}"', *(filters or [])])
        return [Posting(a["labels"], a.get("annotations") or {}, _time(a["startsAt"]), _time(a["endsAt"]))
                for a in found]

    def create_silence(self, matchers: list[Matcher], starts: datetime, ends: datetime, created_by: str,
                       comment: str) -> str:
        body = {"matchers": [msgspec.structs.asdict(m) for m in matchers], "startsAt": _iso(starts),
                "endsAt": _iso(ends), "createdBy": created_by, "comment": comment}
        return self._send("POST", "/api/v2/silences", json=body).json()["silenceID"]

    def silences(self) -> list[dict]:
        return self._send("GET", "/api/v2/silences").json()

    def status(self) -> dict:
        return self._send("GET", "/api/v2/status").json()


def _flag(value: bool) -> str:
    return "true" if value else "false"


def _time(text: str) -> datetime:
    # Alertmanager writes nanoseconds; Python reads at most microseconds.
    return datetime.fromisoformat(re.sub(r"(\.\d{6})\d+", r"\1", text).replace("Z", "+00:00"))


def _iso(at: datetime) -> str:
    return at.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")
