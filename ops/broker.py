"""Runner of the local Apache Kafka broker: real Kafka (KRaft, one node) without Docker.

The broker's jars come from Maven Central through ``ops/kafka/pom.xml`` (shipped
inside this package) into ``Settings.cache_dir``; its configuration is rendered from
``ops/kafka/server.properties`` into ``Settings.home/kafka``, where its data,
log and pid file live too. The JVM runs detached in its own session, so it
outlives the command that started it, and ``stop`` only ever signals the pid
this module recorded, after checking that the pid is still that broker.

kafka-python is imported lazily: ``onestop --help`` must not pay for it.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from string import Template

from onestop.settings import Settings
from ops.admin import BrokerError, admin

# The pom and the broker template are package data: they work from a checkout and from an installed wheel.
DEPLOY_DIR = Path(__file__).resolve().parent / "kafka"
POM = DEPLOY_DIR / "pom.xml"
TEMPLATE = DEPLOY_DIR / "server.properties"
MAIN_CLASS = "kafka.Kafka"
STORAGE_TOOL = "kafka.tools.StorageTool"
# Heap of the development broker; KAFKA_HEAP_OPTS overrides it as in Kafka's own scripts.
HEAP_OPTS = "-Xms512m -Xmx512m"
JVM_OPTS = (
    "-server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 "
    "-XX:+ExplicitGCInvokesConcurrent -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true"
)
STOP_GRACE_SECONDS = 20.0
LOG_TAIL_LINES = 40

# Everything the broker logs goes to stdout, which start() sends to broker.log.
LOG4J2 = """\
status = warn
appender.out.type = Console
appender.out.name = STDOUT
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.out.ref = STDOUT
logger.request.name = kafka.request.logger
logger.request.level = WARN
logger.clients.name = org.apache.kafka.clients
logger.clients.level = WARN
"""


@dataclass(frozen=True)
class BrokerStatus:
    """What is known about the local broker of one ``Settings.home``."""

    running: bool
    pid: int | None
    port: int
    log_file: Path
    reused: bool = False
    detail: str = ""

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"


@dataclass(frozen=True)
class BrokerPaths:
    """Files of the local broker under ``Settings.home/kafka``: config, data, log and pid file."""

    root: Path

    @classmethod
    def of(cls, settings: Settings) -> BrokerPaths:
        return cls(settings.home.expanduser().resolve() / "kafka")

    data = property(lambda self: self.root / "data")
    config = property(lambda self: self.root / "server.properties")
    log4j = property(lambda self: self.root / "log4j2.properties")
    log = property(lambda self: self.root / "broker.log")
    pid = property(lambda self: self.root / "broker.pid")


def libs_dir(settings: Settings) -> Path:
    return settings.cache_dir.expanduser().resolve() / f"kafka-{settings.kafka_version}" / "libs"


def _jars_complete(libs: Path, version: str) -> bool:
    return (libs.parent / ".complete").is_file() and (libs / f"kafka_2.13-{version}.jar").is_file()


def ensure_jars(settings: Settings) -> Path:
    """Copy the broker's classpath from Maven Central into the cache, once per version."""
    libs = libs_dir(settings)
    version = settings.kafka_version
    if _jars_complete(libs, version):
        return libs
    libs.parent.mkdir(parents=True, exist_ok=True)
    with open(libs.parent / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another process may be downloading the same version
        if not _jars_complete(libs, version):
            _download_jars(libs, version)
    return libs


def _download_jars(libs: Path, version: str) -> None:
    mvn = shutil.which("mvn")
    if mvn is None:
        raise BrokerError("Maven (mvn) is not on PATH; it fetches the Kafka jars (apt-get install maven).")
    partial = libs.with_name("libs.partial")
    shutil.rmtree(partial, ignore_errors=True)
    cmd = [mvn, "-q", "-B", "-f", str(POM), f"-Dkafka.version={version}",
           "dependency:copy-dependencies", f"-DoutputDirectory={partial}"]
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if result.returncode != 0 or not (partial / f"kafka_2.13-{version}.jar").is_file():
        tail = "\n".join((result.stdout + result.stderr).splitlines()[-LOG_TAIL_LINES:])
        raise BrokerError(f"could not fetch Kafka {version} from Maven Central:\n$ {shlex.join(cmd)}\n{tail}")
    shutil.rmtree(libs, ignore_errors=True)
    partial.rename(libs)
    (libs.parent / ".complete").write_text("\n".join(sorted(p.name for p in libs.glob("*.jar"))) + "\n")


def _java() -> str:
    java_home = os.environ.get("JAVA_HOME")
    java = str(Path(java_home) / "bin" / "java") if java_home else shutil.which("java")
    if not java or not Path(java).exists():
        raise BrokerError("java is not on PATH (Kafka 4 needs Java 17+); set JAVA_HOME or install a JDK.")
    return java


def _read_pid(paths: BrokerPaths) -> int | None:
    text = paths.pid.read_text().strip() if paths.pid.is_file() else ""
    return int(text) if text.isdigit() else None


def _is_our_broker(pid: int | None, paths: BrokerPaths) -> bool:
    """True if ``pid`` is alive and is the broker of this home (guards against pid reuse)."""
    try:
        args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0") if pid else []
    except OSError:
        return False  # gone; a zombie has an empty cmdline too
    return MAIN_CLASS.encode() in args and str(paths.config).encode() in args


def _log_tail(paths: BrokerPaths, lines: int = LOG_TAIL_LINES) -> str:
    text = paths.log.read_text(errors="replace") if paths.log.is_file() else "(no broker log)"
    return "\n".join(text.splitlines()[-lines:])


def _configured_port(paths: BrokerPaths) -> int | None:
    """Client port in the rendered config, i.e. the port of the broker started from this home."""
    text = paths.config.read_text() if paths.config.is_file() else ""
    match = re.search(r"^listeners=.*PLAINTEXT://127\.0\.0\.1:(\d+)", text, re.MULTILINE)
    return int(match.group(1)) if match else None


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock, contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
        return True
    return False


def _render_config(settings: Settings, paths: BrokerPaths) -> None:
    paths.data.mkdir(parents=True, exist_ok=True)
    text = Template(TEMPLATE.read_text()).substitute(
        kafka_port=settings.kafka_port,
        controller_port=settings.kafka_controller_port,
        log_dirs=paths.data,
    )
    paths.config.write_text(text)
    paths.log4j.write_text(LOG4J2)


def _cluster_id() -> str:
    """A random Kafka Uuid in its base64url form, as ``kafka-storage random-uuid`` prints it."""
    while True:
        value = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not value.startswith("-"):  # Kafka avoids ids that look like a command-line flag
            return value


def _format_storage(libs: Path, paths: BrokerPaths) -> None:
    if (paths.data / "meta.properties").is_file():
        return
    cmd = [_java(), f"-Dlog4j2.configurationFile={paths.log4j}", "-cp", f"{libs}/*", STORAGE_TOOL,
           "format", "--standalone", "--cluster-id", _cluster_id(), "--config", str(paths.config)]
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise BrokerError(f"formatting KRaft storage failed:\n$ {shlex.join(cmd)}\n{result.stdout}{result.stderr}")


def _launch(libs: Path, paths: BrokerPaths) -> subprocess.Popen[bytes]:
    heap = os.environ.get("KAFKA_HEAP_OPTS", HEAP_OPTS)
    cmd = [_java(), *shlex.split(heap), *shlex.split(JVM_OPTS),
           f"-Dlog4j2.configurationFile={paths.log4j}", f"-Dkafka.logs.dir={paths.root}",
           "-cp", f"{libs}/*", MAIN_CLASS, str(paths.config)]
    if paths.log.exists():
        paths.log.replace(paths.log.with_suffix(".log.1"))  # keep the previous run's log
    with open(paths.log, "wb") as log:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                cwd=paths.root, start_new_session=True)
    paths.pid.write_text(f"{proc.pid}\n")
    return proc


