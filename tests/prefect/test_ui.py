"""Tracer's artifacts as a Prefect user sees them: a real `prefect server
start`, a real flow run, a real tracer-sidecar posting its artifacts to that
server, and the server's own UI (V2, React: the default from Prefect 3.8)
opened in Debian's headless Chromium by tests/browser/prefect_ui.mjs
(playwright-core). The flow run's Artifacts tab lists both artifacts; the
markdown artifact's page shows the task table (one row per task), the
mermaid gantt as an SVG, and where the time went (a mermaid pie and a row per
task); the table artifact's page shows one row per task.
Screenshots go to <build>/screenshots/."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import urllib.parse
import uuid
from importlib.metadata import version
from pathlib import Path

import pytest

from prefect_artifacts import fetch_json
from prefect_tracer.client import SidecarClient
from sidecar import BUILD, REPO, WORKLOAD, Sidecar, wait_until

BROWSER_DIR = REPO / "tests" / "browser"
DRIVER = BROWSER_DIR / "prefect_ui.mjs"
CHROMIUM = Path("/usr/bin/chromium")
SYSTEM_PATH = "/usr/local/bin:/usr/bin:/bin"
NODE = shutil.which("node", path=f"{os.environ.get('PATH', '')}{os.pathsep}{SYSTEM_PATH}")
SCREENSHOTS = BUILD / "screenshots"
FLOW_NAME = "ui-etl"
TASKS = ["extract", "transform | clean", "load"]  # a pipe must not split its table row

# A real flow run, run to completion by Prefect itself (no plugin), in a child
# so this process's Prefect settings stay untouched; prints its id.
RUN_FLOW = f"""
from prefect import flow
from prefect.runtime import flow_run

@flow(name={FLOW_NAME!r})
def check():
    return flow_run.id

