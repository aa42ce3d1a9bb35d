"""When and where dossiers arrive: working days, office sessions, evenings online.

Arrivals follow the working calendar: nothing on weekends and holidays, the
desks' sessions (07:30–11:30 and 13:00–17:00 by default, from
``WorkCalendar.sessions``) with the first session busier, and online
submissions also in the evening of working days (the portal is open; the desk
accepts them in office hours). Communes differ in size: each gets a fixed
log-normal weight. The total is exact: ``dossiers`` arrivals are spread over
the working days by largest remainder, so a test can count them.
"""

from __future__ import annotations

from bisect import bisect_right
from datetime import date, time, timedelta
from itertools import accumulate
from random import Random
from typing import TYPE_CHECKING, Iterator, NamedTuple, Protocol

from onestop.communes import Commune
from onestop.events import Channel
from onestop.workcal import WorkCalendar

from producers.sim_practices import service_windows

if TYPE_CHECKING:
    from onestop.servicecal import ServiceCalendar

EVENING_CLOSES = time(22, 0)  # online submissions after office hours come in until about 22:00


class ArrivalRates(Protocol):
    """The parts of SimulationConfig that shape arrivals."""

    dossiers: int
    online_share: float
    postal_share: float
    online_after_hours_share: float
    morning_share: float
    commune_size_spread: float
    daily_variation: float


class Arrival(NamedTuple):
    ts: int  # POSIX seconds
    commune: Commune
    channel: Channel
    number: int  # per commune and local day, from 1: the desk's running number
    day: date
    service: str = "regular"  # weekend_service / village_service: received in a service session on a day off


class _Bin(NamedTuple):
    start: int
    end: int
    weight: float
    evening: bool  # after office hours: online submissions only


def day_bins(calendar: WorkCalendar, day: date, rates: ArrivalRates, not_before: int | None = None) -> list[_Bin]:
    """The arrival windows of one day with their share of the day's dossiers (a full working day sums to 1)."""
    sessions = calendar.sessions(day)
    if not sessions:
        return []
    after_hours = rates.online_share * rates.online_after_hours_share
    first, rest = sessions[0], sessions[1:]
    rest_len = sum((e - s).total_seconds() for s, e in rest)
    shares = [1.0 if not rest else rates.morning_share]
    shares += [(1 - rates.morning_share) * (e - s).total_seconds() / rest_len for s, e in rest]
    windows = [(s, e, share * (1 - after_hours), False) for (s, e), share in zip((first, *rest), shares)]
    evening_end = calendar.at(day, EVENING_CLOSES)
    if sessions[-1][1] < evening_end and after_hours > 0:
        windows.append((sessions[-1][1], evening_end, after_hours, True))
    bins = []
    for s, e, weight, evening in windows:
        start, end = int(s.timestamp()), int(e.timestamp())
        if not_before is not None and not_before > start:
            weight *= max(0, end - not_before) / (end - start)
            start = max(start, not_before)
        if weight > 0 and end > start:
            bins.append(_Bin(start, end, weight, evening))
    return bins


def working_day_weights(calendar: WorkCalendar, start: date, days: int, rates: ArrivalRates,
                        not_before: int | None = None) -> list[tuple[date, list[_Bin]]]:
    """Each working day of the period with its arrival windows (days before ``not_before`` are gone)."""
    out = []
    for i in range(days):
        day = start + timedelta(days=i)
        bins = day_bins(calendar, day, rates, not_before)
        if bins:
            out.append((day, bins))
    return out


def apportion(total: int, weights: list[float]) -> list[int]:
    """Split ``total`` into integers proportional to ``weights`` (largest remainder, ties to the earlier)."""
    weight_sum = sum(weights)
    quotas = [total * w / weight_sum for w in weights]
    counts = [int(q) for q in quotas]
    order = sorted(range(len(weights)), key=lambda i: (-(quotas[i] - counts[i]), i))
    for i in order[: total - sum(counts)]:
        counts[i] += 1
    return counts


