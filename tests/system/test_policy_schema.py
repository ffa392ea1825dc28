"""policies/tracer-policy.schema.json: a valid JSON Schema that agrees with the loader."""

import json
import subprocess
from pathlib import Path

import jsonschema
import pytest
import yaml

from sidecar import REPO, TRACERCTL

SCHEMA = json.loads((REPO / "policies" / "tracer-policy.schema.json").read_text())
SHIPPED = sorted((REPO / "policies").glob("*.yaml")) + sorted((REPO / "examples" / "policies").glob("*.yaml"))


def test_the_schema_is_valid():
    jsonschema.Draft202012Validator.check_schema(SCHEMA)


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_shipped_policy_files_validate(path):
    jsonschema.validate(yaml.safe_load(path.read_text()), SCHEMA)


@pytest.mark.parametrize("text", [
    "version: 1\npolicies:\n  - name: p\n    memroy: {}\n",
    "version: 1\npolicies:\n  - name: p\n    memory: {min: 2GG}\n",
    "version: 1\npolicies:\n  - name: p\n    cpu: {percentile: 150}\n",
    "version: 2\npolicies:\n  - name: p\n",
    "version: 1\npolicies:\n  - name: p\n    placement: {disk_share_above: 1.5}\n",
    "version: 1\npolicies:\n  - name: p\n    placement: {extrenal_share_above: 0.5}\n",
    "version: 1\npolicies:\n  - name: p\n    findings: {separate_tasks: {light_wall_share_above: 2}}\n",
])
def test_what_the_loader_refuses_the_schema_refuses(tmp_path, text):
    (tmp_path / "p.yaml").write_text(text)
    loader = subprocess.run([str(TRACERCTL), "policy", "check", str(tmp_path)], capture_output=True)
    assert loader.returncode != 0
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(yaml.safe_load(text), SCHEMA)
