"""A running ``provisioner worker --processes N``: the one harness of the fault drill, the
benchmarks and the test suite.

It spawns the fleet with its JSON log, follows the log as it grows (only new bytes are
read; a line still being written waits for its end), and keeps what the log tells: the
children the supervisor started (PID, and when that was read), how many workers have
started, and the messages handed out again after a fault.  A child counts as alive while
its process runs: a zombie that the supervisor has not reaped yet is dead.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any


def alive(pid: int) -> bool:
    """Running, not a zombie waiting for its parent to reap it."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


class Fleet:
    """A fleet process and its log (see the module's docstring)."""

    def __init__(self, process: subprocess.Popen[bytes], log_path: Path, offset: int) -> None:
        self.process = process
        self.log_path = log_path
        self._offset = offset  # where this fleet's lines begin: the log may be shared
        self._partial = b""
        self._events: list[dict[str, Any]] = []
        self.started: dict[int, float] = {}  # child PID -> when its start was read
        self.workers_started = 0
        self.redelivered: dict[str, str] = {}  # message id -> type, of messages handed out again

    @classmethod
    def spawn(
        cls, provisioner: Path, args: Sequence[str], env: Mapping[str, str], log_path: Path
    ) -> Fleet:
        """``provisioner ARGS``, its output appended to ``log_path`` (O_APPEND: whole lines
        from every process)."""
        with log_path.open("ab") as log:
            offset = log.tell()
            process = subprocess.Popen(
                [str(provisioner), *args], env=dict(env), stdout=log, stderr=subprocess.STDOUT
            )
        return cls(process, log_path, offset)

    def refresh(self) -> bool:
        """Read the log's new lines; whether there were any."""
        with self.log_path.open("rb") as log:
            log.seek(self._offset)
            chunk = log.read()
        self._offset += len(chunk)
        *lines, self._partial = (self._partial + chunk).split(b"\n")
        now = time.monotonic()
        for line in lines:
            try:
                event = json.loads(line)
            except ValueError:
                continue  # not a log line (a traceback, say)
            if not isinstance(event, dict):
                continue
            self._events.append(event)
            name = event.get("event")
            if name == "supervisor.child_started":
                self.started.setdefault(int(str(event["pid"])), now)
            elif name == "worker.started":
                self.workers_started += 1
            if event.get("redelivered") is True:
                self.redelivered[str(event.get("id"))] = str(event.get("type"))
        return bool(lines)

    def lines(self) -> list[dict[str, Any]]:
        """Every log line of this fleet so far, parsed."""
        self.refresh()
        return list(self._events)

    def events(self, name: str) -> list[dict[str, Any]]:
        return [e for e in self.lines() if e.get("event") == name]

    def children(self) -> list[int]:
        """The PIDs of the children alive now, as the supervisor started them."""
        self.refresh()
        return [pid for pid in self.started if alive(pid)]

    def wait_started(self, workers: int, timeout: float) -> None:
        """Until ``workers`` workers have logged their start; raise if the fleet dies first."""
        deadline = time.monotonic() + timeout
        # Not "until the log is quiet": with work queued, the started workers never are.
        self.refresh()
        while self.workers_started < workers:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"the fleet exited with {self.process.returncode}; see {self.log_path}"
                )
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"the fleet did not start within {timeout} s; see {self.log_path}"
                )
            time.sleep(0.1)
            self.refresh()

    def stop(self, timeout: float = 120) -> int:
        """SIGTERM (a drain), and the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)
