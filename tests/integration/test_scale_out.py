"""Scale-out: two workers in one consumer group give exactly the results of one worker.

The second worker joins while the first is mid-stream, so half of the
partitions move with their state (the new owner restores the table from the
changelog and rebuilds its counters and deadline index from it). The input is
published in two halves, the second once both workers hold partitions, so
the second worker gets records of the partitions it took over however fast
the first one is. Both runs
read the same input topic under different application ids and publish to
their own output topics.
"""

from __future__ import annotations

import time
from datetime import date

import pytest

from ops.services import Services
from producers.simulator import SimulationConfig, simulate
from stream_runs import (assert_same_outcome, committed_progress, expected_backlog, grep_log, group_partitions,
                         namespace, publish, read_outcome, run_settings, wait_worker)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

CFG = SimulationConfig(communes=69, dossiers=4_500, seed=1207, start=date(2026, 11, 2), days=20)  # ~24,700 events


def test_two_workers_in_one_group_give_the_results_of_one(kafka_settings, tmp_path):
    ns = namespace(kafka_settings, "scale", tmp_path / "ns")
    evs = list(simulate(CFG))
    one = run_settings(ns, "one", tmp_path / "one")  # the reference: one worker alone in its group
    two = run_settings(ns, "two", tmp_path / "two-1")
    second = two.model_copy(update={"home": tmp_path / "two-2"})  # same app id and topics, its own RocksDB
    reference, first_worker, second_worker = Services(one), Services(two), Services(second)
    t0 = time.monotonic()
    try:
        reference.start("worker", "worker")
        first_worker.start("worker", "worker")
        half = len(evs) // 2
        publish(ns, evs[:half])
        deadline = time.monotonic() + 120
        while committed_progress(two) < len(evs) // 4:  # the first worker is well into the stream
            first_worker.check_alive()
            assert time.monotonic() < deadline, "the first worker did not get going"
            time.sleep(0.3)
        second_worker.start("worker", "worker")
        deadline = time.monotonic() + 120
        while not (len(members := group_partitions(two)) == 2 and all(members)):
            second_worker.check_alive()
            assert time.monotonic() < deadline, f"the second worker never got partitions: {members}"
            time.sleep(0.3)
        publish(ns, evs[half:])
        wait_worker(two, first_worker, timeout=240)
        second_worker.check_alive()
        members = group_partitions(two)
        t_two = time.monotonic() - t0
        first_worker.stop_all()
        second_worker.stop_all()
        wait_worker(one, reference, timeout=240)
        t_one = time.monotonic() - t0
    finally:
        reference.stop_all()
        first_worker.stop_all()
        second_worker.stop_all()

    # Both workers really had partitions: the group's assignment, and the second worker's own log.
    assert len(members) == 2 and all(members), f"assignment of the input topic per member: {members}"
    assert set().union(*members) == set(range(two.partitions)) and not members[0] & members[1]
    taken_over = [line for line in grep_log(second, "worker", "rebuilt ") if "rebuilt 0 dossiers" not in line]
    assert taken_over, "the second worker never rebuilt state for the partitions it took over"

    got, want = read_outcome(two), read_outcome(one)
    assert_same_outcome(got, want, "two workers vs one worker")
    assert got.backlog_per_commune() == dict(expected_backlog(evs))
    print(f"\nscale-out: {len(evs):,} events; two workers (the second joined mid-stream) done after {t_two:.1f}s, "
          f"partitions {[sorted(m) for m in members]}; the single worker (run alongside) after {t_one:.1f}s; "
          f"{len(got.alert_ids):,} alert ids, {len(got.counters):,} counter keys")
