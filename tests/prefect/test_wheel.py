"""The wheel scripts/build-wheel.sh makes is self-contained: installed into a
fresh venv, and run with no TRACER_CLIENT_LIB, no PYTHONPATH and outside the
repository, the client loads the binding and libtracer_client.so inside the wheel and talks
to a real sidecar, and Prefect finds the plugin through its entry point."""

from __future__ import annotations

import json
import os
import subprocess
import zipfile
from pathlib import Path

from sidecar import REPO

# scripts/build-wheel.sh always writes to the repository's build/, whatever
# TRACER_BUILD_DIR says.
DIST = REPO / "build" / "dist"
LOCK = REPO / "tests" / "python" / "prefect-3.9.1-otel-1.45.2.txt"
# The library and the plugin's binding of it (prefect-plugin/native/).
LIBRARIES = ("prefect_tracer/_tracer_client.abi3.so", "prefect_tracer/libtracer_client.so")

# Runs in the fresh venv. /proc/self/maps tells which file was really loaded.
PROGRAM = """
import importlib.metadata, json, sysconfig
from prefect_tracer import _native
from prefect_tracer.client import SidecarClient

lib, reason = _native.load()
client = SidecarClient()
status = client.status()
client.close()
with open("/proc/self/maps") as maps:
    mapped = sorted({line.split()[-1] for line in maps
                     if line.rstrip().endswith(("/libtracer_client.so", "/_tracer_client.abi3.so"))})
print(json.dumps({
    "load_error": reason,
    "mapped": mapped,
    "platlib": sysconfig.get_path("platlib"),
    "status": status,
    "plugins": {e.name: e.value for e in importlib.metadata.entry_points(group="prefect.plugins")},
}))
"""


def built_wheel() -> Path:
    wheels = sorted(DIST.glob("prefect_tracer-*.whl"))
    assert len(wheels) == 1, f"want one wheel in {DIST} (scripts/build-wheel.sh), found {wheels}"
    return wheels[0]


def test_wheel_works_in_a_fresh_venv(sidecar, tmp_path):
    wheel = built_wheel()
    with zipfile.ZipFile(wheel) as archive:
        for library in LIBRARIES:
            assert library in archive.namelist(), f"{wheel} lacks {library}"

    venv = tmp_path / "venv"
    subprocess.run(["/usr/bin/python3", "-m", "venv", str(venv)], check=True, timeout=120)
    pip_env = {k: v for k, v in os.environ.items() if k not in ("TRACER_CLIENT_LIB", "PYTHONPATH")}
    pip = [str(venv / "bin" / "pip"), "install", "-q", "--disable-pip-version-check", "--no-deps"]
    subprocess.run([*pip, str(wheel)], check=True, env=pip_env, timeout=300)
    subprocess.run([*pip, "-r", str(LOCK)], check=True, env=pip_env, timeout=600)

    # A clean environment: only the socket of this test's sidecar.
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "TRACER_SOCKET": str(sidecar.socket)}
    assert not tmp_path.resolve().is_relative_to(REPO)
    run = subprocess.run([str(venv / "bin" / "python"), "-c", PROGRAM], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)

    assert result["load_error"] == ""
    installed = [Path(result["platlib"]).resolve() / library for library in LIBRARIES]
    assert result["mapped"] == [str(path) for path in installed]
    assert all(path.is_relative_to(venv.resolve()) for path in installed)
    assert result["status"] is not None, f"no status from the sidecar:\n{run.stderr}"
    assert result["status"]["connected_clients"] >= 1
    assert result["plugins"].get("tracer") == "prefect_tracer.plugin"
