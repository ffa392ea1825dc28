"""A local TCP server that answers late: a flow's tasks wait on it as on an
external system (tests/prefect/flows/contention.py, placement.py)."""

import socket
import threading
import time


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
