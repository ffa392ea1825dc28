"""The state directory as the sidecar finds it at start: a history.db or
outbox.db SQLite cannot read is moved aside with one log line and started
afresh (the sidecar starts and works); the directory and its files are
private (0700, 0600), made so with a log line if they were not; delivered and
local artifacts past the retention are pruned, undelivered ones kept."""

import json
import sqlite3
import stat
import time

from sidecar import Sidecar

DAY_NS = 24 * 3600 * 1_000_000_000


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_unreadable_state_files_are_moved_aside_and_started_afresh(tmp_path):
    sidecar = Sidecar(tmp_path)
    sidecar.state_dir.mkdir(mode=0o700)
    for name in ("history.db", "outbox.db"):
        (sidecar.state_dir / name).write_bytes(b"this is not a database" * 100)
    sidecar.start()
    try:
        status = sidecar.status()
        assert status["finished_tasks"] == 0
        assert sidecar.tracerctl("outbox", "--json").returncode == 0
    finally:
        assert sidecar.stop() == 0, sidecar.log()
    log = sidecar.log()
    for name, lost in (("history.db", "without the history of earlier runs"),
                       ("outbox.db", "without the artifacts it held")):
        line = next(l for l in log.splitlines() if f"{name} is not a database" in l)
        assert "file is not a database" in line and lost in line, line
        aside = list(sidecar.state_dir.glob(f"{name}.corrupt-*"))
        assert len(aside) == 1 and aside[0].read_bytes().startswith(b"this is not"), aside
        assert sqlite3.connect(sidecar.state_dir / name).execute(
            "SELECT count(*) FROM sqlite_master").fetchone()[0] > 0  # made afresh


def test_state_is_private(tmp_path):
    sidecar = Sidecar(tmp_path)
    sidecar.state_dir.mkdir(mode=0o755)
    (sidecar.state_dir / "history.db").touch(mode=0o644)
    (sidecar.state_dir / "history.db").chmod(0o644)
    sidecar.state_dir.chmod(0o755)
    sidecar.start()
    assert sidecar.stop() == 0, sidecar.log()
    assert mode(sidecar.state_dir) == 0o700
    for name in ("history.db", "outbox.db"):
        assert mode(sidecar.state_dir / name) == 0o600, name
    for leftover in sidecar.state_dir.glob("*.db-*"):
        assert mode(leftover) == 0o600, leftover
    log = sidecar.log()
    assert "was open to others (mode 755): made 0700" in log
    assert "history.db was open to others (mode 644): made 0600" in log


def test_old_delivered_and_local_artifacts_are_pruned_undelivered_kept(tmp_path):
    sidecar = Sidecar(tmp_path, "--outbox-retention-days", "7")
    sidecar.start()  # makes the outbox
    assert sidecar.stop() == 0
    now = time.time_ns()
    rows = [("old-delivered", "delivered", now - 8 * DAY_NS),
            ("old-local", "local", now - 8 * DAY_NS),
            ("old-pending", "pending", now - 8 * DAY_NS),
            ("old-parked", "parked", now - 8 * DAY_NS),
            ("new-delivered", "delivered", now - 6 * DAY_NS)]
    with sqlite3.connect(sidecar.state_dir / "outbox.db") as db:
        db.executemany("INSERT INTO outbox (key, type, flow_run_id, status, created_at_ns, "
                       "next_attempt_ns, body) VALUES (?, 'markdown', 'run', ?, ?, ?, '{}')",
                       [(key, status, at, now + DAY_NS) for key, status, at in rows])
    sidecar.start()
    try:
        listed = json.loads(sidecar.tracerctl("outbox", "--json").stdout)["artifacts"]
        kept = {a["key"] for a in listed}
    finally:
        assert sidecar.stop() == 0, sidecar.log()
    assert kept == {"old-pending", "old-parked", "new-delivered"}
    assert "outbox: removed 2 delivered or local artifacts older than 7 days" in sidecar.log()
