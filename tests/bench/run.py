"""Throughput benchmark on real Kafka: raw consumer, no-op Faust agent and the full worker, in one run.

    python -m tests.bench.run [--events 100000] [--partitions 12] [--only raw,noop,worker]
                              [--json out.json] [--keep-broker] [--loop asyncio|uvloop] [--profile DIR]

What it does, in order (see docs/benchmarks.md for the method and the figures):

1. starts its own Kafka broker (``ops.broker``) in a temporary
   ``ONESTOP_HOME`` on free loopback ports, and creates the pipeline topics
   explicitly (``--partitions`` each);
2. simulates ``--events`` events (``producers.simulator``, enough dossiers)
   and publishes them once with ``producers.publisher.Publisher``; all three
   paths then read this same backlog of ``dossier.events``, one after the other;
3. measures
   * ``raw``: an aiokafka consumer in this process (no group, every partition
     assigned, from the beginning) that decodes each value into
     ``onestop.events.DossierEvent``; timed from its first fetch to the last
     record decoded;
   * ``noop``: ``tests.bench.noop_app``, a Faust agent that does nothing, as
     a subprocess with a fresh app id (cold consumer group);
   * ``worker``: the real ``onestop worker`` (``Services``; fresh app id,
     ``clock=event``, web server off), as a subprocess;
   the two Faust paths are timed the same way, from the outside: the
   consumer group's committed offsets are polled every 0.1 s; the window runs
   from the first poll that sees progress to the poll that sees lag 0, and the
   rate is (records committed in the window) / (window). Start-up (Faust boot,
   topic creation, rebalance, table recovery) is outside the window. As
   cross-checks ("self-timed"), the no-op agent stamps its first and last
   record itself, and the worker's first and last state-changelog records
   carry the producer's timestamps;
4. prints a table (events, seconds, events/s, % of the no-op rate, CPU µs per
   event and who used the CPUs during each window) and the machine, writes
   the same as JSON with ``--json``, and stops everything it started (by pid)
   and its broker, also on Ctrl-C, SIGTERM or failure.

Each path has a time limit (``--timeout``). No assertion is made on speed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import hashlib
import importlib.util
import itertools
import json
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any, Callable

from ops.services import Services
from onestop.settings import Settings

REPO_ROOT = Path(__file__).resolve().parents[2]

PATHS = ("raw", "noop", "worker")
TARGET_RATE = 3000.0  # events/s of the full worker
TARGET_SHARE = 0.5  # of the no-op agent's rate
POLL_S = 0.1
MIN_CPU_WINDOW_S = 1.0
SHORT_WINDOW_S = 5.0
OTHERS_WARN_PCT = 25.0  # CPU of other processes (in % of one core) above which a figure is flagged
EVENTS_PER_DOSSIER = 4.3  # what the simulator yields over its default 10 days (about 4.9; a margin)


# --- results -------------------------------------------------------------------------------------


@dataclass
class Result:
    path: str
    events: int  # records inside the timed window
    seconds: float
    rate: float  # events / seconds
    method: str
    startup_s: float | None = None  # subprocess spawned → first committed progress observed
    total_s: float | None = None  # subprocess spawned → lag 0 observed
    self_timed: dict[str, float] | None = None  # no-op agent: its own first/last stamps
    cpu: dict[str, float] | None = None  # CpuWindow over the timed window

    @property
    def cpu_us_per_event(self) -> float | None:
        """CPU time of the measured process per event: less sensitive to a busy machine than the rate."""
        if not self.cpu or not self.events:
            return None
        return round(self.cpu["process_pct"] / 100 * self.seconds / self.events * 1e6, 1)
    extra: dict[str, Any] = field(default_factory=dict)


# --- processes -----------------------------------------------------------------------------------


class BenchServices(Services):
    """``Services`` (stops exactly the pids it started) plus a module runner and extra child environment."""

    def __init__(self, settings: Settings, extra_env: dict[str, str] | None = None) -> None:
        super().__init__(settings)
        self.extra_env = dict(extra_env or {})

    def env(self) -> dict[str, str]:
        env = super().env()
        env.update(self.extra_env)
        return env

    def start_module(self, name: str, module: str, env: dict[str, str] | None = None) -> subprocess.Popen:
        log = open(self.logs / f"{name}.log", "ab")
        child_env = self.env()
        child_env.update(env or {})
        proc = subprocess.Popen([sys.executable, "-m", module], env=child_env, cwd=REPO_ROOT,
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.procs[name] = proc
        return proc

    def log_tail(self, name: str, lines: int = 30) -> str:
        path = self.logs / f"{name}.log"
        text = path.read_text(errors="replace") if path.is_file() else "(no log)"
        return "\n".join(text.splitlines()[-lines:])



def finish(settings: Settings, home: Path, code: int, *services: Services) -> None:
    """End a benchmark run: ignore further signals, stop the processes it started (by pid) and its broker;
    remove its home after a success, keep it (and say where) after a failure."""
    from ops import broker

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    for s in services:
        s.stop_all()
    try:
        broker.stop(settings)
    finally:
        if code == 0:
            shutil.rmtree(home, ignore_errors=True)
        else:
            print(f"logs kept in {home}", file=sys.stderr)

def _raise_interrupt(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def free_ports(count: int) -> list[int]:
    """Distinct loopback ports that nothing listens on right now."""
    with contextlib.ExitStack() as stack:
        socks = [stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) for _ in range(count)]
        for sock in socks:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in socks]


# --- CPU accounting ------------------------------------------------------------------------------

CLK_TCK = os.sysconf("SC_CLK_TCK")


def _busy_s() -> float:
    """CPU-seconds the whole machine has been busy (all CPUs; steal included), from /proc/stat."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    except OSError:
        return 0.0
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[:8])
    return (user + nice + system + irq + softirq + steal) / CLK_TCK


