"""A local TCP server that answers late: a flow's tasks wait on it as on an
external system (tests/prefect/flows/contention.py, placement.py), and the
sleep-by-cause and endpoint checks measure that wait (sleep_waits.py,
endpoint_waits.py)."""

import socket
import subprocess
import sys
import threading
import time

# The servers in processes of their own, kept until this process exits: each
# stops when its standard input closes, so none outlives it.
_PROCESSES = []


def late_server(seconds: float) -> tuple:
    """Starts a server on a thread of this process that answers each
    connection's question after `seconds`; returns its (address, port)."""
    listener = socket.create_server(("127.0.0.1", 0))

    def answer(connection: socket.socket) -> None:
        with connection:
            connection.recv(64)
            time.sleep(seconds)
            connection.sendall(b"late answer\n")

    def serve() -> None:
        while True:
            connection, _ = listener.accept()
            threading.Thread(target=answer, args=(connection,), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    return listener.getsockname()


def late_server_process(seconds: float) -> tuple:
    """The same server in a process of its own: a task that waits on it shares
    no GIL with it, so its wait ends when the answer is sent (a server thread
    of the task's own process, woken under emulation, held the GIL for 67 ms
    after answering, and the task waited that long on a lock)."""
    process = subprocess.Popen([sys.executable, __file__, str(seconds)],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    _PROCESSES.append(process)
    port = process.stdout.readline()
    if not port:
        raise RuntimeError(f"the late server process exited before it listened: "
                           f"status {process.wait()}")
    return ("127.0.0.1", int(port))


if __name__ == "__main__":
    print(late_server(float(sys.argv[1]))[1], flush=True)
    sys.stdin.read()