def _answers_metadata(port: int, timeout_s: float = 3.0) -> bool:
    """True if a broker on 127.0.0.1:``port`` answers a metadata request with a live node."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()  # cheap, and quiet, while booting
        with admin(port, timeout_s) as client:
            return bool(client.describe_cluster().get("brokers"))
    except Exception:  # kafka-python raises a zoo of errors while a broker boots
        return False


def status(settings: Settings) -> BrokerStatus:
    """State of the broker recorded in this home's pid file (on the port it was started with)."""
    paths = BrokerPaths.of(settings)
    pid = _read_pid(paths)
    if not _is_our_broker(pid, paths):
        detail = "stale pid file" if pid is not None else "not started"
        return BrokerStatus(False, None, settings.kafka_port, paths.log, detail=detail)
    port = _configured_port(paths) or settings.kafka_port
    if not _answers_metadata(port):
        detail = f"process {pid} is alive but does not answer on 127.0.0.1:{port}"
        return BrokerStatus(False, pid, port, paths.log, detail=detail)
    return BrokerStatus(True, pid, port, paths.log, detail="running")


def start(settings: Settings, timeout: float = 90.0) -> BrokerStatus:
    """Start the broker, or reuse the one already running from this home; return once it is ready."""
    paths = BrokerPaths.of(settings)
    current = status(settings)
    if current.pid is not None:
        return _reuse(settings, current, paths, timeout)
    paths.pid.unlink(missing_ok=True)
    for port in (settings.kafka_port, settings.kafka_controller_port):
        if not _port_free(port):
            raise BrokerError(f"127.0.0.1:{port} is already in use by another process; "
                              "choose other ports (ONESTOP_KAFKA_PORT, ONESTOP_KAFKA_CONTROLLER_PORT).")
    libs = ensure_jars(settings)
    _render_config(settings, paths)
    _format_storage(libs, paths)
    proc = _launch(libs, paths)
    _wait_ready(proc, paths, settings.kafka_port, timeout)
    return BrokerStatus(True, proc.pid, settings.kafka_port, paths.log, detail="running")