def _proc_s(pid: int | None) -> float:
    """CPU-seconds (user + system, all threads) of one process; 0 if it is gone."""
    if not pid:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


class CpuWindow:
    """Who used the CPUs during a timed window: the measured process, the broker, everything else.

    Figures are in % of one core (200% = both cores of a 2-CPU machine). "others" is the
    machine's busy time less the measured process, the broker and this benchmark process:
    other people's work on a shared machine shows up there and makes a figure suspect.
    """

    def __init__(self, pid: int | None, broker_pid: int | None) -> None:
        self.pid, self.broker_pid = pid, broker_pid
        self.start = self._sample()

    def _sample(self) -> tuple[float, float, float, float, float]:
        return (time.monotonic(), _proc_s(self.pid), _proc_s(self.broker_pid), _proc_s(os.getpid()), _busy_s())

    def stop(self) -> dict[str, float]:
        end = self._sample()
        dt = max(end[0] - self.start[0], 1e-9)
        proc, brk, me, busy = (end[i] - self.start[i] for i in range(1, 5))
        if self.pid == os.getpid():
            me = 0.0
        others = max(0.0, busy - proc - brk - me)
        pct = lambda x: round(100 * x / dt, 1)  # noqa: E731
        if dt < MIN_CPU_WINDOW_S:  # /proc counts in 10 ms ticks: a short window says nothing about the others
            brk = me = others = 0.0
        return {"process_pct": pct(proc), "broker_pct": pct(brk), "bench_pct": pct(me), "others_pct": pct(others),
                "seconds": round(dt, 2), "loadavg_1m": round(os.getloadavg()[0], 2)}


def broker_pid(settings: Settings) -> int | None:
    from ops.broker import BrokerPaths

    text = BrokerPaths.of(settings).pid.read_text().strip() if BrokerPaths.of(settings).pid.is_file() else ""
    return int(text) if text.isdigit() else None


# --- machine -------------------------------------------------------------------------------------


