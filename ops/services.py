"""The process supervisor of demos, replays and tests: ``onestop`` subcommands as child processes.

Each child gets the parent's environment plus every setting (``settings_env``), logs to
``<home>/logs/<name>.log``, and is stopped by the pid this supervisor recorded, never by name.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys

from onestop.settings import Settings, settings_env


class Services:
    """The worker and sink processes this demo started; it stops exactly those, by pid."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.procs: dict[str, subprocess.Popen] = {}
        self.logs = settings.home / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)

    def env(self) -> dict[str, str]:
        """The parent's environment plus every setting, so children see exactly this configuration."""
        env = dict(os.environ)
        env.update(settings_env(self.settings))
        return env

    def start(self, name: str, *args: str) -> None:
        log = open(self.logs / f"{name}.log", "ab")
        self.procs[name] = subprocess.Popen([sys.executable, "-m", "onestop_cli", *args], env=self.env(),
                                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def check_alive(self) -> None:
        for name, p in self.procs.items():
            if p.poll() is not None:
                raise RuntimeError(f"{name} exited with code {p.returncode}; see {self.logs / (name + '.log')}")

    def stop(self, name: str, grace: float = 30.0) -> None:
        p = self.procs.pop(name, None)
        if p is None or p.poll() is not None:
            return
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(grace)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()

    def stop_all(self) -> None:
        for name in list(self.procs):
            self.stop(name)
