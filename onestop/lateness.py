"""Late data: how long a commune's events take to reach the pipeline, and how many came through a spool.

An event *occurs* at the commune (``occurred_at``) and *arrives* when Kafka takes it: the record's
timestamp, which the publisher sets when it hands the record over (for a record held in the
spool during an outage, when the drain finally sends it). Records the publisher sent from its
spool carry the header ``onestop-spooled: 1``. The simulator, which runs simulated time, states
its simulated arrival in ``onestop-simulated-arrival`` (ISO 8601), which then wins over the
record timestamp.

Per commune and local day of arrival: the delay's p50, p95 and maximum (nearest rank), how
many events came, how many through a spool, and how many "arrived before they occurred" (the
source's clock runs fast; they count with a delay of 0). A commune whose data keeps arriving
late points to a weak network or unstable software; that is a different signal from a commune
that has gone silent.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from typing import Iterable, Sequence

import msgspec

from onestop.workcal import VN_TZ

SPOOLED_HEADER = "onestop-spooled"
SIMULATED_ARRIVAL_HEADER = "onestop-simulated-arrival"
PERCENTILES = (50, 95)


class Delivery(msgspec.Struct, frozen=True):
    """One event's arrival."""

    event_id: str
    commune_code: str
    occurred_at: datetime
    arrived_at: datetime
    spooled: bool = False


def delay_ms(occurred_at: datetime, arrived_at: datetime) -> int:
    """Milliseconds from occurrence to arrival; negative when the source's clock is ahead."""
    return (arrived_at - occurred_at) // _MS


_MS = timedelta(milliseconds=1)


def arrival(timestamp_ms: int | None, headers: Iterable[tuple[str, bytes | None]] | None) -> tuple[datetime | None, bool]:
    """When a Kafka record arrived and whether it came through a spool, from its timestamp and headers."""
    arrived = datetime.fromtimestamp(timestamp_ms / 1000, timezone.utc) if timestamp_ms is not None else None
    spooled = False
    for name, value in headers or ():
        if name == SPOOLED_HEADER:
            spooled = value == b"1"
        elif name == SIMULATED_ARRIVAL_HEADER and value:
            try:
                arrived = datetime.fromisoformat(value.decode().replace("Z", "+00:00")).astimezone(timezone.utc)
            except (UnicodeDecodeError, ValueError):
                pass  # a malformed header: the record timestamp stands
    return arrived, spooled


def delivery_headers(arrived_at: datetime | None = None, *, spooled: bool = False) -> list[tuple[str, bytes]]:
    """The headers a producer puts on a record (``arrived_at`` only for simulated time)."""
    headers = []
    if spooled:
        headers.append((SPOOLED_HEADER, b"1"))
    if arrived_at is not None:
        headers.append((SIMULATED_ARRIVAL_HEADER, arrived_at.astimezone(timezone.utc).isoformat().encode()))
    return headers


def nearest_rank(ordered: Sequence[int], percent: int) -> int:
    """The value at rank ceil(percent/100 × n) of ascending ``ordered`` (integer arithmetic, as the SQL does)."""
    rank = (percent * len(ordered) + 99) // 100
    return ordered[max(rank, 1) - 1]


class LateDataDay(msgspec.Struct, frozen=True):
    commune_code: str
    day: date  # local day of arrival
    events: int
    p50_ms: int
    p95_ms: int
    max_ms: int
    spooled: int
    ahead: int  # arrived before they occurred

    @property
    def spooled_share(self) -> float:
        return self.spooled / self.events if self.events else 0.0


def late_data(deliveries: Iterable[Delivery]) -> list[LateDataDay]:
    """Per commune and day of arrival; an event delivered twice counts once, at its first arrival."""
    first: dict[str, Delivery] = {}
    for d in deliveries:
        seen = first.get(d.event_id)
        if seen is None or d.arrived_at < seen.arrived_at:
            first[d.event_id] = d
    groups: dict[tuple[str, date], list[Delivery]] = {}
    for d in first.values():
        groups.setdefault((d.commune_code, d.arrived_at.astimezone(VN_TZ).date()), []).append(d)
    out = []
    for (commune, day), ds in sorted(groups.items()):
        raw = [delay_ms(d.occurred_at, d.arrived_at) for d in ds]
        delays = sorted(max(0, x) for x in raw)
        out.append(LateDataDay(commune, day, len(ds), *(nearest_rank(delays, p) for p in PERCENTILES), delays[-1],
                               sum(d.spooled for d in ds), sum(x < 0 for x in raw)))
    return out