def machine_info(settings: Settings, loop: str) -> dict[str, Any]:
    cpu = platform.processor() or "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = None
    with contextlib.suppress(OSError, ValueError, IndexError):
        kb = next(line for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal"))
        mem = round(int(kb.split()[1]) / 1024 / 1024, 1)
    versions = {}
    for dist in ("faust-streaming", "aiokafka", "msgspec", "kafka-python", "mode-streaming", "uvloop"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[dist] = metadata.version(dist)
    if loop == "uvloop" and "uvloop" not in versions:
        with contextlib.suppress(Exception):
            import uvloop

            versions["uvloop"] = uvloop.__version__
    java = ""
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        out = subprocess.run(["java", "-version"], capture_output=True, text=True, timeout=20)
        java = (out.stderr or out.stdout).splitlines()[0].strip()
    return {
        "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
        "code": code_fingerprint(),
        "nproc": len(os.sched_getaffinity(0)),
        "cpu_model": cpu,
        "mem_gib": mem,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "versions": versions,
        "kafka": settings.kafka_version,
        "java": java,
        "loop": loop,
    }


def code_fingerprint() -> dict[str, str]:
    """Short hashes of the sources the figures depend on (the worker's code changes between runs)."""
    out = {}
    for package in ("onestop", "streams", "producers", "tests/bench"):
        digest = hashlib.sha256()
        for path in sorted((REPO_ROOT / package).rglob("*.py")):
            digest.update(path.relative_to(REPO_ROOT).as_posix().encode() + b"\0" + path.read_bytes())
        out[package] = digest.hexdigest()[:12]
    return out


# --- data ----------------------------------------------------------------------------------------


def publish(settings: Settings, n: int, seed: int, timeout: float) -> tuple[int, float, Counter]:
    """Publish ``n`` simulated events to ``topic_events``; return (events, seconds, counts per type)."""
    from producers.publisher import Publisher
    from producers.simulator import SimulationConfig, simulate

    dossiers = max(50, int(n / EVENTS_PER_DOSSIER) + 50)
    while True:
        evs = list(itertools.islice(simulate(SimulationConfig(dossiers=dossiers, seed=seed)), n))
        if len(evs) >= n:
            break
        dossiers *= 2
    kinds = Counter(e.event_type.value for e in evs)
    started = time.monotonic()
    with Publisher(settings, client_id="onestop-bench") as pub:
        pub.publish_many(evs)
        pub.flush(timeout)
        stats = pub.stats
    if stats.spool_depth or stats.delivered < n:
        raise RuntimeError(f"publishing did not complete: {stats}")
    return n, time.monotonic() - started, kinds


class GroupWatch:
    """Committed offsets of consumer groups on ``topic_events``, with one admin client for the whole run."""

    def __init__(self, settings: Settings) -> None:
        from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition

        servers = settings.kafka_bootstrap.split(",")
        consumer = KafkaConsumer(bootstrap_servers=servers, client_id="onestop-bench-watch")
        try:
            parts = sorted(consumer.partitions_for_topic(settings.topic_events) or ())
            self.tps = [TopicPartition(settings.topic_events, p) for p in parts]
            self.ends = consumer.end_offsets(self.tps)
        finally:
            consumer.close()
        self.total = sum(self.ends.values())
        self.admin = KafkaAdminClient(bootstrap_servers=servers, client_id="onestop-bench-watch")

    def committed(self, group: str) -> int:
        from kafka.errors import KafkaError

        try:
            offsets = self.admin.list_group_offsets({group: self.tps}).get(group, {})
        except KafkaError:  # no coordinator / group yet: nothing committed
            return 0
        done = 0
        for tp in self.tps:
            meta = offsets.get(tp)
            if meta is not None and meta.offset >= 0:
                done += min(meta.offset, self.ends[tp])
        return done

    def close(self) -> None:
        self.admin.close()


# --- the three paths -----------------------------------------------------------------------------


async def _raw(settings: Settings, partitions: list[int], total: int, timeout: float) -> Result:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    from onestop import events

    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, group_id=None,
                                enable_auto_commit=False, auto_offset_reset="earliest",
                                client_id="onestop-bench-raw")
    await consumer.start()
    try:
        tps = [TopicPartition(settings.topic_events, p) for p in partitions]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        await consumer.topics()  # metadata (leaders) before the clock starts
        decode, contract_error = events.decode, events.ContractError
        n = bad = 0
        window = CpuWindow(os.getpid(), broker_pid(settings))
        cpu_started = time.process_time()
        started = time.perf_counter()
        deadline = started + timeout
        while n < total:
            batches = await consumer.getmany(timeout_ms=500)
            for records in batches.values():
                for record in records:
                    try:
                        decode(record.value)
                    except contract_error:
                        bad += 1
                n += len(records)
            if time.perf_counter() > deadline:
                raise TimeoutError(f"raw consumer read {n:,} of {total:,} records in {timeout:.0f}s")
        seconds = time.perf_counter() - started
        cpu_s = time.process_time() - cpu_started
        cpu = window.stop()
        cpu["process_pct"] = round(100 * cpu_s / seconds, 1)  # jiffies are too coarse for a short window
    finally:
        await consumer.stop()
    return Result("raw", n, seconds, n / seconds, "first fetch → last record decoded (in-process)", cpu=cpu,
                  extra={"contract_errors": bad})


def measure_raw(settings: Settings, watch: GroupWatch, timeout: float, loop: str) -> Result:
    factory = None
    if loop == "uvloop":
        import uvloop

        factory = uvloop.new_event_loop
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(_raw(settings, [tp.partition for tp in watch.tps], watch.total, timeout))


def measure_group(name: str, group: str, watch: GroupWatch, services: BenchServices,
                  start: Callable[[], None], timeout: float) -> Result:
    """Start a consumer subprocess, then time its group from the first committed progress to lag 0."""
    total = watch.total
    spawned = time.monotonic()
    start()
    pid = services.procs[name].pid
    first_t: float | None = None
    first_c = 0
    window = spawn_window = CpuWindow(pid, broker_pid(services.settings))
    deadline = spawned + timeout
    while True:
        services.check_alive()
        done = watch.committed(group)
        now = time.monotonic()
        if done and first_t is None:
            first_t, first_c = now, done
            window = CpuWindow(pid, broker_pid(services.settings))
        if done >= total:
            cpu = window.stop() if first_c < total else spawn_window.stop()
            break
        if now > deadline:
            raise TimeoutError(f"{name}: group {group} committed {done:,} of {total:,} in {timeout:.0f}s; "
                               f"log:\n{services.log_tail(name)}")
        time.sleep(POLL_S)
    assert first_t is not None
    if first_c < total:
        events, seconds = total - first_c, now - first_t
        method = "committed offsets: first progress → lag 0"
    else:  # done before the first commit could be seen: too few events for a window
        events, seconds = total, now - spawned
        method = "committed offsets: spawn → lag 0 (includes start-up; too few events for a window)"
    return Result(name, events, seconds, events / seconds, method, cpu=cpu,
                  startup_s=round(first_t - spawned, 2), total_s=round(now - spawned, 2))


def _read_stamps(path: Path) -> dict[str, float] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if "last" not in data or data.get("count", 0) < 2:
        return None
    seconds = data["last"] - data["first"]
    return {"events": data["count"] - 1, "seconds": round(seconds, 3),
            "rate": round((data["count"] - 1) / seconds, 1) if seconds > 0 else 0.0, "loop": data.get("loop", "?")}


def measure_noop(settings: Settings, watch: GroupWatch, services: BenchServices, run_id: str,
                 timeout: float, mode: str = "events") -> Result:
    app_id = f"bench-noop-{run_id}"
    noop_settings = settings.model_copy(update={"app_id": app_id})
    stamps = settings.home / f"{app_id}.stamps.json"
    from onestop.settings import settings_env

    env = settings_env(noop_settings)
    env.update(BENCH_EXPECT=str(watch.total), BENCH_STAMPS=str(stamps), BENCH_NOOP_MODE=mode)
    try:
        result = measure_group("noop", app_id, watch, services,
                               lambda: services.start_module("noop", "tests.bench.noop_app", env), timeout)
    finally:
        services.stop("noop")
    result.self_timed = _read_stamps(stamps)
    return result


def changelog_span(settings: Settings, topic: str, events: int) -> dict[str, float] | None:
    """The worker's own clock: CreateTime of its first and last changelog record (one per dossier write).

    The producer stamps each record when the worker sends it, so the span from the first to the
    last one is the worker's processing time for (nearly) the whole backlog, without the commit
    interval's granularity. A cross-check of the commit-based figure, like the no-op's stamps.
    """
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap.split(","), client_id="onestop-bench-span",
                             enable_auto_commit=False, group_id=None, consumer_timeout_ms=5000)
    try:
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        ends = consumer.end_offsets(tps)
        firsts, lasts = [], []
        for tp in tps:
            if not ends[tp]:
                continue
            for offset, into in ((0, firsts), (ends[tp] - 1, lasts)):
                consumer.assign([tp])
                consumer.seek(tp, offset)
                batch = consumer.poll(timeout_ms=5000, max_records=1).get(tp, [])
                if batch:
                    into.append(batch[0].timestamp)
        if not firsts or not lasts:
            return None
        seconds = (max(lasts) - min(firsts)) / 1000
        return {"events": events - 1, "seconds": round(seconds, 3),
                "rate": round((events - 1) / seconds, 1) if seconds > 0 else 0.0,
                "changelog_records": sum(ends.values())}
    finally:
        consumer.close()


