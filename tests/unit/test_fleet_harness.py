"""The one fleet harness (``bench/fleet.py``) of the drill, the benchmarks and the suite: a
zombie is dead, a started fleet is ready while its log still grows, and a line still
being written waits for its end."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from bench.fleet import Fleet, alive

CHATTY = """
import json, sys, time
for n in range(2):
    print(json.dumps({"event": "supervisor.child_started", "pid": 4000000 + n}), flush=True)
    print(json.dumps({"event": "worker.started"}), flush=True)
while True:  # a fleet with work queued: its log never goes quiet
    line = {"event": "message.succeeded", "redelivered": True, "id": "m", "type": "t"}
    print(json.dumps(line), flush=True)
    time.sleep(0.01)
"""


def test_a_zombie_is_dead_and_a_running_child_alive() -> None:
    running = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    exited = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        deadline = time.monotonic() + 10
        while Path(f"/proc/{exited.pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
            assert time.monotonic() < deadline
            time.sleep(0.01)
        os.kill(exited.pid, 0)  # the kernel still knows the PID: a zombie, not reaped
        assert not alive(exited.pid)
        assert alive(running.pid)  # the positive control
    finally:
        running.kill()
        running.wait()
        exited.wait()
    assert not alive(exited.pid)


def test_a_fleet_is_ready_once_started_though_its_log_keeps_growing(tmp_path: Path) -> None:
    script = tmp_path / "provisioner"
    script.write_text(f"#!{sys.executable}\n{CHATTY}")
    script.chmod(0o755)
    fleet = Fleet.spawn(script, ["worker"], dict(os.environ), tmp_path / "fleet.log")
    try:
        started = time.monotonic()
        fleet.wait_started(2, timeout=10)
        assert time.monotonic() - started < 5
        assert sorted(fleet.started) == [4000000, 4000001]
        assert fleet.children() == []  # PIDs nobody runs are not alive
        assert fleet.redelivered == {"m": "t"}
    finally:
        assert fleet.stop(10) != 0  # SIGTERM ends the fake


def test_a_half_written_line_waits_for_its_end(tmp_path: Path) -> None:
    log = tmp_path / "fleet.log"
    log.write_bytes(b'{"event": "worker.sta')
    fleet = Fleet(subprocess.Popen(["true"]), log, 0)
    fleet.process.wait()
    assert fleet.lines() == []
    with log.open("ab") as out:
        out.write(b'rted"}\nnot json\n')
    assert fleet.lines() == [{"event": "worker.started"}]
    assert fleet.workers_started == 1
