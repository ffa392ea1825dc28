#!/usr/bin/env python3
"""Writes the seed corpus of rpc_server_fuzzer (tests/fuzz/rpc_corpus/).

    python3 tests/fuzz/rpc_corpus_seeds.py [--out DIR]

Re-run it after a change to capnp/tracer.capnp: the seeds are inputs in the
fuzzer's byte grammar (tests/fuzz/rpc_server_fuzzer.cpp), which fills every
field of a call's params in schema order, so a field added to FlowRunInfo or
TaskRunInfo shifts every byte after it. The contract is read through
`capnp compile -ocapnp` (field order, types, layouts, interface ids): new
fields get zeros and the seeds keep their meaning. A change to the grammar
itself (the fuzzer's readers, its interface table) has to be made here too.

Each seed is one client connection:
  rpc_task_lifecycle  openFlowRun, startTask on the fuzzer's pid (key 1),
                      finishTask (completed, report wanted), finish, status,
                      then Finish for every question.
  rpc_task_crashed    openFlowRun, startTask, status; the connection ends with
                      the task and its flow run live: both end as crashed.
  rpc_start_refused   a startTask naming a thread that does not exist
                      (tid 0x7ffffff0), then finish(failed).
  rpc_admin           a task, Sidecar.admin and the Admin methods around its
                      finishTask and the flow run's finish.
  rpc_costs_in_flight Admin.costs, and the connection ends: the call's promise
                      outlived the CostRollup once (ASan caught its flag
                      written after the fuzzer's server was gone).
  raw_task_lifecycle, framed_task_lifecycle
                      rpc_task_lifecycle's messages as the client puts them on
                      the wire (mode 0: the framed bytes; mode 1: the framed
                      grammar's segments): the bytes the fuzzer sends for it,
                      but with tid 1, as a raw input cannot name the fuzzer's
                      process. The fuzzer runs as root, so any live thread may
                      be registered; where /proc/1/io is not readable (some
                      sandboxes), the /proc collector refuses the start, and
                      finishTask is refused with it.
"""

import argparse
import re
import struct
import subprocess
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CONTRACT = REPO / "capnp" / "tracer.capnp"
# The fuzzer's interface pick (u8 % 4): these three, then "any interface id".
INTERFACES = ["Sidecar", "FlowRunScope", "Admin"]
PID = object()  # Int32 kind 1: the fuzzer's own pid

# ---- the contract, from `capnp compile -ocapnp` ----------------------------

SCALARS = {"Int8": "b", "Int16": "h", "Int32": "i", "Int64": "q", "UInt8": "B",
           "UInt16": "H", "UInt32": "I", "UInt64": "Q", "Float32": "f", "Float64": "d"}


class Struct:
    def __init__(self, name, data_words, pointers):
        self.name, self.data_words, self.pointers = name, data_words, pointers
        # (ordinal, name, type, ("ptr", index) or ("bits", offset)): fillStruct's order is the
        # ordinals' (StructSchema::getNonUnionFields), -ocapnp prints them in code order.
        self.fields = []
        self.unsupported = []  # what the encoders here do not handle: refused if the struct is used


