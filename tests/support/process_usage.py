"""What a process has used so far, from /proc, for the benchmarks."""

import os
from pathlib import Path


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of the process, all its threads (/proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


def context_switches(pid: int) -> tuple[int, int]:
    """(voluntary, involuntary) context switches of all the process's threads
    alive now: a voluntary one is a sleep that a wake-up ends."""
    voluntary = involuntary = 0
    for status in Path(f"/proc/{pid}/task").glob("*/status"):
        for line in status.read_text().splitlines():
            if line.startswith("voluntary_ctxt_switches:"):
                voluntary += int(line.split()[1])
            elif line.startswith("nonvoluntary_ctxt_switches:"):
                involuntary += int(line.split()[1])
    return voluntary, involuntary
