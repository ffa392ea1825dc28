#!/usr/bin/env python3
"""Extracts from Prefect's OpenAPI spec the schemas the artifact test server
validates against, into tests/fixtures/prefect-artifact-schemas.json (tests
must not read ../shared: a user's clone has none).

    scripts/extract-prefect-schemas.py ../shared/prefect/openapi.json
"""

import json
import sys
from pathlib import Path

ROOTS = ["ArtifactCreate", "Artifact", "Body_read_artifacts_artifacts_filter_post"]


def referenced(schema, found):
    if isinstance(schema, dict):
        ref = schema.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
            name = ref.rsplit("/", 1)[1]
            if name not in found:
                found.add(name)
        for value in schema.values():
            referenced(value, found)
    elif isinstance(schema, list):
        for value in schema:
            referenced(value, found)


def main():
    source = Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/prefect/openapi.json")
    spec = json.loads(source.read_text())
    schemas = spec["components"]["schemas"]
    wanted, queue = set(ROOTS), list(ROOTS)
    while queue:
        found = set()
        referenced(schemas[queue.pop()], found)
        for name in found - wanted:
            wanted.add(name)
            queue.append(name)
    fixture = {
        "source": "Prefect OpenAPI spec (" + spec.get("info", {}).get("version", "?") + "), "
                  "extracted by scripts/extract-prefect-schemas.py",
        "paths": {path: {"post": spec["paths"][path]["post"]["requestBody"]}
                  for path in ["/artifacts/", "/artifacts/filter"]},
        "components": {"schemas": {name: schemas[name] for name in sorted(wanted)}},
    }
    out = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "prefect-artifact-schemas.json"
    out.write_text(json.dumps(fixture, indent=1, sort_keys=True) + "\n")
    print(f"{out}: {len(wanted)} schemas")


if __name__ == "__main__":
    main()