def create_changelog(settings: Settings, app_id: str) -> str:
    """Create the worker's state changelog (compacted) before its first start, as the pipeline does.

    Faust would create it itself, but a worker that joins its group before a new topic reaches its
    metadata is assigned none of its partitions. Creating it here also keeps topic creation out of
    the timed window.
    """
    from ops.replay import create_changelog as create_compacted_changelog
    from streams.app import changelog_topic

    worker = settings.model_copy(update={"app_id": app_id})
    create_compacted_changelog(worker, settings.partitions)
    return changelog_topic(worker)


def worker_settings(settings: Settings, app_id: str) -> Settings:
    return settings.model_copy(update={"app_id": app_id, "clock": "event", "web_port": 0, "metrics_port": 0})


def measure_worker(settings: Settings, watch: GroupWatch, services: BenchServices, run_id: str,
                   timeout: float) -> Result:
    app_id = f"bench-worker-{run_id}"
    changelog = create_changelog(settings, app_id)
    worker = BenchServices(worker_settings(settings, app_id), services.extra_env)
    worker.logs = services.logs
    try:
        result = measure_group("worker", app_id, watch, worker, lambda: worker.start("worker", "worker"), timeout)
    finally:
        worker.stop_all()
    with contextlib.suppress(Exception):  # a cross-check only
        result.self_timed = changelog_span(settings, changelog, watch.total)
    return result