class Schema:
    """Structs (with the params struct of each method), enums and interfaces."""

    def __init__(self, contract=CONTRACT):
        source = Path(contract).read_text()
        self.interfaces = {}  # name -> (id, [(method, [(param, type)])])
        for name, iid, body in re.findall(r"^interface (\w+) @0x([0-9a-f]+) \{(.*?)^\}",
                                           self._compile(contract), re.M | re.S):
            methods = re.findall(r"^\s*(\w+) @\d+ \((.*?)\) ->", body, re.M)
            self.interfaces[name] = (int(iid, 16), [
                (m, [tuple(p.split(" :")) for p in params.split(", ") if p])
                for m, params in methods])
        # Params structs are laid out as a struct of the same fields would be.
        extra = "".join(f"\nstruct {self.params_name(i, m)} {{" + "".join(
            f" {p} @{n} :{t};" for n, (p, t) in enumerate(params)) + " }"
            for i, (_, methods) in self.interfaces.items() for m, params in methods)
        with tempfile.TemporaryDirectory() as scratch:
            copy = Path(scratch) / "tracer.capnp"
            copy.write_text(source + extra + "\n")
            compiled = self._compile(copy)
        self.enums = set(re.findall(r"^\s*enum (\w+) @", compiled, re.M))
        self.structs = {}
        current, depth = None, 0
        for line in compiled.splitlines():
            header = re.match(r"^\s*struct (\w+) @0x[0-9a-f]+ \{  # (\d+) bytes, (\d+) ptrs", line)
            if depth == 0:
                current = Struct(header[1], int(header[2]) // 8, int(header[3])) if header else None
                if header:
                    self.structs[current.name] = current
            elif current is not None and depth == 1:
                field = re.match(r"^\s*(\w+) @(\d+) :([^;]+);  # (?:ptr\[(\d+)\]|bits\[(\d+), )",
                                 line)
                if field:
                    name, ordinal, type_, ptr, bits = field.groups()
                    if "=" in type_:
                        current.unsupported.append(f"the default value of {name}")
                    where = ("ptr", int(ptr)) if ptr else ("bits", int(bits))
                    current.fields.append((int(ordinal), name, type_, where))
                    current.fields.sort()
                elif line.strip().startswith("union") or ":group" in line:
                    current.unsupported.append("a union or group")
            depth += line.count("{") - line.count("}")

    @staticmethod
    def _compile(path):
        return subprocess.run(["capnp", "compile", "-ocapnp", str(path)], check=True,
                              capture_output=True, text=True).stdout

    @staticmethod
    def params_name(interface, method):
        return f"FuzzParams{interface}{method[0].upper()}{method[1:]}"

    def method(self, interface, method):
        iid, methods = self.interfaces[interface]
        index = [m for m, _ in methods].index(method)
        return iid, index, self.structs[self.params_name(interface, method)]


# ---- the messages of a connection ------------------------------------------

class Call:
    def __init__(self, question, transform, interface, method, **params):
        self.question, self.transform = question, transform  # promised answer, getPointerField ops
        self.interface, self.method, self.params = interface, method, params


class Finish:
    def __init__(self, question, release=True):
        self.question, self.release = question, release


def fields_of(struct_, values):
    """The struct's fields in the fuzzer's order, each with its value (None: zero or empty)."""
    if struct_.unsupported:
        raise NotImplementedError(f"{struct_.name}: {', '.join(struct_.unsupported)}")
    unknown = set(values) - {name for _, name, _, _ in struct_.fields}
    assert not unknown, f"{struct_.name} has no {unknown}"
    for _, name, type_, where in struct_.fields:
        yield type_, where, values.get(name)


def list_element(type_):
    match = re.fullmatch(r"List\((.*)\)", type_)
    return match[1] if match else None


# ---- mode 2: the fuzzer's rpc grammar --------------------------------------

def grammar_value(schema, type_, value):
    if type_ == "Text":
        data = (value or "").encode()
        assert len(data) < 64, value
        return bytes([len(data)]) + data
    if type_ == "Bool":
        return bytes([1 if value else 0])
    if type_ == "Int32":  # kind 1: the fuzzer's pid; 2: one byte; 0: four bytes
        if value is PID:
            return b"\x01"
        if 0 <= (value or 0) < 256:
            return bytes([2, value or 0])
        return b"\x00" + struct.pack("<i", value)
    if type_ in SCALARS:
        return struct.pack("<" + SCALARS[type_], value or 0)
    if type_ in schema.enums:
        assert 0 <= (value or 0) < 8, value
        return bytes([value or 0])
    element = list_element(type_)
    if element:
        value = value or []
        assert len(value) < 5, value
        return bytes([len(value)]) + b"".join(grammar_value(schema, element, v) for v in value)
    if type_ in schema.structs:
        return grammar_struct(schema, schema.structs[type_], value or {})
    return b""  # interfaces, AnyPointer: left null


def grammar_struct(schema, struct_, values):
    return b"".join(grammar_value(schema, type_, value)
                    for type_, _, value in fields_of(struct_, values))


def rpc_input(schema, messages):
    """Question 0 is the fuzzer's Bootstrap; each Call asks the next question."""
    out = bytearray([2])
    asked = 1
    for message in messages:
        if isinstance(message, Call):
            assert message.question < asked + 1 and len(message.transform) < 3
            _, method, params = schema.method(message.interface, message.method)
            out += bytes([0, 0, message.question, len(message.transform), *message.transform,
                          INTERFACES.index(message.interface), method])
            out += grammar_struct(schema, params, message.params)
            asked += 1
        else:
            assert message.question < asked
            out += bytes([4, message.question, 1 if message.release else 0])
    return bytes(out)


# ---- modes 0 and 1: the same messages on the wire ---------------------------
# Laid out as Cap'n Proto's MallocMessageBuilder lays out what the fuzzer
# builds: every object right after the last, in the order it is initialized.

class Segment:
    def __init__(self):
        self.words = bytearray(8)  # the root pointer

    def allocate(self, words):
        at = len(self.words) // 8
        self.words += bytes(8 * words)
        return at

    def put(self, word, fmt, offset_bytes, *values):
        struct.pack_into("<" + fmt, self.words, 8 * word + offset_bytes, *values)

    def struct(self, pointer, data_words, pointers):
        if data_words == pointers == 0:
            self.put(pointer, "Q", 0, 0xfffffffc)  # an empty struct points at itself
            return None
        at = self.allocate(data_words + pointers)
        self.put(pointer, "iHH", 0, ((at - pointer - 1) << 2), data_words, pointers)
        return at

    def list(self, pointer, element_size, count, words, tag=None):
        at = self.allocate(words + (tag is not None))
        self.put(pointer, "iI", 0, ((at - pointer - 1) << 2) | 1,
                 element_size | ((words if tag is not None else count) << 3))
        if tag is not None:
            self.put(at, "iHH", 0, count << 2, *tag)
            return at + 1
        return at

    def text(self, pointer, value):
        data = (value or "").encode() + b"\0"
        at = self.list(pointer, 2, len(data), (len(data) + 7) // 8)
        self.words[8 * at:8 * at + len(data)] = data


def wire_value(schema, segment, base, data_words, type_, where, value):
    if where[0] == "bits":
        offset = where[1]
        if type_ == "Bool":
            if value:
                segment.words[8 * base + offset // 8] |= 1 << (offset % 8)
            return
        assert value is not PID, "only the rpc grammar can name the fuzzer's pid"
        fmt = "H" if type_ in schema.enums else SCALARS[type_]
        segment.put(base, fmt, offset // 8, value or 0)
        return
    pointer = base + data_words + where[1]
    element = list_element(type_)
    if type_ == "Text":
        segment.text(pointer, value)
    elif element == "Text":
        at = segment.list(pointer, 6, len(value or []), len(value or []))
        for i, text in enumerate(value or []):
            segment.text(at + i, text)
    elif type_ in schema.structs:
        wire_struct(schema, segment, pointer, schema.structs[type_], value or {})
    elif element or type_ in ("Data", "AnyPointer"):
        raise NotImplementedError(f"{type_} on the wire")
    # an interface: left null, as the fuzzer leaves it


def wire_struct(schema, segment, pointer, struct_, values):
    base = segment.struct(pointer, struct_.data_words, struct_.pointers)
    for type_, where, value in fields_of(struct_, values):
        wire_value(schema, segment, base, struct_.data_words, type_, where, value)


# rpc.capnp (Message 1 data word, 1 pointer; union tag at bits 0-16)
MESSAGE_BOOTSTRAP, MESSAGE_CALL, MESSAGE_FINISH = 8, 2, 4


def wire_messages(schema, messages):
    """Each message as its segments; the Bootstrap first, as the fuzzer sends it."""
    out = []
    for message in [None] + list(messages):
        segment = Segment()
        root = segment.struct(0, 1, 1)
        if message is None:
            segment.put(root, "H", 0, MESSAGE_BOOTSTRAP)
            segment.struct(root + 1, 1, 1)  # Bootstrap: questionId 0
        elif isinstance(message, Call):
            segment.put(root, "H", 0, MESSAGE_CALL)
            call = segment.struct(root + 1, 3, 3)
            segment.put(call, "I", 0, len(out))  # questionId
            target = segment.struct(call + 3, 1, 1)
            segment.put(target, "H", 4, 1)  # promisedAnswer
            answer = segment.struct(target + 1, 1, 1)
            segment.put(answer, "I", 0, message.question)
            count = len(message.transform)
            ops = segment.list(answer + 1, 7, count, count, (1, 0))  # List(Op): 1 data word each
            for i, field in enumerate(message.transform):
                segment.put(ops + i, "HH", 0, 1, field % 4)  # getPointerField
            interface_id, method, params = schema.method(message.interface, message.method)
            segment.put(call, "H", 4, method)
            segment.put(call, "Q", 8, interface_id)
            payload = segment.struct(call + 4, 0, 2)
            wire_struct(schema, segment, payload, params, message.params)
        else:
            segment.put(root, "H", 0, MESSAGE_FINISH)
            finish = segment.struct(root + 1, 1, 0)
            segment.put(finish, "I", 0, message.question)
            segment.put(finish, "I", 4, 0 if message.release else 1)  # default true
        out.append([bytes(segment.words)])
    return out


def raw_input(schema, messages):
    out = bytearray([0])
    for segments in wire_messages(schema, messages):
        header = struct.pack("<I", len(segments) - 1) + b"".join(
            struct.pack("<I", len(s) // 8) for s in segments)
        out += header + bytes(-len(header) % 8) + b"".join(segments)
    return bytes(out)


def framed_input(schema, messages):
    out = bytearray([1])
    for segments in wire_messages(schema, messages):
        assert 0 < len(segments) <= 4 and all(len(s) // 8 < 256 for s in segments)
        out += bytes([len(segments) - 1, *(len(s) // 8 for s in segments)]) + b"".join(segments)
    return bytes(out)


# ---- the seeds ---------------------------------------------------------------

COMPLETED, FAILED, CANCELLED = 0, 1, 2
CAP = [0]  # getPointerField(0): the capability in an answer (openFlowRun's scope, admin's Admin)


def flow_run(n, **fields):
    return dict(flowRunId=f"flow-run-{n}", flowName="etl",
                # openFlowRun refuses one that is not a UUID, as Prefect's are
                deploymentId="6f1c2b4e-8a3d-4e5f-9b7a-0c1d2e3f4a5b",
                deploymentName="etl/prod", workPool="pool", workerName="worker", pid=0,
                cpuCores=2.0, memoryBytes=1 << 30, workPoolType="process") | fields


def task_run(n, tid, **fields):
    return dict(taskRunId=f"task-run-{n}", taskName="extract", taskKey="extract-abc", tags=["a"],
                tid=tid, startTimeNs=1_700_000_000_000_000_000) | fields


def lifecycle(tid):
    return [
        Call(0, [], "Sidecar", "openFlowRun", run=flow_run(1)),                          # q1
        Call(1, CAP, "FlowRunScope", "startTask", task=task_run(1, tid), key=1),         # q2
        Call(1, CAP, "FlowRunScope", "finishTask", key=1, state=COMPLETED,
             reportWanted=True),                                                         # q3
        Call(1, CAP, "FlowRunScope", "finish", state=COMPLETED),                         # q4
        Call(0, [], "Sidecar", "status"),                                                # q5
    ] + [Finish(q) for q in range(1, 6)]


def seeds(schema):
    return {
        "rpc_task_lifecycle": rpc_input(schema, lifecycle(PID)),
        "rpc_task_crashed": rpc_input(schema, [
            Call(0, [], "Sidecar", "openFlowRun", run=flow_run(2, deploymentName="")),
            Call(1, CAP, "FlowRunScope", "startTask", task=task_run(2, PID, tags=["x", "y"]),
                 key=1),
            Call(0, [], "Sidecar", "status"),
        ]),
        "rpc_start_refused": rpc_input(schema, [
            Call(0, [], "Sidecar", "openFlowRun", run=flow_run(3)),
            Call(1, CAP, "FlowRunScope", "startTask", task=task_run(3, 0x7ffffff0), key=1),
            Call(1, CAP, "FlowRunScope", "finish", state=FAILED),
        ]),
        "rpc_admin": rpc_input(schema, [
            Call(0, [], "Sidecar", "openFlowRun", run=flow_run(4)),                      # q1
            Call(1, CAP, "FlowRunScope", "startTask", task=task_run(4, PID), key=1),     # q2
            Call(0, [], "Sidecar", "admin"),                                             # q3
            Call(3, CAP, "Admin", "liveTasks"),
            Call(1, CAP, "FlowRunScope", "finishTask", key=1, state=CANCELLED,
                 reportWanted=True),
            Call(3, CAP, "Admin", "recentReports", limit=10),
            Call(3, CAP, "Admin", "reloadPolicies"),
            Call(3, CAP, "Admin", "recommendations", flow="e.*"),
            Call(1, CAP, "FlowRunScope", "finish", state=COMPLETED),
            Call(3, CAP, "Admin", "artifacts", retryParked=True),
        ]),
        "rpc_costs_in_flight": rpc_input(schema, [
            Call(0, [], "Sidecar", "admin"),
            Call(1, CAP, "Admin", "costs", by="task"),
        ]),
        "raw_task_lifecycle": raw_input(schema, lifecycle(1)),
        "framed_task_lifecycle": framed_input(schema, lifecycle(1)),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "rpc_corpus")
    parser.add_argument("--contract", type=Path, default=CONTRACT)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for name, data in seeds(Schema(args.contract)).items():
        (args.out / name).write_bytes(data)
        print(f"{args.out / name}: {len(data)} bytes")


if __name__ == "__main__":
    main()
