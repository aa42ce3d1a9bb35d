"""The two clocks that decide "overdue".

- ``wall``: live deployments judge against the wall clock. While a partition
  is catching up (its consumer lag is above a threshold) the counters still
  move, but alerts wait: replaying a month of history must not page anyone
  for dossiers that the replay itself resolves a few seconds later.
- ``event``: replays, backfills and simulations judge against event time: a
  per-partition watermark, the latest ``occurred_at`` seen minus the allowed
  lateness. The same log gives the same watermark sequence, so the same
  alerts, on every run.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Callable


class Clock:
    def __init__(self, mode: str = "event", *, allowed_lateness: timedelta = timedelta(minutes=5),
                 live_lag: int = 500, wall: Callable[[], datetime] | None = None) -> None:
        if mode not in ("wall", "event"):
            raise ValueError(f"clock must be 'wall' or 'event', got {mode!r}")
        self.mode = mode
        self.allowed_lateness = allowed_lateness
        self.live_lag = live_lag
        self._wall = wall or (lambda: datetime.now(timezone.utc))
        self.max_seen: dict[int, datetime] = {}
        self.lag: dict[int, int] = {}

    def observe(self, partition: int, occurred_at: datetime) -> None:
        seen = self.max_seen.get(partition)
        if seen is None or occurred_at > seen:
            self.max_seen[partition] = occurred_at

    def seed(self, partition: int, last_event_at: datetime | None) -> None:
        """After a rebuild: never behind the latest event the state already holds."""
        if last_event_at is not None:
            self.observe(partition, last_event_at)

    def seen(self, partition: int) -> datetime | None:
        """The latest event time observed on ``partition`` (to rewind to, if a record is dropped)."""
        return self.max_seen.get(partition)

    def rewind(self, partition: int, seen: datetime | None) -> None:
        if seen is None:
            self.max_seen.pop(partition, None)
        else:
            self.max_seen[partition] = seen

    def now(self, partition: int) -> datetime | None:
        if self.mode == "wall":
            return self._wall()
        seen = self.max_seen.get(partition)
        return None if seen is None else seen - self.allowed_lateness

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
            self.max_seen.pop(p, None)
            self.lag.pop(p, None)