class Arrivals:
    """Draws the period's arrivals day by day, from one injected random generator."""

    def __init__(self, rates: ArrivalRates, rng: Random, calendar: WorkCalendar, communes: tuple[Commune, ...],
                 start: date, days: int, not_before: int | None = None, *,
                 service: "ServiceCalendar | None" = None, service_volume: float = 0.0) -> None:
        self.rates, self.rng, self.communes = rates, rng, communes
        self.days = working_day_weights(calendar, start, days, rates, not_before)
        # Fixed per run: a commune's size does not change from one day to the next.
        sizes = [rng.lognormvariate(0.0, rates.commune_size_spread) for _ in communes]
        self._sizes = sizes
        self._commune_cum = list(accumulate(sizes))
        noise = [rng.lognormvariate(0.0, rates.daily_variation) for _ in self.days]
        # Days off with counter or village sessions (only when the run simulates service practices).
        self.windows = service_windows(service, communes, sizes, start, days, service_volume, not_before)
        weights = [sum(b.weight for b in bins) * n for (_, bins), n in zip(self.days, noise)]
        counts = apportion(rates.dossiers, weights + [w.weight for w in self.windows]) if weights or self.windows else []
        self.per_day, self.per_window = counts[:len(weights)], counts[len(weights):]
        # In office hours the channel mix excludes the evening online share, so the run as a whole
        # matches online_share and postal_share.
        office = max(1e-12, 1 - rates.online_share * rates.online_after_hours_share)
        self._p_online = rates.online_share * (1 - rates.online_after_hours_share) / office
        self._p_postal = self._p_online + rates.postal_share / office

    def __iter__(self) -> Iterator[list[Arrival]]:
        if not self.windows:
            for (day, bins), count in zip(self.days, self.per_day):
                if count:
                    yield self._day(day, bins, count)
            return
        plan: list[tuple[date, int, object, int]] = [(d, 0, bins, n) for (d, bins), n in zip(self.days, self.per_day)]
        plan += [(w.day, 1, w, n) for w, n in zip(self.windows, self.per_window)]
        plan.sort(key=lambda p: (p[0], p[1]))  # stable: a day's windows keep their order
        i = 0
        while i < len(plan):
            day, kind = plan[i][0], plan[i][1]
            j = i
            while j < len(plan) and plan[j][0] == day:
                j += 1
            if kind == 0:
                if plan[i][3]:
                    yield self._day(day, plan[i][2], plan[i][3])
            else:
                drawn = self._service_day(day, [(w, n) for _, _, w, n in plan[i:j]])
                if drawn:
                    yield drawn
            i = j

    def _service_day(self, day: date, windows: list) -> list[Arrival]:
        """Arrivals of a day off: in person, at the serving communes only, in their sessions."""
        rng, drawn = self.rng, []
        for w, count in windows:
            members = w.communes
            cum = list(accumulate(self._sizes[m] for m in members))
            for _ in range(count):
                ts = w.start + int(rng.random() * (w.end - w.start))
                c = members[min(bisect_right(cum, rng.random() * cum[-1]), len(members) - 1)]
                drawn.append((ts, c, w.kind))
        drawn.sort()
        numbers: dict[int, int] = {}
        out = []
        for ts, c, kind in drawn:
            numbers[c] = numbers.get(c, 0) + 1
            out.append(Arrival(ts, self.communes[c], Channel.IN_PERSON, numbers[c], day, kind))
        return out

    def _day(self, day: date, bins: list[_Bin], count: int) -> list[Arrival]:
        rng, communes, commune_cum = self.rng, self.communes, self._commune_cum
        bin_cum = list(accumulate(b.weight for b in bins))
        bin_total, commune_total, last = bin_cum[-1], commune_cum[-1], len(bins) - 1
        drawn = []
        for _ in range(count):
            b = bins[min(bisect_right(bin_cum, rng.random() * bin_total), last)]
            ts = b.start + int(rng.random() * (b.end - b.start))
            c = min(bisect_right(commune_cum, rng.random() * commune_total), len(communes) - 1)
            u = rng.random()
            channel = (Channel.ONLINE if b.evening or u < self._p_online
                       else Channel.POSTAL if u < self._p_postal else Channel.IN_PERSON)
            drawn.append((ts, c, channel))
        drawn.sort()
        numbers: dict[int, int] = {}
        out = []
        for ts, c, channel in drawn:
            numbers[c] = numbers.get(c, 0) + 1
            out.append(Arrival(ts, communes[c], channel, numbers[c], day))
        return out


def period_bounds(calendar: WorkCalendar, start: date, days: int) -> tuple[int, int]:
    """Local midnight of ``start`` and of ``start + days``, as POSIX seconds."""
    begin = calendar.at(start, time.min)
    end = calendar.at(start + timedelta(days=days), time.min)
    return int(begin.timestamp()), int(end.timestamp())