def _reuse(settings: Settings, current: BrokerStatus, paths: BrokerPaths, timeout: float) -> BrokerStatus:
    if current.port != settings.kafka_port:
        raise BrokerError(f"the broker of {paths.root} (pid {current.pid}) already runs on {current.bootstrap}; "
                          f"stop it first to use port {settings.kafka_port}.")
    deadline = time.monotonic() + timeout  # it may still be booting (a concurrent start)
    while not current.running and not _answers_metadata(current.port):
        if time.monotonic() > deadline or not _is_our_broker(current.pid, paths):
            raise BrokerError(f"{current.detail}; run `onestop kafka stop` first.\n{_log_tail(paths)}")
        time.sleep(0.25)
    return BrokerStatus(True, current.pid, current.port, paths.log, reused=True, detail="running")


def _wait_ready(proc: subprocess.Popen[bytes], paths: BrokerPaths, port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            paths.pid.unlink(missing_ok=True)
            raise BrokerError(f"Kafka exited with code {proc.returncode} during start-up "
                              f"(log: {paths.log}):\n{_log_tail(paths)}")
        if _answers_metadata(port):
            return
        time.sleep(0.25)
    _terminate(proc.pid, paths, grace=STOP_GRACE_SECONDS)
    paths.pid.unlink(missing_ok=True)
    raise BrokerError(f"Kafka did not answer on 127.0.0.1:{port} within {timeout:g}s and was stopped "
                      f"(log: {paths.log}):\n{_log_tail(paths)}")


def stop(settings: Settings, grace: float = STOP_GRACE_SECONDS) -> bool:
    """Stop the broker this home started (SIGTERM, then SIGKILL after ``grace``). True if one was stopped."""
    paths = BrokerPaths.of(settings)
    pid = _read_pid(paths)
    ours = pid is not None and _is_our_broker(pid, paths)
    if pid is not None and ours:
        _terminate(pid, paths, grace)
    paths.pid.unlink(missing_ok=True)
    return ours


def _terminate(pid: int, paths: BrokerPaths, grace: float) -> None:
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 10.0)):
        if _gone(pid, paths):
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if _gone(pid, paths):
                return
            time.sleep(0.1)
    raise BrokerError(f"broker process {pid} survived SIGKILL")


def _gone(pid: int, paths: BrokerPaths) -> bool:
    """True once the broker (checked to be ours by the caller) has exited; reaps it if it is our child."""
    if _is_our_broker(pid, paths):
        return False
    # Its cmdline is gone: it is exiting. If we are its parent (a test session), wait for the exit
    # to finish so that no zombie is left; otherwise init reaps it.
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)
    return True


__all__ = ["BrokerError", "BrokerPaths", "BrokerStatus", "ensure_jars", "libs_dir", "start", "status", "stop"]