# --- profile (optional) --------------------------------------------------------------------------

# Functions whose inclusive share of the worker's samples is reported (substring of a py-spy frame).
WATCH = {
    "agent loop (fold_events)": "fold_events (streams/app.py",
    "Processor.on_event": "on_event (streams/processor.py",
    "  decode (msgspec → DossierEvent)": "decode (onestop/events.py",
    "  table read (PartitionView.get)": "PartitionView.get (streams/state.py",
    "  fold (onestop.fold.apply)": "apply (onestop/fold.py",
    "  judge (_judge/_rejudge)": "_judge (streams/processor.py",
    "  next check (_next_check)": "_next_check (streams/processor.py",
    "  SLA classify (onestop.sla.classify)": "classify (onestop/sla.py",
    "  counters (Counters.move)": "move (streams/counters.py",
    "  alerts (_alerts/_emit)": "_alerts (streams/processor.py",
    "  table write, held (PartitionView.set)": "PartitionView.set (streams/state.py",
    "  encode state (encode_stored)": "encode_stored (streams/model.py",
    "  decode state (decode_stored)": "decode_stored (streams/model.py",
    "  fire_due (deadline index)": "fire_due (streams/processor.py",
    "gaps in the input offsets (fill_gaps)": "fill_gaps (streams/app.py",
    "persist (alerts, dead letters, states; acks)": "persist (streams/app.py",
    "  record batches to Kafka (KafkaOutbox)": "KafkaOutbox.",
    "  states into RocksDB (TableState.apply)": "TableState.apply (streams/state.py",
    "  input acknowledgements (Stream.ack)": "Stream.ack (faust/streams.py",
    "prometheus Counter.inc": "inc (prometheus_client",
    "publish_counters timer (evict + drain + send)": "publish_counters (streams/app.py",
    "Faust: stream iteration (Stream._c_aiter)": "_c_aiter (faust/streams.py",
    "Faust: offset commit (_commit_offsets)": "_commit_offsets (faust/transport/consumer.py",
    "Faust: producer buffer (ProducerBuffer)": "ProducerBuffer.",
    "aiokafka: produce requests (Sender)": "Sender.",
    "aiokafka: fetching (Fetcher)": "Fetcher.",
}

CATEGORIES = (  # first match wins, on the leaf frame's file (py-spy prints paths from sys.path)
    ("ours: onestop", re.compile(r"(^|/)onestop/")),
    ("ours: streams", re.compile(r"(^|/)streams/")),
    ("faust", re.compile(r"(^|/)faust/")),
    ("mode", re.compile(r"(^|/)mode/")),
    ("aiokafka", re.compile(r"(^|/)aiokafka/")),
    ("kafka-python", re.compile(r"(^|/)kafka/")),
    ("rocksdict", re.compile(r"rocksdict")),
    ("prometheus_client", re.compile(r"(^|/)prometheus_client/")),
    ("asyncio + selectors", re.compile(r"(^|/)(asyncio/|selectors\.py)")),
    ("logging", re.compile(r"(^|/)logging/")),
    ("datetime/zoneinfo", re.compile(r"(^|/)(datetime|zoneinfo|_strptime)")),
)

_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]*?)(?::\d+)?\)$")


def _frame_key(frame: str) -> tuple[str, str]:
    m = _FRAME.match(frame)
    return (m.group("func"), m.group("file")) if m else (frame, "")


def summarize_profile(path: Path, top: int = 25) -> dict[str, Any]:
    """Self and inclusive shares from py-spy's raw (collapsed) output: 'frame;frame;… count' lines."""
    total = 0
    self_counts: Counter = Counter()
    categories: Counter = Counter()
    inclusive: Counter = Counter()
    threads: Counter = Counter()
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = [f for f in stack.split(";") if not f.startswith(("process ", "thread "))]
        if not frames:
            continue
        total += n
        consumer_thread = any(f.startswith(("ServiceThread.", "Thread._bootstrap")) for f in frames)
        threads["Faust consumer thread (aiokafka)" if consumer_thread else "main thread (agent, producer, timers)"] += n
        func, file = _frame_key(frames[-1])
        self_counts[f"{func} ({_short(file)})"] += n
        categories[next((name for name, rx in CATEGORIES if rx.search(file)), "other (stdlib, C)")] += n
        short = [_short_frame(f) for f in frames]
        for label, needle in WATCH.items():
            if any(needle in f for f in short):
                inclusive[label] += n
    pct = (lambda n: round(100.0 * n / total, 1)) if total else (lambda n: 0.0)
    return {
        "samples": total,
        "by_thread": {k: pct(v) for k, v in threads.most_common()},
        "self_by_category": {k: pct(v) for k, v in categories.most_common()},
        "top_self": [(k, pct(v)) for k, v in self_counts.most_common(top)],
        "inclusive": {label: pct(inclusive[label]) for label in WATCH},
    }


