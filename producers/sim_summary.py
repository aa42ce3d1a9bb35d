"""What a simulation run emitted, counted on the way out, and the closing summary tables."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from statistics import median
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table

from onestop.events import Channel, DossierEvent, EventType

if TYPE_CHECKING:
    from producers.simulator import Simulation

_FINISHING = frozenset({EventType.RESULT_READY, EventType.RESULT_RETURNED, EventType.WITHDRAWAL_REQUESTED,
                        EventType.PROCESSING_STOPPED, EventType.REFUSED})
_CHANNEL_NAMES = {Channel.IN_PERSON: "in person", Channel.ONLINE: "online", Channel.POSTAL: "postal"}


class Tally:
    """Counts of the emitted events (not of the plan: a run stopped early counts what went out)."""

    def __init__(self) -> None:
        self.per_type: Counter = Counter()
        self.per_channel: Counter = Counter()  # dossiers, by their first event
        self.accepted_per_channel: Counter = Counter()
        self.per_commune: Counter = Counter()  # dossiers received, by receiving commune
        self.open: set[str] = set()  # accepted and not finished: the backlog at the end
        self.events = 0
        self.dossiers = 0
        self.delays_ms: list[int] = []  # arrival - occurred_at of every event (simulated network)
        self.spooled = 0
        self.per_point: Counter = Counter()  # dossiers by reception point, when the source says

    def add(self, e: DossierEvent, delivery: Any = None) -> None:
        self.events += 1
        if delivery is not None:
            self.delays_ms.append((delivery.arrived_at - e.occurred_at) // timedelta(milliseconds=1))
            self.spooled += delivery.spooled
        if e.reception_point and e.seq == 1:
            self.per_point[e.reception_point.value] += 1
        self.per_type[e.event_type.value] += 1
        if e.seq == 1:
            self.dossiers += 1
            self.per_channel[e.channel] += 1
            self.per_commune[e.commune_code] += 1
        if e.event_type is EventType.ACCEPTED:
            self.accepted_per_channel[e.channel] += 1
            self.open.add(e.dossier_id)
        elif e.event_type in _FINISHING:
            self.open.discard(e.dossier_id)


def _pct(part: float, whole: float) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "–"


def print_summary(console: Console, sim: "Simulation", tally: Tally, *, elapsed: float, destination: str,
                  interrupted: bool = False) -> None:
    cfg = sim.cfg
    console.print(_events_table(tally))
    console.print(_dossiers_table(sim, tally))
    console.print(_communes_table(sim, tally))
    if sim.service is not None or cfg.rating_rate:
        console.print(_practices_table(sim, tally))
    if sim.network is not None:
        console.print(_network_table(sim, tally))
    rate = tally.events / elapsed if elapsed > 0 else 0.0
    how = "[yellow]stopped early[/yellow]: " if interrupted else ""
    console.print(f"{how}{tally.events:,} events for {tally.dossiers:,} dossiers to {destination} in {elapsed:.1f}s "
                  f"({rate:,.0f} events/s); province {cfg.province_code}, {len(sim.communes)} communes, "
                  f"{cfg.start} + {cfg.days} days, seed {cfg.seed}")


def _events_table(tally: Tally) -> Table:
    table = Table("event type", "events", "share", title="Events emitted")
    for kind in EventType:
        n = tally.per_type.get(kind.value, 0)
        if n:
            table.add_row(kind.value, f"{n:,}", _pct(n, tally.events))
    table.add_row("[bold]total", f"[bold]{tally.events:,}", "")
    return table


def _dossiers_table(sim: "Simulation", tally: Tally) -> Table:
    cfg, stats = sim.cfg, sim.stats
    table = Table("dossiers", "count", "share", "configured", title="Dossiers")
    table.add_row("received", f"{tally.dossiers:,}", "", f"{cfg.dossiers:,}")
    for channel in Channel:
        n = tally.per_channel.get(channel, 0)
        target = {Channel.ONLINE: cfg.online_share, Channel.POSTAL: cfg.postal_share}.get(
            channel, 1 - cfg.online_share - cfg.postal_share)
        table.add_row(f"  {_CHANNEL_NAMES[channel]}", f"{n:,}", _pct(n, tally.dossiers), f"{100 * target:.1f}%")
    accepted = sum(tally.accepted_per_channel.values())
    online = tally.accepted_per_channel.get(Channel.ONLINE, 0)
    table.add_row("accepted", f"{accepted:,}", _pct(accepted, tally.dossiers), "")
    table.add_row("  online share (online accepted / accepted)", f"{online:,}", _pct(online, accepted),
                  f"{100 * cfg.online_share:.1f}%")
    table.add_row("  expected late (planned overdue / accepted)", f"{stats.planned_overdue:,}",
                  _pct(stats.planned_overdue, stats.accepted), f"{100 * cfg.late_rate:.1f}% + 2nd supplements")
    table.add_row("  handled by another commune", f"{stats.handled_elsewhere:,}",
                  _pct(stats.handled_elsewhere, stats.accepted), f"{100 * cfg.inter_commune_share:.1f}%")
    table.add_row("open at the end (backlog)", f"{len(tally.open):,}", _pct(len(tally.open), accepted), "")
    return table


def _communes_table(sim: "Simulation", tally: Tally) -> Table:
    names = {c.code: c.name for c in sim.communes}
    counts = [(tally.per_commune.get(c.code, 0), c.code) for c in sim.communes]
    working_days = sim.working_days or 1.0
    table = Table("dossiers per commune", "received", "per working day", "commune",
                  title=f"Communes ({len(counts)}, {working_days:.1f} working days)")
    if not counts:
        return table
    low, high = min(counts), max(counts, key=lambda c: (c[0], -int(c[1])))  # ties: the lower code
    mid = median(n for n, _ in counts)
    table.add_row("min", f"{low[0]:,}", f"{low[0] / working_days:.1f}", f"{names[low[1]]} ({low[1]})")
    table.add_row("median", f"{mid:,.1f}", f"{mid / working_days:.1f}", "")
    table.add_row("max", f"{high[0]:,}", f"{high[0] / working_days:.1f}", f"{names[high[1]]} ({high[1]})")
    return table


def _practices_table(sim: "Simulation", tally: Tally) -> Table:
    """What the run modelled of the communes' practices, to check the measured figures against."""
    cfg, stats, declared = sim.cfg, sim.stats, sim.declared
    table = Table("service practices", "modelled", "configured", title="Service practices")
    table.add_row("communes with no-appointment days", _codes(declared.no_appointment),
                  f"{100 * cfg.no_appointment_share:.0f}% (+ file)")
    table.add_row("  listed dossiers at the counter on those days", f"{stats.promised:,}", "")
    table.add_row("  resolved on the spot as planned", f"{stats.on_the_spot:,} ({_pct(stats.on_the_spot, stats.promised)})",
                  f"{100 * cfg.no_appointment_same_day_rate:.0f}%")
    table.add_row("communes with weekend service days", _codes(declared.weekend_service),
                  f"{100 * cfg.weekend_service_share:.0f}% (+ file)")
    table.add_row("  dossiers received on them", f"{stats.service_days.get('weekend_service', 0):,}",
                  f"{cfg.service_day_volume:g} × a working day")
    table.add_row("communes with village service days", _codes(declared.village_service),
                  f"{100 * cfg.village_service_share:.0f}% (+ file)")
    table.add_row("  dossiers received in the villages", f"{stats.service_days.get('village_service', 0):,}",
                  f"{cfg.service_day_volume:g} × a working day")
    for point, n in sorted(tally.per_point.items()):
        table.add_row(f"dossiers received: {point}", f"{n:,}", "")
    table.add_row("ratings", f"{stats.ratings:,}", f"{100 * cfg.rating_rate:.0f}% of returned")
    table.add_row("  bad (score 1-2)", f"{stats.bad_ratings:,} ({_pct(stats.bad_ratings, stats.ratings)})",
                  f"{100 * cfg.bad_rating_rate:.0f}%")
    table.add_row("  with a complaint", f"{stats.complaints:,} ({_pct(stats.complaints, stats.ratings)})",
                  f"{100 * cfg.complaint_rate:.0f}%")
    return table


