"""The installed package carries every file the code reads at run time, as the Docker image installs it.

The wheel is built from the checkout and unpacked into a temporary directory; the
code imported from there (not from the checkout) must find its files beside itself.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RUNTIME_FILES = [
    "ops/kafka/pom.xml",
    "ops/kafka/server.properties",
    "producers/openapi/gateway.v1.json",
    "onestop/data/procedures.csv",
    "onestop/schema/dossier-event.v1.json",
    "onestop/schema/dossier-event.v1.1.json",
    "onestop/data/service-calendar.csv",
]


@pytest.fixture(scope="module")
def unpacked_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    uv = [shutil.which("uv")] if shutil.which("uv") else ["python3.11", "-m", "uv"]  # as the Makefile installs it
    subprocess.run([*uv, "build", "--wheel", "--out-dir", str(out), str(ROOT)], check=True, capture_output=True,
                   timeout=300)
    (wheel,) = out.glob("onestop_ioc-*.whl")
    site = out / "site"
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(site)
    return site


@pytest.mark.parametrize("path", RUNTIME_FILES)
def test_the_wheel_ships_the_file(unpacked_wheel: Path, path: str) -> None:
    assert (unpacked_wheel / path).is_file()


def test_the_broker_runner_finds_its_pom_inside_the_installed_package(unpacked_wheel: Path, tmp_path: Path) -> None:
    probe = "import ops.broker as b; print(b.POM); print(b.TEMPLATE.is_file() and b.POM.is_file())"
    result = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(unpacked_wheel)}, timeout=60)
    pom, found = result.stdout.split()
    assert Path(pom).is_relative_to(unpacked_wheel), pom
    assert found == "True"


def test_the_console_script_is_the_command_line_package(unpacked_wheel: Path) -> None:
    (entry_points,) = unpacked_wheel.glob("onestop_ioc-*.dist-info/entry_points.txt")
    assert "onestop = onestop_cli:main" in entry_points.read_text()