def _short(file: str) -> str:
    for marker in ("site-packages/", "/lib/python3.11/", str(REPO_ROOT) + "/"):
        if marker in file:
            return file.split(marker, 1)[1]
    return file


def _short_frame(frame: str) -> str:
    func, file = _frame_key(frame)
    return f"{func} ({_short(file)})"


def profile_worker(settings: Settings, watch: GroupWatch, services: BenchServices, run_id: str,
                   timeout: float, out_dir: Path, py_spy: str) -> dict[str, Any]:
    """One more worker pass (fresh group) with py-spy attached from its first progress to lag 0."""
    app_id = f"bench-worker-prof-{run_id}"
    create_changelog(settings, app_id)
    worker = BenchServices(worker_settings(settings, app_id), services.extra_env)
    worker.logs = services.logs
    out_dir.mkdir(parents=True, exist_ok=True)
    raw = out_dir / "worker-py-spy.txt"
    spy: subprocess.Popen | None = None
    spawned = time.monotonic()
    try:
        worker.start("worker-prof", "worker")
        pid = worker.procs["worker-prof"].pid
        first_t = None
        first_c = 0
        while True:
            worker.check_alive()
            done = watch.committed(app_id)
            now = time.monotonic()
            if done and spy is None:
                spy = subprocess.Popen([py_spy, "record", "--pid", str(pid), "--format", "raw", "--rate", "100",
                                        "--output", str(raw)], stdout=subprocess.DEVNULL,
                                       stderr=open(out_dir / "py-spy.log", "ab"), start_new_session=True)
                first_t, first_c = now, done
            if done >= watch.total:
                break
            if now > spawned + timeout:
                raise TimeoutError(f"profiled worker did not finish in {timeout:.0f}s")
            time.sleep(POLL_S)
        if spy is not None:
            spy.send_signal(signal.SIGINT)  # py-spy writes its output on SIGINT
            spy.wait(60)
    finally:
        if spy is not None and spy.poll() is None:
            spy.kill()
            spy.wait()
        worker.stop_all()
    summary = summarize_profile(raw) if raw.is_file() else {"error": f"py-spy wrote nothing; see {out_dir}"}
    if first_t is not None and now > first_t:
        summary["profiled_rate"] = round((watch.total - first_c) / (now - first_t), 1)
    summary["raw_file"] = str(raw)
    (out_dir / "worker-profile.json").write_text(json.dumps(summary, indent=2))
    return summary


# --- report --------------------------------------------------------------------------------------


def print_machine(info: dict[str, Any]) -> None:
    v = info["versions"]
    print(f"machine: {info['nproc']} CPU ({info['cpu_model']}), {info['mem_gib']} GiB, Linux {info['kernel']}")
    code = ", ".join(f"{k} {h}" for k, h in info["code"].items())
    print(f"load average at start {info['loadavg_at_start']}; code {code}")
    print(f"python {info['python']} ({info['loop']} loop); " + ", ".join(f"{k} {val}" for k, val in v.items())
          + f"; Kafka {info['kafka']} on {info['java']}")


