"""When simulated events reach the pipeline: a network per commune, some of them flaky.

Every commune sends its events through one queue, so its events arrive in the order they
occurred. A good network delivers after a short log-normal delay (median
``network_delay_s``). A flaky one (``flaky_network_share`` of the communes) is slower between
outages (median ``flaky_delay_s``) and goes down ``outages_per_day`` times a day on average
(Poisson, starting in office hours, median ``outage_hours`` long): what occurs during an outage
waits in the commune's spool and arrives in a burst when the network is back, marked as spooled.

Network delays come from a generator of their own (``Random(f"{seed}:network")``): switching
the network on changes when events arrive, never the events themselves.
"""

from __future__ import annotations

import heapq
from datetime import datetime, time, timedelta, timezone
from math import exp, log
from random import Random
from typing import Iterable, Iterator, NamedTuple

from onestop.communes import Commune
from onestop.events import DossierEvent
from onestop.workcal import WorkCalendar

OUTAGES_FROM, OUTAGES_UNTIL = time(7, 0), time(17, 30)  # outages that matter start while people work
BURST_MS = 60_000  # a reconnecting spool sends its backlog within a minute
MAX_OUTAGE_MS = 24 * 3600_000


class SimDelivery(NamedTuple):
    arrived_at: datetime
    spooled: bool
    event: DossierEvent


class Network:
    def __init__(self, cfg, communes: tuple[Commune, ...], calendar: WorkCalendar) -> None:
        self.cfg, self.calendar = cfg, calendar
        self.rng = Random(f"{cfg.seed}:network")
        codes = [c.code for c in communes]
        self.flaky = frozenset(self.rng.sample(codes, round(cfg.flaky_network_share * len(codes))))
        self._outages: dict[tuple[str, object], list[tuple[int, int]]] = {}
        self._last: dict[str, int] = {}
        self.spooled = 0
        self.outages = 0

    def deliver(self, e: DossierEvent) -> tuple[int, bool]:
        """Arrival (POSIX milliseconds) and whether the event waited in the commune's spool."""
        occurred = int(e.occurred_at.timestamp() * 1000)
        commune, spooled = e.commune_code, False
        if commune in self.flaky:
            back = self._outage_end(commune, occurred)
            if back is not None:
                arrival, spooled = back + int(self.rng.random() * BURST_MS), True
            else:
                arrival = occurred + self._delay(self.cfg.flaky_delay_s)
        else:
            arrival = occurred + self._delay(self.cfg.network_delay_s)
        arrival = max(arrival, self._last.get(commune, 0))  # one queue per commune: order is kept
        self._last[commune] = arrival
        self.spooled += spooled
        return arrival, spooled

    def _delay(self, median_s: float) -> int:
        return int(1000 * min(6 * 3600, self.rng.lognormvariate(log(median_s), 1.0)))

    def _outage_end(self, commune: str, at_ms: int) -> int | None:
        day = self.calendar.local_date(datetime.fromtimestamp(at_ms / 1000, timezone.utc))
        for d in (day - timedelta(days=1), day):  # an outage may run past midnight
            for start, end in self._day_outages(commune, d):
                if start <= at_ms < end:
                    return end
        return None

    def _day_outages(self, commune: str, day) -> list[tuple[int, int]]:
        key = (commune, day)
        found = self._outages.get(key)
        if found is None:
            rng, found = self.rng, []
            begin = int(self.calendar.at(day, OUTAGES_FROM).timestamp() * 1000)
            span = int(self.calendar.at(day, OUTAGES_UNTIL).timestamp() * 1000) - begin
            for _ in range(_poisson(rng, self.cfg.outages_per_day)):
                start = begin + int(rng.random() * span)
                length = min(MAX_OUTAGE_MS, int(3600_000 * rng.lognormvariate(log(self.cfg.outage_hours), 0.8)))
                found.append((start, start + length))
            self._outages[key] = found
            self.outages += len(found)
        return found


def _poisson(rng: Random, mean: float) -> int:
    """Knuth's method: fine for the small means of outages per day."""
    if mean <= 0:
        return 0
    limit, k, p = exp(-mean), 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k


def in_arrival_order(events: Iterable[DossierEvent], network: Network | None) -> Iterator[SimDelivery]:
    """``events`` (in occurred order) as they arrive: sorted by arrival, ties in occurred order."""
    if network is None:
        for e in events:
            yield SimDelivery(e.occurred_at, False, e)
        return
    heap: list[tuple[int, int, bool, DossierEvent]] = []
    for n, e in enumerate(events):
        now = int(e.occurred_at.timestamp() * 1000)
        while heap and heap[0][0] <= now:  # nothing later can arrive before it: every delay is >= 0
            yield _out(heapq.heappop(heap))
        arrival, spooled = network.deliver(e)
        heapq.heappush(heap, (arrival, n, spooled, e))
    while heap:
        yield _out(heapq.heappop(heap))


def _out(item: tuple[int, int, bool, DossierEvent]) -> SimDelivery:
    return SimDelivery(datetime.fromtimestamp(item[0] / 1000, timezone.utc), item[2], item[3])
