"""Drive the simulator into Kafka (or stdout) on a simulated clock, with a progress bar and a summary.

The simulator decides *what* happens and *when* in simulated time; this module
decides when it is *sent*. ``speed`` is simulated seconds per wall second
(0 = as fast as possible); live mode is speed 1 with the simulated clock set to
the wall clock, so each event goes out when its occurred_at arrives. The wall
clock is injected (``Clock``), so pacing is testable without sleeping.
"""

from __future__ import annotations

import os
import sys
import time
from collections import Counter
from dataclasses import fields
from datetime import datetime, timezone
from typing import BinaryIO, Callable, Protocol

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

from onestop import dlq, events
from onestop.admission import AdmissionRules, admit, rules_from
from onestop.catalogue import load_catalogue
from onestop.lateness import delivery_headers
from onestop.settings import Settings
from producers.sim_network import SimDelivery
from producers.sim_summary import Tally, print_summary
from producers.simulator import Simulation, SimulationConfig, SimulationError

__all__ = ["Clock", "Pacer", "WallClock", "parse_rates", "run_simulation"]

_PROGRESS_EVERY = 2000  # events between progress-bar updates when nothing waits
_TICK_S = 0.25  # longest single sleep, so the bar moves and Ctrl-C is prompt


class Clock(Protocol):
    def now(self) -> datetime: ...

    def sleep(self, seconds: float) -> None: ...


class WallClock:
    """The real clock."""

    def now(self) -> datetime:
        return datetime.now(timezone.utc)

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


class Pacer:
    """Holds each event until the simulated clock reaches its occurred_at.

    The simulated clock shows ``origin`` (default: the first event) at wall time
    ``wall_origin`` (default: now) and runs ``speed`` times as fast as ``clock``.
    Live mode is speed 1 with both origins at the same instant.
    """

    def __init__(self, clock: Clock, speed: float, origin: datetime | None = None,
                 wall_origin: datetime | None = None) -> None:
        if speed < 0:
            raise SimulationError(f"speed must be >= 0 (0 = as fast as possible), got {speed}")
        self.clock, self.speed, self.origin = clock, speed, origin
        self._wall0: datetime | None = wall_origin or (clock.now() if origin is not None else None)

    def simulated_now(self) -> datetime | None:
        if self.origin is None or self._wall0 is None:
            return None
        return self.origin + (self.clock.now() - self._wall0) * self.speed

    def wait_until(self, at: datetime, on_tick: Callable[[datetime], None] = lambda _: None) -> None:
        if self.speed == 0:
            return
        if self.origin is None or self._wall0 is None:
            self.origin, self._wall0 = at, self.clock.now()
        due = self._wall0 + (at - self.origin) / self.speed
        while (left := (due - self.clock.now()).total_seconds()) > 0:
            self.clock.sleep(min(left, _TICK_S))
            now = self.simulated_now()
            if now is not None:
                on_tick(min(now, at))


def run_simulation(settings: Settings, cfg: SimulationConfig, *, dry_run: bool = False,
                   console: Console | None = None, speed: float = 0.0, live: bool = False,
                   clock: Clock | None = None, out: BinaryIO | None = None) -> Counter:
    """Publish (or with ``dry_run`` print as JSON lines) the simulated events; return counts per event type.

    ``live`` paces at speed 1 from ``cfg.not_before`` (the simulator's start = now). Ctrl-C stops
    the run early; the summary then covers what was emitted.
    """
    console = console or Console(stderr=True)
    clock = clock or WallClock()
    if live and cfg.not_before is None:
        raise SimulationError("live mode needs cfg.not_before (the wall-clock instant the simulation starts)")
    sim = Simulation(cfg)
    pacer = Pacer(clock, 1.0, cfg.not_before, cfg.not_before) if live else Pacer(clock, speed)
    tally, refused = Tally(), Counter()
    started = time.perf_counter()
    interrupted = False
    if dry_run:
        stream = out or sys.stdout.buffer
        interrupted = _drive(sim, pacer, tally, console, _printer(stream, flush_each=pacer.speed > 0))
        destination = "stdout"
    else:
        from producers.publisher import Publisher

        rules = rules_from(settings, load_catalogue(settings.catalogue_file))
        _warn_if_ahead(console, sim, rules, clock)
        with Publisher(settings, client_id="onestop-simulator") as pub:
            interrupted = _drive(sim, pacer, tally, console, admitted(pub, rules, clock, refused))
        destination = f"Kafka topic {settings.topic_events}"
    print_summary(console, sim, tally, elapsed=time.perf_counter() - started, destination=destination,
                  interrupted=interrupted)
    if refused:
        console.print(f"[yellow]{sum(refused.values()):,} of them refused by admission and sent to "
                      f"{settings.topic_dlq}[/yellow]: " + ", ".join(f"{c} {n:,}" for c, n in refused.most_common()))
    return tally.per_type