def print_table(results: dict[str, Result], total: int) -> None:
    noop = results.get("noop")
    print()
    print(f"{'path':<8} {'events':>9} {'seconds':>9} {'events/s':>10} {'% of no-op':>11} "
          f"{'cpu µs/ev':>10} {'cpu proc':>9} {'broker':>7} {'others':>7}  method")
    for name in PATHS:
        r = results.get(name)
        if r is None:
            continue
        share = f"{100 * r.rate / noop.rate:.0f}%" if noop and name != "raw" else "-"
        cpu = r.cpu or {}
        print(f"{name:<8} {r.events:>9,} {r.seconds:>9.2f} {r.rate:>10,.0f} {share:>11} "
              f"{r.cpu_us_per_event or 0:>10,.0f} {cpu.get('process_pct', 0):>8.0f}% "
              f"{cpu.get('broker_pct', 0):>6.0f}% {cpu.get('others_pct', 0):>6.0f}%  {r.method}")
    print("(cpu µs/ev: CPU time of the measured process per event; cpu proc/broker/others: % of one core "
          "during the timed window, 'others' = everything on the machine that is not this run)")
    short = [n for n, r in results.items() if n != "raw" and r.seconds < SHORT_WINDOW_S]
    if short:
        print(f"NOTE: the timed window of {', '.join(short)} is under {SHORT_WINDOW_S:.0f}s: commits come every 1 s "
              "or 2,000 records, so the commit-based rate is coarse; see the self-timed lines, or use more --events")
    busy = [n for n, r in results.items() if r.cpu and r.cpu["others_pct"] > OTHERS_WARN_PCT]
    if busy:
        print(f"WARNING: other processes used more than {OTHERS_WARN_PCT:.0f}% of a core while measuring "
              f"{', '.join(busy)}: those figures are disturbed; run again on a quiet machine")
    if noop and noop.self_timed:
        st = noop.self_timed
        print(f"noop self-timed (first → {total:,}th record, stamped by the agent): "
              f"{st['events']:,} events in {st['seconds']:.2f}s = {st['rate']:,.0f} events/s (loop {st['loop']})")
    worker = results.get("worker")
    if worker and worker.self_timed:
        st = worker.self_timed
        print(f"worker self-timed (first → last changelog record's timestamp, {st['changelog_records']:,} records): "
              f"{st['events']:,} events in {st['seconds']:.2f}s = {st['rate']:,.0f} events/s")
    for name in ("noop", "worker"):
        r = results.get(name)
        if r is not None and r.startup_s is not None:
            print(f"{name}: start-up to first commit {r.startup_s:.1f}s, spawn to lag 0 {r.total_s:.1f}s")
    worker = results.get("worker")
    if worker is not None:
        verdict = [f"worker {worker.rate:,.0f} events/s vs target {TARGET_RATE:,.0f}: "
                   + ("met" if worker.rate >= TARGET_RATE else "NOT met")]
        if noop is not None:
            share = worker.rate / noop.rate
            verdict.append(f"{100 * share:.0f}% of no-op vs target {100 * TARGET_SHARE:.0f}%: "
                           + ("met" if share >= TARGET_SHARE else "NOT met"))
        print("targets: " + "; ".join(verdict))


def print_profile(summary: dict[str, Any]) -> None:
    if "error" in summary:
        print(f"profile: {summary['error']}")
        return
    print(f"\nworker profile (py-spy, {summary['samples']:,} samples over all threads, "
          f"profiled rate {summary.get('profiled_rate', 0):,.0f} events/s; raw stacks in {summary['raw_file']})")
    print("by thread: " + ", ".join(f"{k} {v}%" for k, v in summary["by_thread"].items()))
    print("self time by library: " + ", ".join(f"{k} {v}%" for k, v in summary["self_by_category"].items()))
    print("inclusive share of samples:")
    for label, value in summary["inclusive"].items():
        print(f"  {label:<56} {value:>5.1f}%")
    print("top self time:")
    for name, value in summary["top_self"][:15]:
        print(f"  {value:>5.1f}%  {name}")


# --- main ----------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m tests.bench.run", description=__doc__.split("\n\n")[0])
    p.add_argument("--events", type=int, default=100_000, help="events to publish and read (default 100000)")
    p.add_argument("--partitions", type=int, default=12, help="partitions of every topic (default 12, as Settings)")
    p.add_argument("--only", default=",".join(PATHS), help="comma-separated subset of raw,noop,worker")
    p.add_argument("--json", type=Path, default=None, help="also write the figures as JSON to this path")
    p.add_argument("--keep-broker", action="store_true",
                   help="leave the broker running and its home in place (prints how to stop it)")
    p.add_argument("--loop", choices=("asyncio", "uvloop"), default="asyncio",
                   help="event loop of every measured path (uvloop must be importable)")
    p.add_argument("--profile", type=Path, default=None, metavar="DIR",
                   help="after the measured passes, profile one more worker pass with py-spy into DIR")
    p.add_argument("--py-spy", default=shutil.which("py-spy"), help="py-spy executable (default: from PATH)")
    p.add_argument("--noop-mode", choices=("events", "batches"), default="events",
                   help="how the no-op agent reads: one stream.events() loop (the reference), or the worker's "
                        "batches (stream.noack_take with the worker's batch settings, then an ack per record)")
    p.add_argument("--seed", type=int, default=42, help="simulation seed")
    p.add_argument("--timeout", type=float, default=None,
                   help="seconds allowed per measured path (default 120 + events/250)")
    args = p.parse_args(argv)
    only = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = set(only) - set(PATHS)
    if unknown or not only:
        p.error(f"--only takes a subset of {','.join(PATHS)}; got {args.only!r}")
    args.paths = [name for name in PATHS if name in only]
    if args.events < 1 or args.partitions < 1:
        p.error("--events and --partitions must be positive")
    if args.loop == "uvloop" and importlib.util.find_spec("uvloop") is None:
        p.error("--loop uvloop: uvloop is not importable (it is not a dependency of the project)")
    if args.profile is not None and not args.py_spy:
        p.error("--profile needs py-spy (pip install py-spy, or --py-spy PATH)")
    args.timeout = args.timeout or 120.0 + args.events / 250
    return args


