"""The kernel matrix: each Debian kernel of kernels.txt booted under qemu
(vm.py), the observer's checks run inside it (guest_checks.py), every field
judged exact (within its tolerance of the truth), unknown (the report says so,
with the collector's reason) or wrong. Fails on a wrong number, and when the
BPF observer did not load. Prints the kernel's column of the matrix and keeps
it in build/kernels/matrix-<name>.json; `python3 test_kernels.py` prints the
whole matrix from those files (docs/observer.md's table comes from it).

TRACER_KERNELS=5.10,6.1 limits the run to those kernels (one ctest entry each)."""

import json
import os
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import vm  # noqa: E402

sys.path.insert(0, str(HERE.parent / "support"))
import thread_quota  # noqa: E402

CHOSEN = [name for name in os.environ.get("TRACER_KERNELS", "").split(",") if name]
KERNELS = [k for k in vm.kernels() if not CHOSEN or k.name in CHOSEN]


def verdict(check: dict) -> str:
    if check["measured"] is None:
        return "unknown"
    bound = max(check["tolerance"] * check["truth"], check["floor"])
    low = check.get("truth_low")
    low = check["truth"] if low is None else low
    return "exact" if low - bound <= check["measured"] <= check["truth"] + bound else "wrong"


def truth_of(check: dict) -> str:
    low = check.get("truth_low")
    return f"{check['truth']}" if low is None else f"{low}..{check['truth']}"


def column(result: dict) -> str:
    lines = [f"== kernel {result['kernel']}: collector {result['collector']}"
             f"{' (' + result['collector_note'] + ')' if result['collector_note'] else ''} =="]
    lines += [f"   {line.split(' ', 2)[-1]}" for line in result["log"]]
    if result["fallback_note"]:
        lines.append(f"   fallback (forced --collector procfs): {result['fallback_note']}")
    for check in result["checks"]:
        lines.append(f"   {verdict(check):8} {check['check']:28} {check['field']:22} "
                     f"measured {check['measured']}, truth {truth_of(check)}")
    return "\n".join(lines)


@pytest.mark.parametrize("kernel", KERNELS, ids=[k.name for k in KERNELS])
def test_the_observer_is_exact_on_the_kernel(kernel, tmp_path):
    thread_quota.add_user()  # the guest's /etc is the host's, read-only
    guest = vm.VM(kernel, scratch_mib=512)
    # Debian's Python, as the system tests use: the guest's root is this host's.
    command = ["/usr/bin/python3", str(HERE / "guest_checks.py"), str(tmp_path / "matrix.json")]
    try:
        result = guest.run(command, results_dir=tmp_path, timeout=150)
    except vm.VMError as hung:
        # Seen on 5.10 only, in about 1 boot of 7: the guest stalls (an RCU
        # stall on both vCPUs) and never reports. Cause not yet known; said
        # loudly, then booted once more rather than failing the suite on it.
        print(f"GUEST DID NOT FINISH, booting it once more: {hung}")
        result = guest.run(command, results_dir=tmp_path, timeout=150)
    assert result.status == 0, f"the checks failed in the guest:\n{result.output[-4000:]}"
    matrix = json.loads((tmp_path / "matrix.json").read_text())
    matrix["boot_seconds"], matrix["total_seconds"] = result.boot_seconds, result.total_seconds
    (vm.KERNELS_DIR / f"matrix-{kernel.name}.json").write_text(json.dumps(matrix, indent=1))
    print(column(matrix))
    print(f"   boot {result.boot_seconds:.1f} s, total {result.total_seconds:.1f} s")
    assert matrix["collector"] == "bpf", column(matrix)
    wrong = [check for check in matrix["checks"] if verdict(check) == "wrong"]
    assert wrong == [], column(matrix)
    # Every kernel of the matrix lets fentry attach: a late registration loses nothing.
    assert any("task start marks)" in line for line in matrix["log"]), column(matrix)
    late = [c for c in matrix["checks"] if c["check"] == "late registration"]
    assert len(late) == 4 and all(verdict(c) == "exact" for c in late), column(matrix)
    # Every kernel of the matrix tells a sleep's cause.
    causes = [c for c in matrix["checks"] if "sleep_by_cause" in c["field"]]
    assert len(causes) == 14 and all(verdict(c) == "exact" for c in causes), column(matrix)
    # And the endpoints a task waited on.
    ends = [c for c in matrix["checks"] if c["field"].startswith("net.endpoints")]
    assert len(ends) == 5 and all(verdict(c) == "exact" for c in ends), column(matrix)
    # And a thread task's own memory.
    own = [c for c in matrix["checks"] if c["field"] == "memory.own_peak_rss_bytes"]
    assert len(own) == 2 and all(verdict(c) == "exact" for c in own), column(matrix)
    # And cgroup v2: the allocation read from it, the flow run advice that holds.
    v2 = [c for c in matrix["checks"] if c["check"].startswith("cgroup v2")]
    assert len(v2) == 7 and all(verdict(c) == "exact" for c in v2), column(matrix)
    # And a user's quota of tracked threads.
    quota = [c for c in matrix["checks"] if c["check"].startswith("thread quota")]
    assert len(quota) == 3 and all(verdict(c) == "exact" for c in quota), column(matrix)


