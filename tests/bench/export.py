"""Memory of ``onestop export`` on a large table: peak RSS of the exporting process (and of the store's owner).

    python -m tests.bench.export [--rows 10000000] [--formats parquet,csv] [--paths direct,owner]
                                 [--out-dir DIR] [--json out.json]

1. Seeds ``--rows`` raw events into a fresh embedded store (one ``INSERT …
   SELECT`` from ``numbers()``; the rows follow ``expected_row`` below, so a
   reader can check an export without trusting the exporter).
2. For each format and path, runs the real ``onestop export --table
   dossier_events --since … --until …`` as a subprocess and reads its peak RSS
   from the kernel (``wait4``'s ``ru_maxrss``), sampling its RSS over time too.
   ``direct``: nothing owns the store, the command opens it itself. ``owner``: a
   process runs ``sinks.store_owner.StoreOwner`` on the store (as the sink
   does) and the command streams through it; that process's RSS growth is
   reported as well.
3. Prints rows, seconds, rows/s, peak RSS and the RSS after the first tenth of
   the rows (flat memory: the two are close), and the machine.

No assertion is made on time or memory; ``tests/integration/test_export.py``
runs it small and checks the files' content.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from onestop.communes import communes_of
from onestop.settings import Settings, settings_env

START = datetime(2026, 10, 1, tzinfo=timezone.utc)
STEP_MS = 250  # occurred_at of row n is START + n * 250 ms: 10 million rows span 29 days of October
EVENT_TYPES = ("submitted", "accepted", "step_assigned", "result_ready", "result_returned")
PROCEDURES = ("1.001193", "2.000815", "2.000884", "1.013978", "2.000720")
COMMUNES = tuple(c.code for c in communes_of("42"))


def _array(values: tuple[str, ...]) -> str:
    return "[" + ", ".join(f"'{v}'" for v in values) + "]"


SEED_SQL = f"""
INSERT INTO {{db}}.dossier_events (event_id, event_type, dossier_id, seq, occurred_at, commune_code,
    handling_commune_code, procedure_code, channel, due_at, step, reason, source, schema_version,
    kafka_partition, kafka_offset)
SELECT concat('E', toString(number)), {_array(EVENT_TYPES)}[number % 5 + 1], concat('D', toString(intDiv(number, 5))),
       number % 5 + 1, toDateTime64('2026-10-01 00:00:00', 3, 'UTC') + toIntervalMillisecond(number * {STEP_MS}),
       {_array(COMMUNES)}[number % {len(COMMUNES)} + 1], {_array(COMMUNES)}[number % {len(COMMUNES)} + 1],
       {_array(PROCEDURES)}[number % 5 + 1], number % 3 + 1,
       if(number % 5 = 1, toDateTime64('2026-10-01 00:00:00', 3, 'UTC') + toIntervalMillisecond(number * {STEP_MS})
                          + toIntervalDay(3), NULL),
       NULL, NULL, 'bench', 1, number % 12, number
FROM numbers({{first}}, {{count}})
"""


def expected_row(n: int) -> dict:
    """Row ``n`` as seeded, computed in Python."""
    at = START + timedelta(milliseconds=n * STEP_MS)
    commune = COMMUNES[n % len(COMMUNES)]
    return {"event_id": f"E{n}", "event_type": EVENT_TYPES[n % 5], "dossier_id": f"D{n // 5}", "seq": n % 5 + 1,
            "occurred_at": at, "commune_code": commune, "handling_commune_code": commune,
            "procedure_code": PROCEDURES[n % 5], "channel": n % 3 + 1,
            "due_at": at + timedelta(days=3) if n % 5 == 1 else None, "source": "bench",
            "kafka_partition": n % 12, "kafka_offset": n}


def instant(n: int) -> str:
    return (START + timedelta(milliseconds=n * STEP_MS)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+00:00"


def seed(settings: Settings, rows: int, chunk: int = 2_000_000) -> float:
    from sinks.clickhouse import connect, ensure_schema

    started = time.monotonic()
    client = connect(settings)
    try:
        ensure_schema(client, settings.clickhouse_database)
        for first in range(0, rows, chunk):
            client.command(SEED_SQL.format(db=settings.clickhouse_database, first=first,
                                           count=min(chunk, rows - first)))
    finally:
        client.close()
    return time.monotonic() - started


def memory_kib(pid: int) -> tuple[int, int] | None:
    """(VmRSS, VmHWM) of a process: its resident set now, and the most it has had."""
    try:
        fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
                      if line.startswith(("VmRSS:", "VmHWM:")))
        return int(fields["VmRSS"].split()[0]), int(fields["VmHWM"].split()[0])
    except (OSError, KeyError, ValueError):
        return None


class Sampler(threading.Thread):
    """Every 0.1 s until stopped: (seconds, bytes written so far, RSS KiB, high-water KiB) of each process."""

    def __init__(self, pids: dict[str, int], partial: Path) -> None:
        super().__init__(daemon=True)
        self.pids, self.partial = pids, partial
        self.samples: dict[str, list[tuple[float, int, int, int]]] = {name: [] for name in pids}
        self.done = threading.Event()

    def run(self) -> None:
        started = time.monotonic()
        while not self.done.is_set():
            try:
                written = self.partial.stat().st_size
            except OSError:
                written = 0
            for name, pid in self.pids.items():
                memory = memory_kib(pid)
                if memory is not None:
                    self.samples[name].append((time.monotonic() - started, written, *memory))
            self.done.wait(0.1)


def run_export(env: dict[str, str], out: Path, fmt: str, first: int, last: int,
               owner_pid: int | None) -> dict:
    cmd = [sys.executable, "-m", "onestop_cli", "export", "--table", "dossier_events", "--since", instant(first),
           "--until", instant(last), "--format", fmt, "--out", str(out)]
    started = time.monotonic()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    sampler = Sampler({"export": proc.pid, **({"owner": owner_pid} if owner_pid else {})},
                      out.with_name(f".{out.name}.partial"))
    sampler.start()
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.monotonic() - started
    sampler.done.set()
    sampler.join()
    stderr = proc.stderr.read() if proc.stderr else ""
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"onestop export exited {proc.returncode}: {stderr[-2000:]}")
    export, size = sampler.samples["export"], out.stat().st_size
    result = {"format": fmt, "rows": last - first, "seconds": round(seconds, 2),
              "rows_per_s": round((last - first) / seconds),
              # the kernel's figure for the whole life of the process, and the last high-water mark sampled
              "peak_rss_mib": _mib(max(usage.ru_maxrss, max((s[3] for s in export), default=0))),
              "rss_at_10pct_mib": _rss_at(export, size * 0.1), "rss_at_50pct_mib": _rss_at(export, size * 0.5),
              "file_mib": round(size / 2**20, 1),
              "message": stderr.strip().splitlines()[-1] if stderr.strip() else ""}
    if owner_pid:
        owner = sampler.samples["owner"]
        result["owner_rss_start_mib"] = _mib(owner[0][2]) if owner else None
        result["owner_rss_peak_mib"] = _mib(max(s[2] for s in owner)) if owner else None
    return result


def _mib(kib: int) -> float:
    return round(kib / 1024, 1)


def _rss_at(samples: list[tuple[float, int, int, int]], written: float) -> float | None:
    """The exporter's high-water mark when the file had reached ``written`` bytes (flat memory: ≈ the peak)."""
    return next((_mib(s[3]) for s in samples if s[1] >= written > 0), None)


