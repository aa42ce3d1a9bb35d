"""``onestop replay``: reprocess ``dossier.events`` under a fresh application id (see :mod:`ops.replay`)."""

from __future__ import annotations

from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from onestop.settings import Settings, get_settings
from ops.replay import Comparison, ReplayResult, run_replay

console = Console()

HELP = "\n\n".join((
    "Reprocess dossier.events from offset 0 under a fresh application id and print what it yields.",
    "The replay runs an ordinary worker (a subprocess; its log is in ONESTOP_HOME/logs) with a new consumer "
    "group and changelog, on the event clock unless --clock wall. It publishes to its own output topics, the "
    "live ioc.metrics, dossier.alerts and dossier.dlq names plus the suffix .replay-<UTC stamp>, created with "
    "the partition count of dossier.events (--in-place publishes to the live topics instead). It waits until "
    "the replay's group has committed the whole topic, stops the worker and prints events/s, counters and "
    "alerts.",
    "--compare then compares the replay's counters and alert-id set with the live topics and exits with "
    "status 1 on any difference, printing the differing keys. The comparison is exact only when the live "
    "worker has caught up on the same events and judges with the same clock: simulations, backfills and "
    "replays use the event clock; a live wall-clock worker's SLA buckets and alerts legitimately differ.",
    "Exit status: 0 done (and equal, with --compare), 1 differences, 2 the replay could not run. The "
    "replay's topics and consumer group stay on the broker; its local RocksDB state is removed unless "
    "--keep-state.",
))



def print_summary(result: ReplayResult, out: Console | None = None) -> None:
    from collections import Counter

    out = out or console
    rs = result.settings
    backlog: Counter = Counter()
    flows: Counter = Counter()
    ontime: Counter = Counter()
    for key, n in result.counters.items():
        if key[0] == "backlog":
            backlog[key[5]] += n  # by SLA bucket
        elif key[0] == "throughput" and key[1] == "d":
            flows[key[6]] += n  # received / resolved / returned
        elif key[0] == "ontime" and key[1] == "mo":
            ontime[key[6]] += n  # before_due / on_due / overdue
    kinds = Counter(a.kind for a in result.alerts)
    ids = result.alert_ids

    table = Table("", "", title=f"Replay {rs.app_id}", show_header=False)
    table.add_row("events", f"{result.events:,} in {result.seconds:,.1f}s = {result.rate:,.0f} events/s "
                            "(worker start-up included)")
    table.add_row("clock", rs.clock)
    table.add_row("open dossiers", f"{sum(backlog.values()):,} (" +
                  ", ".join(f"{k} {v:,}" for k, v in sorted(backlog.items())) + ")")
    table.add_row("throughput", ", ".join(f"{k} {v:,}" for k, v in sorted(flows.items())) or "-")
    table.add_row("on time (resolved)", ", ".join(f"{k} {v:,}" for k, v in sorted(ontime.items())) or "-")
    table.add_row("counter keys", f"{len(result.counters):,}")
    table.add_row("alerts", f"{len(ids):,} distinct ids in {len(result.alerts):,} records (" +
                  ", ".join(f"{k} {v:,}" for k, v in sorted(kinds.items())) + ")")
    table.add_row("dead letters", f"{result.dead_letters:,}")
    table.add_row("topics", f"{rs.topic_metrics}, {rs.topic_alerts}, {rs.topic_dlq}")
    table.add_row("worker log", result.log)
    out.print(table)
    for note in result.notes:
        out.print(f"[yellow]note:[/] {note}")


def print_comparison(cmp: Comparison, live: Settings, max_rows: int = 50, out: Console | None = None) -> None:
    out = out or console
    if cmp.live_lag:
        out.print(f"[yellow]warning:[/] the live worker group {live.app_id} is still {cmp.live_lag:,} records "
                  "behind; its results are not final")
    if cmp.ok:
        out.print(f"[green]✓ same counters and alert ids as the live topics "
                  f"({live.topic_metrics}, {live.topic_alerts})[/green]")
        return
    out.print(f"[red]✗ differs from the live topics: {len(cmp.counter_diff):,} counter keys, "
              f"{len(cmp.missing_alerts):,} live alert ids missing from the replay, "
              f"{len(cmp.extra_alerts):,} replay alert ids not on the live topic[/red]")
    if cmp.counter_diff:
        table = Table("counter key", "replay", "live", title="Differing counters")
        for key, (mine, theirs) in list(cmp.counter_diff.items())[:max_rows]:
            table.add_row(" · ".join(str(k) for k in key), f"{mine:,}", f"{theirs:,}")
        out.print(table)
        if len(cmp.counter_diff) > max_rows:
            out.print(f"… and {len(cmp.counter_diff) - max_rows:,} more")
    for label, ids in (("missing from the replay", cmp.missing_alerts), ("only in the replay", cmp.extra_alerts)):
        if ids:
            shown = sorted(ids)[:max_rows]
            out.print(f"alert ids {label}: " + ", ".join(shown) + (" …" if len(ids) > max_rows else ""))


def replay(
    app_id: Optional[str] = typer.Option(
        None, "--app-id", help="Application id (consumer group, changelog) of the replay "
        "(default: <ONESTOP_APP_ID>-replay-<UTC stamp>). Must be new: an existing group resumes, not replays."),
    suffix: Optional[str] = typer.Option(
        None, "--suffix", help="Suffix of the replay's output topics (default: .replay-<UTC stamp>)."),
    in_place: bool = typer.Option(
        False, "--in-place", help="Publish to the live ioc.metrics, dossier.alerts and dossier.dlq instead of "
        "suffixed copies (to rebuild what the sinks read; the replay's rows supersede older ones by version)."),
    clock: str = typer.Option(
        "event", "--clock", help="What 'overdue' is judged against: event (deterministic, the default) or wall."),
    compare: bool = typer.Option(
        False, "--compare", help="Compare counters and alert ids with the live topics; exit 1 on any difference."),
    timeout: float = typer.Option(3600.0, help="Seconds to wait for the replay to catch up."),
    keep_state: bool = typer.Option(False, "--keep-state", help="Keep the replay's local RocksDB state afterwards."),
    max_diff: int = typer.Option(50, "--max-diff", help="Differing keys to print at most."),
) -> None:
    if clock not in ("event", "wall"):
        raise typer.BadParameter("must be 'event' or 'wall'", param_hint="--clock")
    if compare and in_place:
        raise typer.BadParameter("--compare needs the replay's own output topics", param_hint="--in-place")
    import logging

    if logging.getLogger().getEffectiveLevel() > logging.DEBUG:
        logging.getLogger("kafka").setLevel(logging.ERROR)  # kafka-python narrates every connection
    base = get_settings()
    try:
        result = run_replay(base, app_id=app_id, suffix=suffix, clock=clock, in_place=in_place, compare=compare,
                            timeout=timeout, keep_state=keep_state)
    except (LookupError, RuntimeError, TimeoutError, ValueError) as exc:
        console.print(f"[bold red]error:[/] {exc}")
        raise typer.Exit(2) from None
    print_summary(result)
    if result.comparison is not None:
        print_comparison(result.comparison, base, max_diff)
        if not result.comparison.ok:
            raise typer.Exit(1)


replay.__doc__ = HELP


def register(app: typer.Typer) -> None:
    app.command(name="replay", help=HELP)(replay)