# The README's Debian 12 kernel, locked down for confidentiality: a verifier
# that refuses one of the observer's programs, for real. Defined only for a
# run that boots 6.1 (ctest's kernel[6.1]), so the other kernels' runs have
# no empty parameter set to skip.
LOCKED_DOWN = [k for k in KERNELS if k.name == "6.1"]

if LOCKED_DOWN:
    @pytest.mark.parametrize("kernel", LOCKED_DOWN, ids=[k.name for k in LOCKED_DOWN])
    def test_a_locked_down_kernel_gets_the_fallback_and_says_why(kernel, tmp_path):
        guest = vm.VM(kernel, scratch_mib=512, append="lockdown=confidentiality")
        command = ["/usr/bin/python3", str(HERE / "guest_checks.py"), str(tmp_path / "matrix.json"),
                   "locked-down"]
        result = guest.run(command, results_dir=tmp_path, timeout=150)
        assert result.status == 0, f"the checks failed in the guest:\n{result.output[-4000:]}"
        matrix = json.loads((tmp_path / "matrix.json").read_text())
        print(column(matrix))
        assert matrix["collector"] == "procfs", column(matrix)
        assert "scheduling: loading BPF programs failed" in matrix["collector_note"]
        assert "(verifier: unknown func bpf_probe_read" in matrix["collector_note"]
        assert "exited children counted from taskstats" in matrix["collector_note"]
        assert [c for c in matrix["checks"] if verdict(c) != "exact"] == [], column(matrix)


def main():
    """The whole matrix, kernel by kernel, from the last runs' files."""
    found = [vm.KERNELS_DIR / f"matrix-{k.name}.json" for k in vm.kernels()]
    results = [json.loads(path.read_text()) for path in found if path.exists()]
    if not results:
        raise SystemExit("no matrix yet: run ctest -R kernel (or pytest tests/kernels)")
    checks = [(c["check"], c["field"]) for c in results[0]["checks"]]
    print("| check | field | " + " | ".join(r["kernel"] for r in results) + " |")
    print("|---|---|" + "---|" * len(results))
    for name, field in checks:
        cells = []
        for result in results:
            match = [c for c in result["checks"] if (c["check"], c["field"]) == (name, field)]
            cells.append(verdict(match[0]) if match else "not run")
        print(f"| {name} | `{field}` | " + " | ".join(cells) + " |")
    print("| collector | | " + " | ".join(r["collector"] for r in results) + " |")
    for result in results:
        print(f"\n{result['kernel']}:")
        for line in result["log"]:
            print(f"- {line.split(' ', 2)[-1]}")


if __name__ == "__main__":
    main()
