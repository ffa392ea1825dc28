import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))

from sidecar import Sidecar  # noqa: E402


@pytest.fixture
def sidecar(tmp_path):
    process = Sidecar(tmp_path).start()
    yield process
    if process.alive():
        assert process.stop() == 0, f"sidecar did not stop cleanly:\n{process.log()}"
