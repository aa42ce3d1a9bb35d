"""The two clocks that decide "overdue".

- ``wall``: live deployments judge against the wall clock. While a partition
  is catching up (its consumer lag is above a threshold) the counters still
  move, but alerts wait: replaying a month of history must not page anyone
  for dossiers that the replay itself resolves a few seconds later.
- ``event``: replays, backfills and simulations judge against event time: a
  per-partition watermark, the ``quorum``-th latest ``occurred_at`` seen minus
  the allowed lateness. The same log gives the same watermark sequence, so the
  same alerts, on every run.

The quorum bounds the watermark: it moves to an instant only once ``quorum``
events of the partition have reached it, so fewer than ``quorum`` outliers (a
typo dated 2099 in a backfill of 2025) never move it, and their dossiers wait
for the clock like any other. With ``quorum=1`` it is the latest event seen.
"""

from __future__ import annotations

import heapq
from datetime import datetime, timedelta, timezone
from typing import Callable


class Clock:
    def __init__(self, mode: str = "event", *, allowed_lateness: timedelta = timedelta(minutes=5),
                 live_lag: int = 500, wall: Callable[[], datetime] | None = None, quorum: int = 1) -> None:
        if mode not in ("wall", "event"):
            raise ValueError(f"clock must be 'wall' or 'event', got {mode!r}")
        if quorum < 1:
            raise ValueError(f"quorum must be at least 1, got {quorum}")
        self.mode = mode
        self.allowed_lateness = allowed_lateness
        self.live_lag = live_lag
        self.quorum = quorum
        self._wall = wall or (lambda: datetime.now(timezone.utc))
        self.latest: dict[int, list[datetime]] = {}  # per partition: the `quorum` latest instants, a min-heap
        self.lag: dict[int, int] = {}

    def observe(self, partition: int, occurred_at: datetime) -> None:
        latest = self.latest.get(partition)
        if latest is None:
            self.latest[partition] = [occurred_at]
        elif len(latest) < self.quorum:
            heapq.heappush(latest, occurred_at)
        elif occurred_at > latest[0]:
            heapq.heapreplace(latest, occurred_at)

    def seed(self, partition: int, last_event_at: datetime | None) -> None:
        """After a rebuild: never behind what the state already holds (by the same quorum)."""
        if last_event_at is not None:
            self.observe(partition, last_event_at)

    def watermark(self, partition: int) -> datetime | None:
        """The latest instant ``quorum`` events of the partition have reached, if that many were seen."""
        latest = self.latest.get(partition)
        return latest[0] if latest is not None and len(latest) >= self.quorum else None

    def seen(self, partition: int) -> list[datetime] | None:
        """What the partition's clock has observed (to rewind to, if a record is dropped)."""
        latest = self.latest.get(partition)
        return None if latest is None else list(latest)

    def rewind(self, partition: int, seen: list[datetime] | None) -> None:
        if seen is None:
            self.latest.pop(partition, None)
        else:
            self.latest[partition] = seen

    def now(self, partition: int) -> datetime | None:
        if self.mode == "wall":
            return self._wall()
        seen = self.watermark(partition)
        return None if seen is None else seen - self.allowed_lateness

    def wall_now(self) -> datetime:
        return self._wall()

    def set_lag(self, partition: int, lag: int) -> None:
        self.lag[partition] = lag

    def assume_behind(self, partitions: set[int] | list[int]) -> None:
        """Wall clock, after an assignment: not live until a record or a tick has measured the lag (a
        restarted worker must not release held alerts before it knows whether it is catching up)."""
        if self.mode == "wall":
            for p in partitions:
                self.lag[p] = self.live_lag + 1

    def live(self, partition: int) -> bool:
        """May alerts go out for this partition now?"""
        return self.mode == "event" or self.lag.get(partition, 0) <= self.live_lag

    def forget(self, partitions: set[int] | list[int]) -> None:
        for p in partitions:
            self.latest.pop(p, None)
            self.lag.pop(p, None)
