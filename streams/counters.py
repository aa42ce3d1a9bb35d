"""Every aggregate the IOC shows, as a function of the stored dossiers.

Each stored dossier *contributes* a few counter keys: one backlog key while
it is open (commune, field, procedure, channel, SLA bucket, waiting state,
age bucket), received / resolved / returned keys in event-time buckets of a
minute, an hour and a day, and an on-time key once it is resolved. A change
of a dossier moves its contributions: the old keys lose one, the new keys gain
one. So the counters are a derived index: a rebuild from the state table
after a crash or a rebalance gives exactly the numbers an uninterrupted run
has, and a redelivered event (which changes no dossier) changes no counter.

Counts are kept per source partition. What leaves the worker is the absolute
count per (key, partition) with a version, so sending it twice is harmless;
the sink keeps the latest version and adds up the partitions.

A rebuild re-sends every key that is non-zero in the table, but a key that
fell to zero just before a crash (or a revocation) may have lost its last
send, and nothing in the table remembers it. So every batch also carries the
partition's ``epoch``: the version at which its publisher last rebuilt it.
A row of that source partition with a lower version than the highest epoch
seen is void: the rebuild that followed it re-sent everything still counted.
"""

from __future__ import annotations

import heapq
import time as _time
from collections import defaultdict
from functools import lru_cache
from datetime import datetime, timedelta, timezone
from typing import Iterable
from zoneinfo import ZoneInfo

import msgspec

from onestop.practices import practice_keys
from onestop.wire import CounterBatch
from streams.model import StoredDossier

VN = ZoneInfo("Asia/Ho_Chi_Minh")
Key = tuple
WAITING = {5: "supplement", 6: "financial"}
# How long finer throughput buckets stay in memory (by the partition's clock); ClickHouse keeps them all.
RETENTION = {"m": timedelta(days=2), "h": timedelta(days=62), "d": timedelta(days=800)}


def bucket_start(at: datetime, granularity: str) -> datetime:
    at = at.astimezone(timezone.utc)
    if granularity == "m":
        return at.replace(second=0, microsecond=0)
    if granularity == "h":
        return at.replace(minute=0, second=0, microsecond=0)
    local = at.astimezone(VN)  # a day is a day in Asia/Ho_Chi_Minh
    return local.replace(hour=0, minute=0, second=0, microsecond=0).astimezone(timezone.utc)


@lru_cache(maxsize=1 << 12)
def period_start(at: datetime, granularity: str) -> str:
    local = at.astimezone(VN).date()
    return (local if granularity == "d" else local.replace(day=1)).isoformat()


NO_KEYS: frozenset[Key] = frozenset()


def contributions(stored: StoredDossier | None) -> frozenset[Key]:
    """The counter keys ``stored`` adds one to. A dossier contributes each key at most once."""
    if stored is None:
        return NO_KEYS
    st, field = stored.state, stored.field
    keys: list[Key] = []
    if st.accepted_at is not None:
        keys += _throughput(st.accepted_at, st.commune_code, field, st.channel, "received")
        if st.finished_at is not None:
            keys += _throughput(st.finished_at, st.handling_commune_code, field, st.channel, "resolved")
        if st.returned_at is not None:
            keys += _throughput(st.returned_at, st.handling_commune_code, field, st.channel, "returned")
    if st.is_open:
        keys.append(("backlog", st.handling_commune_code, field, st.procedure_code, st.channel,
                     stored.sla or "within_due", WAITING.get(st.status or 0, "none"), stored.age or "0-1d",
                     stored.escalated))
    if stored.outcome is not None and st.finished_at is not None:
        for gran in ("d", "mo"):
            keys.append(("ontime", gran, period_start(st.finished_at, gran), st.handling_commune_code,
                         st.procedure_code, field, stored.outcome))
    # The communes' service practices: same day, weekend and village activity, satisfaction.
    keys += practice_keys(st, stored.reception, stored.outcome if st.finished_at is not None else None)
    return frozenset(keys)


@lru_cache(maxsize=1 << 16)  # many dossiers share a minute, commune, field and channel
def _throughput(at: datetime, commune: str, field: str, channel: int, measure: str) -> tuple[Key, ...]:
    # Every bucket holds whole minutes (time zones here are whole minutes apart), and the minute's
    # bucket starts are shared by every commune, field and channel.
    starts = _bucket_starts(at.replace(second=0, microsecond=0))
    return tuple(("throughput", g, start, commune, field, channel, measure) for g, start in zip("mhd", starts))


@lru_cache(maxsize=1 << 16)
def _bucket_starts(minute: datetime) -> tuple[datetime, datetime, datetime]:
    return bucket_start(minute, "m"), bucket_start(minute, "h"), bucket_start(minute, "d")


