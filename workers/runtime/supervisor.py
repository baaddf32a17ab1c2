"""``provisioner worker --processes N``: N worker processes, each restarted when it dies.

The supervisor starts each worker as a child process running ``provisioner worker``
(with the same settings), restarts a child that exits (waiting longer, up to 30 s, if
children keep dying fast), and on SIGTERM or SIGINT forwards SIGTERM to every child,
waits for them to drain (at most ``drain_seconds``, then SIGKILL), and returns 0.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import structlog

RESTART_CAP_SECONDS = 30.0
FAST_DEATH_SECONDS = 5.0


@dataclass
class Child:
    slot: int
    process: subprocess.Popen[bytes]
    started: float
    restarts: int = 0
    delay: float = field(default=0.0)


class Supervisor:
    def __init__(
        self,
        argv: Sequence[str],
        processes: int,
        drain_seconds: float = 60.0,
        metrics_port: int = 0,
    ) -> None:
        self._metrics_port = metrics_port
        self._argv = list(argv)
        self._processes = processes
        self._drain_seconds = drain_seconds
        self._stopping = False
        self._log = structlog.get_logger("supervisor")

    def request_stop(self) -> None:
        self._stopping = True

    def _start(self, slot: int, restarts: int = 0, delay: float = 0.0) -> Child:
        env = dict(os.environ)
        if self._metrics_port:  # each child a scrape target of its own
            env["PROVISIONER_METRICS_PORT"] = str(self._metrics_port + slot)
        process = subprocess.Popen(self._argv, env=env)
        self._log.info("supervisor.child_started", slot=slot, pid=process.pid, restarts=restarts)
        return Child(slot, process, time.monotonic(), restarts, delay)

    def run(self) -> int:
        children = [self._start(slot) for slot in range(self._processes)]
        while not self._stopping:
            time.sleep(0.2)
            for index, child in enumerate(children):
                code = child.process.poll()
                if code is None or self._stopping:
                    continue
                lived = time.monotonic() - child.started
                delay = (
                    min(RESTART_CAP_SECONDS, max(1.0, child.delay * 2))
                    if lived < FAST_DEATH_SECONDS
                    else 0.0
                )
                self._log.warning(
                    "supervisor.child_died",
                    slot=child.slot,
                    pid=child.process.pid,
                    exit_code=code,
                    restart_in_s=delay,
                )
                self._wait(delay)
                if not self._stopping:
                    children[index] = self._start(child.slot, child.restarts + 1, delay)
        return self._drain(children)

    def _wait(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not self._stopping and time.monotonic() < deadline:
            time.sleep(0.1)

    def _drain(self, children: list[Child]) -> int:
        for child in children:
            if child.process.poll() is None:
                child.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self._drain_seconds
        for child in children:
            try:
                child.process.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self._log.error("supervisor.child_killed", pid=child.process.pid)
                child.process.kill()
                child.process.wait()
        self._log.info("supervisor.stopped")
        return 0


def child_argv(argv: Sequence[str]) -> list[str]:
    """The command line of one child: this one, without ``--processes``."""
    out: list[str] = []
    skip = False
    for word in argv:
        if skip:
            skip = False
            continue
        if word == "--processes":
            skip = True
            continue
        if word.startswith("--processes="):
            continue
        out.append(word)
    return [sys.executable, "-m", "workers.cli", *out]
