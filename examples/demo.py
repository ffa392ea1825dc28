"""A demo flow run without Prefect: five tasks that stress different things,
announced to tracer-sidecar through prefect_tracer.client.SidecarClient exactly
as the Prefect plugin announces real task runs. Prints what Tracer saw."""

import http.server
import os
import subprocess
import tempfile
import threading
import time
import urllib.request
import uuid

from prefect_tracer.client import SidecarClient


def cpu_bound():
    deadline = time.process_time() + 1.0
    while time.process_time() < deadline:
        pass


def subprocess_churn():
    for _ in range(200):
        subprocess.run(["/bin/true"], check=True)


def io_bound():
    with tempfile.NamedTemporaryFile(dir="/var/tmp") as f:
        block = os.urandom(1 << 20)
        for _ in range(64):
            f.write(block)
        f.flush()
        os.fsync(f.fileno())


class SlowHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        time.sleep(0.5)
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


def waiting_on_a_slow_service(url):
    for _ in range(2):
        urllib.request.urlopen(url).read()


def memory_hungry():
    ballast = bytearray(256 << 20)
    for i in range(0, len(ballast), 4096):
        ballast[i] = 1
    return len(ballast)


def main():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), SlowHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/"

    tasks = [
        ("cpu-bound", cpu_bound),
        ("subprocess-churn", subprocess_churn),
        ("io-bound", io_bound),
        ("slow-service", lambda: waiting_on_a_slow_service(url)),
        ("memory-hungry", memory_hungry),
    ]
    client = SidecarClient(start_wait_ms=1000, finish_wait_ms=1000, connect_wait_ms=1000)
    flow_run_id = str(uuid.uuid4())
    print(f"flow run {flow_run_id} (flow 'tracer-demo', {len(tasks)} tasks)")
    print(f"{'task':<17} {'wall':>7} {'cpu':>7} {'cores':>5} {'blocked':>8} {'sleep':>7} "
          f"{'peak rss':>9} {'written':>8} {'net tx':>8} {'procs':>5}")
    findings = []
    with client.flow_run(flow_run_id=flow_run_id, flow_name="tracer-demo",
                         work_pool="demo-pool", cpu_cores=2.0, memory_bytes=4 << 30) as flow:
        for name, work in tasks:
            with flow.task(task_run_id=str(uuid.uuid4()), task_name=name, tags=["demo"]) as task:
                work()
            r = task.report
            if r is None:
                print(f"{name:<17} not observed: {task.error}")
                continue
            cpu = (r["cpu"]["user_ns"] + r["cpu"]["system_ns"]) / 1e9
            print(f"{name:<17} {r['wall_ns'] / 1e9:>6.2f}s {cpu:>6.2f}s "
                  f"{r['cpu']['avg_cores']:>5.2f} {r['sched']['blocked_io_ns'] / 1e9:>7.2f}s "
                  f"{r['sched']['sleep_ns'] / 1e9:>6.2f}s {r['memory']['peak_rss_bytes'] >> 20:>6} MiB "
                  f"{r['io']['write_bytes'] >> 20:>4} MiB {r['net']['tx_bytes']:>6} B "
                  f"{r['proc']['spawned']:>5}")
            findings.append((name, r))
    print("\nallocation (declared): 2 cores, 4 GiB. What the policy says:")
    for name, r in findings:
        kinds = ", ".join(f"{f['kind']} ({f['severity']})" for f in r["findings"]) or "nothing"
        rec = r["recommendation"]
        advice = (f"recommend {rec['cpu_cores']:.2f} cores, {rec['memory_bytes'] >> 20} MiB"
                  if rec["ready"] else f"recommendation after {rec['min_runs']} runs "
                  f"(have {rec['runs']})")
        print(f"  {name:<17} policy {r['policy']}: {kinds}; {advice}")
    print("\nfull reports: tracerctl reports; recommendations: tracerctl recommendations (as root)")
    server.shutdown()


if __name__ == "__main__":
    main()