print(check())
"""

# Requests Prefect's UI makes that fail on its own, whatever the artifacts:
# - V2 asks for its state icons and state favicons at the server root
#   (/completed.svg, /favicon-32x32.png); they are served under /v2 only.
# - An artifact's page looks up its task run even when the artifact has none
#   (ours are the flow run's): task_runs/filter with id any_ [""] is a 422.
KNOWN_HTTP_ERRORS = [
    lambda e: e["status"] == 404 and e["method"] == "GET"
    and re.fullmatch(r"/[a-z0-9-]+\.(svg|png|ico)", urllib.parse.urlsplit(e["url"]).path),
    lambda e: e["status"] == 422 and e["url"].endswith("/api/task_runs/filter")
    and '"any_":[""]' in (e["body"] or ""),
]


# Uncaught errors of Prefect's own: the flow run page's run graph (pixi.js on a
# canvas) now and then reads a display object it has just torn down.
def in_prefects_run_graph(error) -> bool:
    frames = [line for line in error["text"].splitlines() if line.strip().startswith("at ")]
    return bool(frames) and all(re.search(r"/assets/(flow-run-graph|vendor-pixi)-[\w-]+\.js:", f)
                                for f in frames)


KNOWN_PAGE_ERRORS = [in_prefects_run_graph]


def artifacts_of(server, flow_run_id: str):
    """Both artifacts once Prefect has them, else None."""
    found = fetch_json(f"{server.api_url}/artifacts/filter",
                       {"artifacts": {"flow_run_id": {"any_": [flow_run_id]}}})
    return found if {a["type"] for a in found} == {"markdown", "table"} else None


@pytest.fixture(scope="session")
def playwright_installed():
    if not CHROMIUM.exists() or NODE is None:
        pytest.skip("needs Debian's chromium and node (scripts/install-deps.sh)")
    if not (BROWSER_DIR / "node_modules" / "playwright-core").is_dir():
        pytest.skip("needs tests/browser's npm packages: (cd tests/browser && npm ci)")


def test_the_real_prefect_ui_renders_the_artifacts(playwright_installed, prefect_server, tmp_path):
    if tuple(int(n) for n in version("prefect").split(".")[:2]) < (3, 8):
        pytest.skip("UI V2 is Prefect's default UI from 3.8.0; 3.7's preview of it is not "
                    "tested (its flow-run page did not render the Artifacts tab for the driver)")
    settings = fetch_json(f"{prefect_server.ui_url}/ui-settings")
    assert "v2" in settings["available_uis"] and settings["default_ui"] == "v2", settings
    ui_base = prefect_server.ui_url + settings["v2_base_url"].rstrip("/")

    ran = subprocess.run([sys.executable, "-c", RUN_FLOW], env=prefect_server.env(),
                         capture_output=True, text=True, timeout=120)
    assert ran.returncode == 0, ran.stderr[-3000:]
    flow_run_id = str(uuid.UUID(ran.stdout.strip().splitlines()[-1]))

    sidecar = Sidecar(tmp_path / "sidecar", env=prefect_server.env()).start()
    try:
        client = SidecarClient(str(sidecar.socket), start_wait_ms=2000, finish_wait_ms=2000,
                               connect_wait_ms=2000)
        assert client.available, "libtracer_client.so did not load"
        with client.flow_run(flow_run_id=flow_run_id, flow_name=FLOW_NAME, cpu_cores=2,
                             memory_bytes=1 << 30) as flow:
            for name in TASKS:
                with flow.task(task_run_id=str(uuid.uuid4()), task_name=name) as task:
                    subprocess.run([str(WORKLOAD), "live", "40"], check=True)
                assert task.error is None, task.error
        client.close()

        try:
            artifacts = wait_until(lambda: artifacts_of(prefect_server, flow_run_id), timeout=30,
                                   interval=0.2, what="both artifacts in Prefect")
        except AssertionError as error:
            raise AssertionError(f"{error}\n{sidecar.log()[-3000:]}") from None
    finally:
        stopped = sidecar.stop()
    assert stopped == 0, f"sidecar did not stop cleanly:\n{sidecar.log()[-3000:]}"
    by_type = {a["type"]: a for a in artifacts}
    assert len(artifacts) == 2 and all(a["flow_run_id"] == flow_run_id for a in artifacts)

    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({
        "uiBase": ui_base, "flowRunId": flow_run_id, "outDir": str(SCREENSHOTS),
        "markdown": {k: by_type["markdown"][k] for k in ("id", "key")},
        "table": {k: by_type["table"][k] for k in ("id", "key")},
    }))
    # The browser gets a plain environment of its own: system PATH, a private HOME.
    home = tmp_path / "browser-home"
    home.mkdir()
    browser_env = {"PATH": SYSTEM_PATH, "HOME": str(home), "LANG": "C.UTF-8"}
    driven = subprocess.run([NODE, str(DRIVER), str(spec)], cwd=BROWSER_DIR, env=browser_env,
                            capture_output=True, text=True, timeout=120)
    lines = driven.stdout.strip().splitlines()
    assert lines, f"no output from {DRIVER.name}: {driven.stderr[-3000:]}"
    seen = json.loads(lines[-1])
    (SCREENSHOTS / "prefect-ui.json").write_text(json.dumps(seen, indent=1))  # what the browser saw
    report = json.dumps(seen, indent=1)[:6000]
    assert driven.returncode == 0 and seen["error"] is None, \
        f"{seen['error']}\n{driven.stderr[-2000:]}\n{report}"

    # The flow run's Artifacts tab: one card for each, linking to its page.
    assert seen["flowRun"]["activeTab"] == "Artifacts", report
    cards = {(c["type"], c["key"], c["href"]) for c in seen["flowRun"]["cards"]}
    assert cards == {(a["type"].upper(), a["key"], f"{settings['v2_base_url'].rstrip('/')}"
                      f"/artifacts/artifact/{a['id']}") for a in artifacts}, report

    # The markdown artifact's page: the task table, one row per task, and the
    # mermaid gantt drawn as an SVG with a bar per task.
    markdown = seen["markdown"]
    assert markdown["headings"][0].startswith(f"Tracer: {FLOW_NAME} (completed"), report
    assert {"Tasks", "Timeline", "Where the time went", "Cost"} <= set(markdown["headings"][1:]), \
        report
    # What the run cost, in the page as text: at the built-in prices, whose source it names.
    assert markdown["cost"][0].startswith("This run had "), report
    assert any(p.startswith("Prices: 0.04048 USD per core-hour and 0.004445 USD per GiB-hour "
                            "(AWS Fargate") for p in markdown["cost"]), report
    assert markdown["tables"] == 2 and markdown["columns"][:2] == ["task", "state"], report
    assert markdown["taskCells"] == TASKS, report
    assert all(cells[1] == "completed" for cells in markdown["rows"]), report
    chart = markdown["mermaid"]
    assert chart["errors"] == [] and chart["kinds"] == ["gantt", "pie"], report
    assert chart["bars"] == len(TASKS) and chart["labels"] == TASKS, report
    assert chart["width"] > 100 and chart["height"] > 20, report
    # Readable where it is shown: the table fits its column, labels are not specks.
    assert markdown["tableOverflowPx"] == 0, report
    assert chart["labelHeightPx"] >= 12, report
    assert not markdown["leftoverMermaidSource"], report

    # Where the time went: a pie of the run's thread time by part, drawn, and
    # a row per task splitting its time the same way.
    split = markdown["timeSplit"]
    assert split["columns"] == ["task", "on-CPU", "waiting for a CPU", "disk", "network", "lock",
                                "child", "timer", "pipe", "other"], report
    assert split["taskCells"] == TASKS, report
    assert split["pie"]["slices"] >= 1 and split["pie"]["width"] > 100, report
    assert any(label.startswith("on-CPU") for label in split["pie"]["legend"]), report

    # The table artifact's page: Prefect's data table, one row per task.
    table = seen["table"]
    assert table["taskCells"] == TASKS, report
    assert {"task", "task_run_id", "state", "cpu_s", "peak_rss_bytes"} <= set(table["columns"]), \
        report

    # Nothing went wrong in the page beyond what Prefect's UI does by itself.
    def unexplained(errors, known):
        return [e for e in errors if not any(rule(e) for rule in known)]
    page_errors = unexplained(seen["pageErrors"], KNOWN_PAGE_ERRORS)
    assert page_errors == [], "\n".join(e["text"] for e in page_errors)
    http_errors = unexplained(seen["httpErrors"], KNOWN_HTTP_ERRORS)
    assert http_errors == [], json.dumps(http_errors, indent=1)
    # Failed loads are in httpErrors (or were refused: not the Prefect server).
    console = [e for e in seen["consoleErrors"] if not e["text"].startswith("Failed to load resource")]
    assert console == [], json.dumps(console, indent=1)

    for name in ("flow-run-artifacts", "markdown-artifact", "mermaid-chart", "time-split-chart",
                 "table-artifact"):
        picture = (SCREENSHOTS / f"prefect-ui-{name}.png").read_bytes()
        assert picture.startswith(b"\x89PNG") and len(picture) > 1_000, name