def admitted(pub: "EventSink", rules: AdmissionRules, clock: Clock,
             refused: Counter) -> Callable[[SimDelivery | events.DossierEvent], None]:
    """The publisher's ``publish``, behind the admission check every entrance applies.

    A simulated delivery's record says when the simulated network delivered it (late data)."""
    def emit(d: SimDelivery | events.DossierEvent) -> None:
        e = d.event if isinstance(d, SimDelivery) else d
        refusal = admit(e, rules, received_at=clock.now())
        if refusal is None:
            if isinstance(d, SimDelivery):
                pub.publish(e, headers=delivery_headers(d.arrived_at, spooled=d.spooled))
            else:
                pub.publish(e)
            return
        refused[refusal.code] += 1
        pub.dead_letter(dlq.dead_letter(events.encode(e), refusal.code, refusal.message, e.source,
                                        dossier_id=e.dossier_id, event_id=e.event_id))

    return emit


class EventSink(Protocol):
    def publish(self, event: events.DossierEvent, headers: list | None = None) -> None: ...

    def dead_letter(self, record: dlq.DeadLetter) -> None: ...


def _warn_if_ahead(console: Console, sim: Simulation, rules: AdmissionRules, clock: Clock) -> None:
    latest = clock.now() + rules.future_margin
    if datetime.fromtimestamp(sim.end_ts, timezone.utc) > latest:
        console.print(f"[yellow]the simulated period runs past now ({latest:%Y-%m-%d %H:%M} UTC with the margin): "
                      "events dated later are refused by admission and dead-lettered; use --live or an earlier "
                      "--start[/yellow]")


def parse_rates(items: list[str]) -> dict[str, float]:
    """``["supplement_rate=0.1", ...]`` (the CLI's ``--rate``) as SimulationConfig overrides."""
    numeric = {f.name for f in fields(SimulationConfig) if f.type in ("float", float)}
    overrides: dict[str, float] = {}
    for item in items:
        name, sep, value = (part.strip() for part in item.partition("="))
        if not sep or name not in numeric:
            raise SimulationError(f"--rate {item!r}: expected NAME=VALUE with NAME one of {', '.join(sorted(numeric))}")
        try:
            overrides[name] = float(value)
        except ValueError:
            raise SimulationError(f"--rate {item!r}: {value!r} is not a number") from None
    return overrides


def _printer(stream: BinaryIO, *, flush_each: bool) -> Callable[[SimDelivery], None]:
    def emit(d: SimDelivery) -> None:
        stream.write(events.encode(d.event) + b"\n")
        if flush_each:
            stream.flush()

    emit.flush = stream.flush  # type: ignore[attr-defined]
    return emit


def _drive(sim: Simulation, pacer: Pacer, tally: Tally, console: Console,
           emit: Callable[[SimDelivery], None]) -> bool:
    """Emit every event in arrival order; return True if stopped early (Ctrl-C, or the reader went away)."""
    begin = datetime.fromtimestamp(sim.begin_ts, timezone.utc)
    total = float(sim.end_ts - sim.begin_ts)
    columns = (TextColumn("[bold]simulating"), BarColumn(), TaskProgressColumn(),
               TextColumn("{task.fields[clock]}"), TextColumn("{task.fields[dossiers]:,} dossiers"),
               TextColumn("{task.fields[events]:,} events"), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task("simulate", total=total, clock="", dossiers=0, events=0)

        def show(at: datetime) -> None:
            progress.update(task, completed=(at - begin).total_seconds(), dossiers=tally.dossiers,
                            events=tally.events, clock=f"{at.astimezone(sim.calendar.tz):%Y-%m-%d %H:%M}")

        last = begin
        try:
            for d in sim.deliveries():
                pacer.wait_until(d.arrived_at, show)
                emit(d)
                tally.add(d.event, d)
                last = d.arrived_at
                if tally.events % _PROGRESS_EVERY == 0:
                    show(last)
            getattr(emit, "flush", lambda: None)()
        except KeyboardInterrupt:
            show(last)
            return True
        except BrokenPipeError:
            _silence_stdout()
            show(last)
            return True
        show(datetime.fromtimestamp(sim.end_ts, timezone.utc))
    return False


def _silence_stdout() -> None:
    """The reader of stdout went away (``| head``): stop quietly instead of failing at exit."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
