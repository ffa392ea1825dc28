"""prefect_tracer.settings: the worker's environment and the declared allocation."""

import logging

import pytest

from prefect_tracer import settings


def test_flow_run_info_from_the_workers_environment():
    environ = {"PREFECT__FLOW_RUN_ID": "f-1", "PREFECT__FLOW_NAME": "etl",
               "PREFECT__DEPLOYMENT_ID": "d-1", "PREFECT__DEPLOYMENT_NAME": "nightly",
               "PREFECT__WORKER_NAME": "w1", "TRACER_CPU": "1500m", "TRACER_MEMORY": "2Gi",
               "TRACER_WORK_POOL_TYPE": "kubernetes"}
    assert settings.declared_info(environ) == {
        "flow_name": "etl", "deployment_id": "d-1", "deployment_name": "nightly",
        "worker_name": "w1", "cpu_cores": 1.5, "memory_bytes": 2 << 30,
        "work_pool_type": "kubernetes"}
    assert settings.declared_info({}) == {}


@pytest.mark.parametrize("text, cores", [("250m", 0.25), ("2", 2.0), ("0.5", 0.5), (" 1 ", 1.0)])
def test_cpu_quantities(text, cores):
    assert settings.parse_cpu(text) == cores


@pytest.mark.parametrize("text, size", [("512Mi", 512 << 20), ("1G", 10**9), ("1048576", 1 << 20),
                                        ("1.5Gi", 3 << 29), ("2k", 2000), ("1Ti", 1 << 40)])
def test_memory_quantities(text, size):
    assert settings.parse_memory(text) == size


@pytest.mark.parametrize("name, text", [
    ("TRACER_MEMORY", "1ki"), ("TRACER_MEMORY", "lots"), ("TRACER_MEMORY", "-1Gi"),
    ("TRACER_MEMORY", "0"), ("TRACER_MEMORY", "nan"), ("TRACER_MEMORY", "inf"),
    ("TRACER_CPU", "nan"), ("TRACER_CPU", "inf"), ("TRACER_CPU", "-2"), ("TRACER_CPU", "0"),
    ("TRACER_CPU", "1e400"), ("TRACER_CPU", "two")])
def test_a_bad_value_is_one_warning_naming_it_and_the_rest_is_kept(name, text, caplog):
    environ = {"PREFECT__FLOW_NAME": "etl", "TRACER_CPU": "2", "TRACER_MEMORY": "1Gi", name: text}
    with caplog.at_level(logging.WARNING, logger="prefect_tracer"):
        info = settings.declared_info(environ)
    warnings = [record.getMessage() for record in caplog.records]
    assert len(warnings) == 1 and f"{name}={text!r}" in warnings[0], warnings
    assert info["flow_name"] == "etl"
    kept = "memory_bytes" if name == "TRACER_CPU" else "cpu_cores"
    dropped = "cpu_cores" if name == "TRACER_CPU" else "memory_bytes"
    assert kept in info and dropped not in info


def test_socket_path_defaults_to_the_system_socket():
    assert settings.socket_path({}) == "/run/tracer/tracer.sock"
    assert settings.socket_path({"TRACER_SOCKET": "/x.sock"}) == "/x.sock"
