"""A markdown artifact seen as a Prefect user sees it: rendered with the npm
packages Prefect's UI uses (react-markdown, remark-gfm, rehype-raw,
rehype-sanitize, mermaid) in Debian's headless Chromium. The screenshot is
kept under the build directory."""

import json
import subprocess
import uuid

from prefect_tracer.client import SidecarClient
from sidecar import BUILD, REPO, WORKLOAD


def test_the_markdown_artifact_renders_its_table_and_its_diagram(sidecar):
    client = SidecarClient(str(sidecar.socket), start_wait_ms=2000, finish_wait_ms=2000,
                           connect_wait_ms=2000)
    with client.flow_run(flow_run_id=str(uuid.uuid4()), flow_name="rendered", cpu_cores=2,
                         memory_bytes=1 << 30) as flow:
        for name in ["extract", "transform", "load"]:
            with flow.task(task_run_id=str(uuid.uuid4()), task_name=name):
                subprocess.run([str(WORKLOAD), "live", "30"], check=True)

    out = BUILD / "artifact-rendering"
    out.mkdir(exist_ok=True)
    markdown = out / "artifact.md"
    markdown.write_text(sidecar.tracerctl("outbox", "--latest").stdout)
    screenshot = out / "artifact.png"
    result = subprocess.run(["node", str(REPO / "tests" / "browser" / "render_artifact.mjs"),
                             str(markdown), str(screenshot)],
                            capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr
    rendered = json.loads(result.stdout.strip().splitlines()[-1])
    assert rendered["pageErrors"] == []
    assert rendered["tables"] == 1 and rendered["tableRows"] == 3
    assert rendered["mermaidSvgs"] == 1 and rendered["mermaidErrors"] == []
    assert rendered["headings"][1:] == ["Recommendation", "Tasks", "Timeline", "Findings"]
    assert screenshot.stat().st_size > 10_000
