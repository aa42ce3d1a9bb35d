"""Drive the simulator into Kafka with a progress bar and a closing summary."""

from __future__ import annotations

from collections import Counter

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from onestop import events
from onestop.settings import Settings
from producers.simulator import SimulationConfig, simulate


def run_simulation(settings: Settings, cfg: SimulationConfig, *, dry_run: bool = False,
                   console: Console | None = None) -> Counter:
    """Publish (or print) the simulated events; return counts per event type."""
    console = console or Console(stderr=True)
    counts: Counter = Counter()
    if dry_run:
        for e in simulate(cfg):
            print(events.encode(e).decode())
            counts[e.event_type.value] += 1
        return counts
    from producers.publisher import Publisher

    columns = (TextColumn("[bold]simulating"), BarColumn(), MofNCompleteColumn(), TextColumn("dossiers"),
               TimeRemainingColumn())
    with Publisher(settings, client_id="onestop-simulator") as pub, \
            Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task("simulate", total=cfg.dossiers)
        for e in simulate(cfg):
            pub.publish(e)
            counts[e.event_type.value] += 1
            if e.seq == 1:
                progress.advance(task)
        progress.update(task, completed=cfg.dossiers)
    console.print(f"published {sum(counts.values()):,} events for {counts['accepted'] + counts['refused_at_reception']:,} "
                  f"dossiers to {settings.topic_events} (seed {cfg.seed}): "
                  + ", ".join(f"{k} {v:,}" for k, v in counts.most_common()))
    return counts