def _loop_env(home: Path, loop: str) -> dict[str, str]:
    """Child environment that makes every child run on ``loop`` (a sitecustomize installs uvloop)."""
    if loop != "uvloop":
        return {}
    site = home / "bench-site"
    site.mkdir(parents=True, exist_ok=True)
    (site / "sitecustomize.py").write_text("import uvloop\nuvloop.install()\n")
    paths = [str(site), *[p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]]
    return {"PYTHONPATH": os.pathsep.join(paths)}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from ops import broker
    from ops.topics import create_topics

    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _raise_interrupt)
    run_id = uuid.uuid4().hex[:8]
    home = Path(tempfile.mkdtemp(prefix="onestop-bench-"))
    port, controller_port = free_ports(2)
    settings = Settings(home=home, kafka_port=port, kafka_controller_port=controller_port,
                        kafka_bootstrap=f"127.0.0.1:{port}", partitions=args.partitions, clock="event",
                        web_port=0, metrics_port=0, app_id=f"bench-{run_id}")
    services = BenchServices(settings, _loop_env(home, args.loop))
    watch: GroupWatch | None = None
    results: dict[str, Result] = {}
    keep = args.keep_broker
    code = 1
    try:
        info = machine_info(settings, args.loop)
        print(f"onestop-ioc throughput benchmark, {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, run {run_id}")
        print_machine(info)
        t = time.monotonic()
        broker.start(settings)
        create_topics(settings)
        print(f"Kafka on {settings.kafka_bootstrap} (home {home}), topics with {args.partitions} partitions, "
              f"ready in {time.monotonic() - t:.1f}s")
        total, seconds, kinds = publish(settings, args.events, args.seed, timeout=args.timeout)
        print(f"published {total:,} simulated events in {seconds:.1f}s ({total / seconds:,.0f}/s): "
              + ", ".join(f"{k} {v:,}" for k, v in kinds.most_common()))
        gc.collect()
        watch = GroupWatch(settings)
        if watch.total != total:
            print(f"note: the topic holds {watch.total:,} records (publisher retries); every path reads them all")
        for name in args.paths:
            print(f"measuring {name}…", flush=True)
            if name == "raw":
                results[name] = measure_raw(settings, watch, args.timeout, args.loop)
            elif name == "noop":
                results[name] = measure_noop(settings, watch, services, run_id, args.timeout, args.noop_mode)
            else:
                results[name] = measure_worker(settings, watch, services, run_id, args.timeout)
            r = results[name]
            print(f"  {name}: {r.rate:,.0f} events/s ({r.events:,} events in {r.seconds:.2f}s)", flush=True)
        print_table(results, watch.total)
        profile = None
        if args.profile is not None:
            print("profiling one more worker pass with py-spy…", flush=True)
            profile = profile_worker(settings, watch, services, run_id, args.timeout, args.profile, args.py_spy)
            print_profile(profile)
        if args.json is not None:
            noop, worker = results.get("noop"), results.get("worker")
            doc = {
                "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "machine": info,
                "config": {"events": total, "partitions": args.partitions, "seed": args.seed, "loop": args.loop,
                           "noop_mode": args.noop_mode,
                           "paths": args.paths, "poll_s": POLL_S},
                "results": {k: {**asdict(v), "cpu_us_per_event": v.cpu_us_per_event} for k, v in results.items()},
                "worker_pct_of_noop": round(100 * worker.rate / noop.rate, 1) if noop and worker else None,
                "targets": {"worker_events_per_s": TARGET_RATE, "worker_share_of_noop": TARGET_SHARE},
                "profile": profile,
            }
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
            print(f"figures written to {args.json}")
        code = 0
    except KeyboardInterrupt as exc:
        print(f"\ninterrupted ({exc or 'Ctrl-C'}); stopping everything this run started", file=sys.stderr)
        code = 130
    except Exception as exc:
        print(f"\nbenchmark failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        code = 1
    finally:
        # A second Ctrl-C must not cut the clean-up short.
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)
        if watch is not None:
            with contextlib.suppress(Exception):
                watch.close()
        services.stop_all()
        if keep and code == 0:
            print(f"broker kept running on {settings.kafka_bootstrap}; stop it with: "
                  f"ONESTOP_HOME={home} ONESTOP_KAFKA_PORT={port} {sys.executable} -m onestop kafka stop")
        else:
            try:
                broker.stop(settings)
            finally:
                if code == 1:
                    print(f"broker stopped; logs kept in {home} for a look", file=sys.stderr)
                else:
                    shutil.rmtree(home, ignore_errors=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
