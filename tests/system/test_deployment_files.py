"""The deployment examples (systemd, Kubernetes, the Prefect base job
template) parse, and agree on where the socket is."""

import json
import shutil
import subprocess

import pytest
import yaml

from sidecar import REPO

SOCKET = "/run/tracer/tracer.sock"
EXAMPLES = REPO / "examples"


def test_kubernetes_manifests_parse_and_mount_the_socket_where_the_sidecar_serves_it():
    documents = {p.name: yaml.safe_load(p.read_text()) for p in (EXAMPLES / "kubernetes").glob("*.yaml")}
    assert {"daemonset.yaml", "policies-configmap.yaml", "prefect-api-key-secret.yaml"} <= set(documents)
    pod = documents["daemonset.yaml"]["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["args"][container["args"].index("--socket") + 1] == SOCKET
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    host = {v["name"]: v.get("hostPath", {}).get("path") for v in pod["volumes"]}
    assert mounts["socket"] == host["socket"] == SOCKET.rsplit("/", 1)[0]
    assert pod["hostPID"] is True
    assert container["securityContext"]["privileged"] is False
    assert "ALL" in container["securityContext"]["capabilities"]["drop"]
    # /metrics has no authentication: not on every address of the pod by default.
    listen = container["args"][container["args"].index("--metrics-listen") + 1]
    assert listen.startswith("127.0.0.1:"), listen
    policy = yaml.safe_load(documents["policies-configmap.yaml"]["data"]["default.yaml"])
    assert policy["version"] == 1


def test_the_work_pool_template_mounts_the_same_socket():
    template = json.loads((EXAMPLES / "prefect" / "kubernetes-base-job-template.json").read_text())
    env = template["job_configuration"]["env"]
    assert env["TRACER_SOCKET"] == SOCKET and env["PREFECT_PLUGINS_ENABLED"] == "true"
    pod = template["job_configuration"]["job_manifest"]["spec"]["template"]["spec"]
    assert pod["volumes"][0]["hostPath"]["path"] == SOCKET.rsplit("/", 1)[0]
    assert pod["containers"][0]["volumeMounts"][0]["mountPath"] == SOCKET.rsplit("/", 1)[0]


def test_the_docker_work_pool_template_mounts_the_same_socket():
    template = json.loads((EXAMPLES / "prefect" / "docker-base-job-template.json").read_text())
    variables = template["variables"]["properties"]
    env = variables["env"]["default"]
    assert env["TRACER_SOCKET"] == SOCKET and env["PREFECT_PLUGINS_ENABLED"] == "true"
    directory = SOCKET.rsplit("/", 1)[0]
    assert variables["volumes"]["default"] == [f"{directory}:{directory}"]


def test_systemd_units_agree_and_verify():
    socket_unit = (EXAMPLES / "systemd" / "tracer-sidecar.socket").read_text()
    service_unit = (EXAMPLES / "systemd" / "tracer-sidecar.service").read_text()
    assert f"ListenStream={SOCKET}" in socket_unit and "SocketMode=0660" in socket_unit
    assert "Type=notify" in service_unit and "ExecReload=/bin/kill -HUP $MAINPID" in service_unit
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed")
    result = subprocess.run(["systemd-analyze", "verify", "--man=no",
                             str(EXAMPLES / "systemd" / "tracer-sidecar.service"),
                             str(EXAMPLES / "systemd" / "tracer-sidecar.socket")],
                            capture_output=True, text=True)
    # The binary is not installed at /usr/local/bin on a build machine: that is the only
    # complaint allowed.
    problems = [line for line in result.stderr.splitlines()
                if line.strip() and "/usr/local/bin/tracer-sidecar" not in line
                and "is not executable" not in line]
    assert problems == [], result.stderr
