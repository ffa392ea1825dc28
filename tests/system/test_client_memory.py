"""What clients choose cannot make the sidecar do or hold more than its
limits allow: a client that sends anything but calls is held to its rate."""

import socket
import struct
import threading

from sidecar import Sidecar, wait_until


def rpc_message(which: int, body_data: int, body_pointers: int, question_id: int) -> bytes:
    """A one-segment rpc.capnp Message whose union member `which` is a struct
    (body_data words, body_pointers pointers) with questionId as its first
    field, every other field zero: Bootstrap (8) or Finish (4)."""
    words = 3 + body_data + body_pointers
    root = struct.pack("<IHH", 0, 1, 1)  # Message: 1 data word, 1 pointer, right after
    union = struct.pack("<HHI", which, 0, 0)
    body = struct.pack("<IHH", 0, body_data, body_pointers)  # the member, right after
    fields = struct.pack("<II", question_id, 0) + b"\0" * 8 * (body_data - 1 + body_pointers)
    return struct.pack("<II", 0, words) + root + union + body + fields


def test_messages_other_than_calls_count_toward_the_rate(tmp_path):
    """Bootstrap and Finish messages, never a call: at 100 calls/s the client
    may send 400 messages a second, so 2,000 are read more slowly."""
    sidecar = Sidecar(tmp_path, "--max-calls-per-second", "100").start()
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.connect(str(sidecar.socket))
            returns = []
            drain = threading.Thread(target=lambda: returns.extend(iter(lambda: s.recv(65536),
                                                                         b"")))
            drain.start()
            for question in range(1000):
                s.sendall(rpc_message(8, 1, 1, question) + rpc_message(4, 1, 0, question))
            wait_until(lambda: "reading it more slowly" in sidecar.log(), timeout=10,
                       what="the client to be throttled")
            s.shutdown(socket.SHUT_RDWR)
            drain.join(timeout=10)
        assert "exceeds 100 calls/s or 400 messages/s" in sidecar.log()
        assert "dropped connection" not in sidecar.log()  # slowed, not refused
    finally:
        assert sidecar.stop() == 0
