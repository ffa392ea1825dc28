"""The sidecar's folders, as docs/architecture.md draws them: data flows one
way, so no folder includes another that includes it back (directly or round
a longer loop), and observe/ sits near the bottom: it hands finished runs to
a RunSink and includes nothing above it."""

import re
from collections import defaultdict
from pathlib import Path

SIDECAR = Path(__file__).resolve().parents[2] / "sidecar"
INCLUDE = re.compile(r'^#include "([a-z_]+)/', re.MULTILINE)
HEADER = re.compile(r'^#include "([a-z_]+/[a-z_]+\.h)"', re.MULTILINE)
# What observe/ may use: logging and sockets, the /metrics text format.
BELOW_OBSERVE = {"ops", "metrics"}
# What the serving side (rpc/) may see of the stages it serves: their narrow
# interfaces and the handles they give out, never the classes behind them.
RPC_SEES = {
    "observe/run_intake.h", "observe/live_runs.h", "observe/collector.h",
    "runs/policy_admin.h", "report/artifact_admin.h", "report/cost_admin.h",
    "report/run_keys.h",
}
# Folders rpc/ uses whole: its own, logging and sockets, its counters.
RPC_USES = {"rpc", "ops", "metrics"}


def folder_graph() -> dict:
    graph = defaultdict(set)
    for source in SIDECAR.rglob("*"):
        if source.suffix not in {".h", ".cpp"}:
            continue
        relative = source.relative_to(SIDECAR)
        folder = relative.parts[0] if len(relative.parts) > 1 else "main.cpp"
        for included in INCLUDE.findall(source.read_text()):
            if included != folder and (SIDECAR / included).is_dir():
                graph[folder].add(included)
    return graph


def loops(graph: dict) -> list:
    """Every cycle, as the path that closes it (depth-first)."""
    found, state = [], {}

    def visit(node, path):
        state[node] = "open"
        for successor in sorted(graph.get(node, ())):
            if state.get(successor) == "open":
                found.append(path[path.index(successor):] + [successor])
            elif successor not in state:
                visit(successor, path + [successor])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    return found


def test_no_folder_includes_one_that_includes_it_back():
    graph = folder_graph()
    assert graph, f"no includes found under {SIDECAR}"
    assert loops(graph) == [], {folder: sorted(deps) for folder, deps in graph.items()}


def test_observe_includes_nothing_above_it():
    assert folder_graph()["observe"] <= BELOW_OBSERVE


def stage_headers(folder: str) -> set:
    """The headers of other stages that `folder`'s files include."""
    return {header for source in (SIDECAR / folder).iterdir()
            for header in HEADER.findall(source.read_text())
            if header.split("/")[0] not in RPC_USES}


def test_rpc_sees_the_stages_only_through_their_interfaces():
    headers = stage_headers("rpc")
    assert "observe/run_intake.h" in headers, headers  # the scan reads what it should
    assert headers <= RPC_SEES, sorted(headers - RPC_SEES)


def test_the_loop_finder_finds_a_loop():
    assert loops({"rpc": {"metrics"}, "metrics": {"observe"}, "observe": {"rpc"}}) == [
        ["metrics", "observe", "rpc", "metrics"]]
