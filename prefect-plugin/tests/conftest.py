import sys
from pathlib import Path

# The repository's test support: a real tracer-sidecar process on a private socket.
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests/support"))

from sidecar import sidecar  # noqa: E402,F401  (the fixture)