OWNER_SCRIPT = ("import signal, sys, threading; from onestop.settings import Settings; "
                "from sinks.store_owner import StoreOwner; stop = threading.Event(); "
                "signal.signal(signal.SIGTERM, lambda *_: stop.set()); "
                "owner = StoreOwner(Settings()).start(); print('ready', flush=True); stop.wait(); owner.stop()")


def start_owner(env: dict[str, str]) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", OWNER_SCRIPT], env=env, stdout=subprocess.PIPE, text=True)
    if proc.stdout is None or proc.stdout.readline().strip() != "ready":
        proc.kill()
        raise RuntimeError("the store owner did not start")
    return proc


def machine() -> dict:
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor())
    mem = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
               if line.startswith("MemTotal"))
    return {"nproc": os.cpu_count(), "cpu": model, "mem_gib": round(mem / 2**20, 1), "python": platform.python_version(),
            "kernel": platform.release(), "date": datetime.now(timezone.utc).isoformat(timespec="seconds")}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--formats", default="parquet,csv")
    parser.add_argument("--paths", default="direct,owner")
    parser.add_argument("--out-dir", type=Path, help="keep the exported files here (default: a temporary directory)")
    parser.add_argument("--json", type=Path, help="also write the figures as JSON")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="onestop-bench-export-") as tmp:
        home, out_dir = Path(tmp) / "home", args.out_dir or Path(tmp) / "out"
        out_dir.mkdir(parents=True, exist_ok=True)
        settings = Settings(home=home, clickhouse_dsn="")
        env = {**os.environ, **settings_env(settings)}
        # Seeded in a child: this process must stay small, since a child inherits its peak RSS figure.
        started = time.monotonic()
        subprocess.run([sys.executable, "-c", f"from onestop.settings import Settings; from tests.bench.export "
                        f"import seed; seed(Settings(), {args.rows})"], env=env, check=True)
        seeded_s = time.monotonic() - started
        print(f"seeded {args.rows:,} raw events in {seeded_s:.1f}s")
        results = []
        for path in args.paths.split(","):
            owner = start_owner(env) if path == "owner" else None
            try:
                for fmt in args.formats.split(","):
                    out = out_dir / f"{path}.{fmt}"
                    results.append({"path": path, **run_export(env, out, fmt, 0, args.rows,
                                                               owner.pid if owner else None)})
            finally:
                if owner is not None:
                    owner.send_signal(signal.SIGTERM)
                    owner.wait(timeout=60)
        report(results, args.json)
    return 0


def report(results: list[dict], json_path: Path | None) -> None:
    print(f"{'path':8} {'format':8} {'rows':>12} {'s':>7} {'rows/s':>10} {'peak RSS MiB':>13} "
          f"{'at 10%':>7} {'at 50%':>7} {'owner MiB start→peak':>21} {'file MiB':>9}")
    for r in results:
        owner = f"{r['owner_rss_start_mib']}→{r['owner_rss_peak_mib']}" if "owner_rss_peak_mib" in r else "–"
        print(f"{r['path']:8} {r['format']:8} {r['rows']:>12,} {r['seconds']:>7} {r['rows_per_s']:>10,} "
              f"{r['peak_rss_mib']:>13} {str(r['rss_at_10pct_mib']):>7} {str(r['rss_at_50pct_mib']):>7} "
              f"{owner:>21} {r['file_mib']:>9}")
    info = machine()
    print("machine: " + ", ".join(f"{k} {v}" for k, v in info.items()))
    if json_path:
        json_path.write_text(json.dumps({"results": results, "machine": info}, indent=2))


if __name__ == "__main__":
    sys.exit(main())
