"""Rolling backlog per commune, kept per source partition.

A dossier's events all live on one partition of ``dossier.events``, so each
worker owns the backlog contribution of its partitions. The counters are a
derived index: they are rebuilt from the dossier-state table whenever the
partition assignment changes, never trusted across a crash. What leaves the
worker is the absolute count per (commune, partition) with a version (the
source offset), so re-sending it is harmless and the sinks just keep the
latest version and add up the partitions.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Iterable

import msgspec

from onestop.fold import DossierState


class BacklogSnapshot(msgspec.Struct, frozen=True, kw_only=True):
    kind: str = "backlog"
    commune_code: str
    source_partition: int
    open_dossiers: int
    version: int  # offset of the last event of source_partition folded into this count
    as_of: datetime | None  # event time of that event


class BacklogCounters:
    def __init__(self) -> None:
        self.open: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        self.version: dict[int, int] = {}
        self.as_of: dict[int, datetime | None] = {}
        self.dirty: set[tuple[int, str]] = set()

    def rebuild(self, states: Iterable[tuple[int, DossierState]], partitions: set[int]) -> None:
        """Recount from scratch for ``partitions`` (after recovery or a rebalance)."""
        for p in partitions:
            self.open[p] = defaultdict(int)
        for partition, state in states:
            if partition in partitions and state.is_open:
                self.open[partition][state.handling_commune_code] += 1
        for p in partitions:
            self.dirty.update((p, c) for c in self.open[p])

    def forget(self, partitions: Iterable[int]) -> None:
        for p in partitions:
            self.open.pop(p, None)
            self.dirty = {(dp, c) for dp, c in self.dirty if dp != p}

    def observe(self, partition: int, offset: int, at: datetime | None,
                before: DossierState | None, after: DossierState) -> None:
        self.version[partition] = offset
        self.as_of[partition] = at
        was = before is not None and before.is_open
        if was == after.is_open:
            return
        commune = after.handling_commune_code
        self.open[partition][commune] += 1 if after.is_open else -1
        self.dirty.add((partition, commune))

    def drain(self) -> list[BacklogSnapshot]:
        """Snapshots of every (partition, commune) count changed since the last drain."""
        out = [
            BacklogSnapshot(
                commune_code=c, source_partition=p, open_dossiers=self.open[p][c],
                version=self.version.get(p, -1), as_of=self.as_of.get(p),
            )
            for p, c in sorted(self.dirty)
            if p in self.open
        ]
        self.dirty.clear()
        return out

    def totals(self) -> dict[str, int]:
        totals: dict[str, int] = defaultdict(int)
        for counts in self.open.values():
            for commune, n in counts.items():
                totals[commune] += n
        return dict(totals)