def _network_table(sim: "Simulation", tally: Tally) -> Table:
    cfg, net = sim.cfg, sim.network
    table = Table("network", "modelled", "configured", title="Delivery (simulated networks)")
    table.add_row("communes with a flaky network", _codes(tuple(sorted(net.flaky))),
                  f"{100 * cfg.flaky_network_share:.0f}%")
    table.add_row("  outages", f"{net.outages:,}", f"{cfg.outages_per_day:g}/day, median {cfg.outage_hours:g} h")
    table.add_row("events delivered through a spool", f"{tally.spooled:,} ({_pct(tally.spooled, tally.events)})", "")
    if tally.delays_ms:
        ordered = sorted(tally.delays_ms)
        p = lambda q: ordered[min(len(ordered) - 1, (q * len(ordered)) // 100)] / 1000  # noqa: E731
        table.add_row("delay p50 / p95 / max", f"{p(50):,.0f} s / {p(95):,.0f} s / {ordered[-1] / 1000:,.0f} s",
                      f"median {cfg.network_delay_s:g} s (good), {cfg.flaky_delay_s:g} s (flaky)")
    return table


def _codes(codes: tuple[str, ...]) -> str:
    if not codes:
        return "none"
    shown = ", ".join(codes[:6])
    return f"{len(codes)}: {shown}{', …' if len(codes) > 6 else ''}"
