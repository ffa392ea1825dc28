"""Four tasks at once on Prefect's default task runner (threads of the flow
run's process): `python contention.py MODE`, MODE one of
  python   pure-Python CPU work: the threads take turns on the GIL
  hashlib  hashing large buffers, which hashlib does without the GIL
  sleep    time.sleep
Prints the flow's final state name last."""

import hashlib
import sys
import time

from prefect import flow, task

MODE = sys.argv[1]
SECONDS = 3.0


@task
def work(index: int) -> int:
    until = time.monotonic() + SECONDS
    done = 0
    if MODE == "python":
        while time.monotonic() < until:
            done += sum(i * i for i in range(10_000))
    elif MODE == "hashlib":
        buffer = bytes(64 << 20)
        while time.monotonic() < until:
            done += hashlib.sha256(buffer).digest()[0]
    else:
        time.sleep(SECONDS)
    return done


@flow
def contention() -> None:
    futures = [work.submit(i) for i in range(4)]
    for future in futures:
        future.result()


if __name__ == "__main__":
    print(contention(return_state=True).name)
