"""Four tasks at once on Prefect's default task runner (threads of the flow
run's process), each holding MIB MiB resident at the same time for 2.5 s:
`python footprint.py MIB`. Prints the process's resident memory before the
tasks start ("baseline BYTES") first, the flow's final state name last."""

import sys
import threading
import time
from pathlib import Path

from prefect import flow, task

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "support"))
from held_together import resident_bytes  # noqa: E402

MIB = int(sys.argv[1])
TASKS = 4
together = threading.Barrier(TASKS)


@task
def hold(index: int) -> int:
    size = MIB << 20
    memory = bytearray(size)
    memory[::4096] = b"\x01" * (size // 4096)  # every page resident, not just reserved
    together.wait(timeout=60)
    time.sleep(2.5)  # more than two of the sidecar's 1 s samplings, all four held
    return len(memory)


@flow
def footprint() -> None:
    print(f"baseline {resident_bytes()}", flush=True)
    futures = [hold.submit(i) for i in range(TASKS)]
    for future in futures:
        future.result()


if __name__ == "__main__":
    print(footprint(return_state=True).name)