class Counters:
    def __init__(self) -> None:
        self.counts: dict[int, dict[Key, int]] = defaultdict(dict)
        self.dirty: dict[int, set[Key]] = defaultdict(set)
        self._version = 0
        self.epochs: dict[int, int] = {}  # partition → version at its last rebuild
        self.unannounced: set[int] = set()  # rebuilt partitions whose epoch no batch has carried yet
        self.evicted_before: dict[int, dict[str, datetime]] = {}
        self.late_updates = 0
        # per partition and granularity: (bucket start, key) of the throughput keys in memory, oldest first
        self._aging: dict[int, dict[str, list[tuple[datetime, Key]]]] = defaultdict(
            lambda: {g: [] for g in RETENTION})

    def move(self, partition: int, before: StoredDossier | None, after: StoredDossier | None) -> None:
        """``before`` (as stored) becomes ``after`` (about to be stored): move the dossier's contributions."""
        # A dossier contributes each key at most once, so the change is a difference of two sets.
        old, new = contributions(before), contributions(after)
        if old == new:
            return
        counts, dirty = self.counts[partition], self.dirty[partition]
        horizon = self.evicted_before.get(partition)
        for keys, change in ((old - new, -1), (new - old, 1)):
            for key in keys:
                n = counts.get(key)
                if n is None and key[0] == "throughput":
                    if horizon is not None and key[2] < horizon[key[1]]:
                        self.late_updates += 1  # its bucket left memory; ClickHouse recomputes history from raw events
                        continue
                    heapq.heappush(self._aging[partition][key[1]], (key[2], key))
                counts[key] = (n or 0) + change
                dirty.add(key)

    def rebuild(self, stored: Iterable[StoredDossier], partitions: set[int]) -> None:
        """Recount ``partitions`` from scratch; every key is re-sent, since a crash may have lost a send."""
        for p in partitions:
            self.counts[p] = {}
            self.evicted_before.pop(p, None)
            self.epochs[p] = self.next_version()  # every row drained from now on has a higher version
            self.unannounced.add(p)
        for s in stored:
            if s.partition in partitions:
                counts = self.counts[s.partition]
                for key in contributions(s):
                    counts[key] = counts.get(key, 0) + 1
        for p in partitions:
            self.dirty[p] = set(self.counts[p])
            aging = self._aging[p] = {g: [] for g in RETENTION}
            for key in self.counts[p]:
                if key[0] == "throughput":
                    aging[key[1]].append((key[2], key))
            for heap in aging.values():
                heapq.heapify(heap)

    def forget(self, partitions: Iterable[int]) -> None:
        for p in partitions:
            self._aging.pop(p, None)
            self.counts.pop(p, None)
            self.dirty.pop(p, None)
            self.evicted_before.pop(p, None)
            self.epochs.pop(p, None)
            self.unannounced.discard(p)

    def next_version(self) -> int:
        # Wall-clock microseconds, strictly increasing in this process. A partition moves between
        # workers only after a rebalance (seconds), far beyond the clock skew of synced hosts.
        self._version = max(self._version + 1, _time.time_ns() // 1000)
        return self._version

    def drain(self, as_of: dict[int, datetime | None], chunk: int = 2000) -> list[CounterBatch]:
        batches = []
        for p in sorted(set(self.dirty) | self.unannounced):
            keys = list(self.dirty.get(p, ()))
            if (not keys and p not in self.unannounced) or p not in self.counts:
                continue
            counts = self.counts[p]
            rows = [(*k, counts.get(k, 0)) for k in keys]
            for i in range(0, max(len(rows), 1), chunk):  # an empty rebuilt partition still announces its epoch
                batches.append(CounterBatch(source_partition=p, version=self.next_version(),
                                            epoch=self.epochs.get(p, 0), as_of=as_of.get(p),
                                            rows=rows[i:i + chunk]))
        self.dirty.clear()
        self.unannounced.clear()
        return batches

    def evict(self, partition: int, clock: datetime | None) -> None:
        """Drop throughput buckets older than their retention from memory (already published)."""
        if clock is None:
            return
        counts = self.counts.get(partition, {})
        horizon = {g: clock - keep for g, keep in RETENTION.items()}
        self.evicted_before[partition] = horizon
        dirty = self.dirty.get(partition, ())
        for g, heap in self._aging[partition].items():
            unsent = []
            while heap and heap[0][0] < horizon[g]:
                entry = heapq.heappop(heap)
                if entry[1] in dirty:
                    unsent.append(entry)  # not published yet: the next round takes it
                else:
                    counts.pop(entry[1], None)
            for entry in unsent:
                heapq.heappush(heap, entry)

    def totals(self, family: str, index: int = 1) -> dict:
        """Sum over partitions of one family, grouped by the key part at ``index`` (tests, reports)."""
        out: dict = defaultdict(int)
        for counts in self.counts.values():
            for key, n in counts.items():
                if key[0] == family:
                    out[key[index]] += n
        return {k: v for k, v in out.items() if v}


class BulkCounters(Counters):
    """The counters of a bulk pass over ``dossier.events`` (``onestop rebuild``, ``onestop reconcile``).

    Nothing moves record by record: the counts are a function of the stored dossiers, so counting
    the final dossiers once (``rebuild``, as after a recovery) gives exactly what moving them at
    every record gives, at a fraction of the cost. Nothing is evicted either: a bulk pass keeps
    every bucket, so a late update is never dropped.
    """

    def move(self, partition: int, before: StoredDossier | None, after: StoredDossier | None) -> None:
        return None
