"""The pipeline's throughput without Samba, against raw pika, a Dramatiq actor and a Celery task.

- **fleet, in-memory directory** (:mod:`bench.memory_worker`): the real worker with only
  the directory replaced, by the in-memory one: decode and validate, open the sealed
  password, the idempotency lookup and record, plan, steps, metrics, a JSON log line per
  message (to a file), the result event (confirmed) and the ack.
- **fleet, directory keeping no writes** (``bench.memory_worker --forget``): the same,
  but the directory accepts the jobs' writes without keeping them, so every lookup finds
  nothing and costs next to nothing: the null directory of earlier runs, for comparison.
- **the fair floor** (:mod:`bench.floor_consumer`), with either directory: the fleet's
  work for each message done inline on raw pika, with no framework at all (decode and
  validate, the idempotency lookup, unseal, plan and apply, the record, the result
  confirmed, the ack).  The fleet's rate over the floor's is the share the fleet's own
  machinery (decisions, sessions, metrics, logs, the retry and dead-letter paths) leaves.
- **the fleet at an earlier revision** (``--against REV``): ``bench.memory_worker
  --forget`` from a git worktree of ``REV``, run by the same interpreter and libraries:
  what a change to the worker gained, measured in the same run (``d0bbe04`` is the worker
  before its confirms went in flight, issue 17).
- **raw pika** (:mod:`bench.raw_consumer`): ``BlockingChannel.consume`` and
  ``basic_ack``, nothing else.
- **Dramatiq** and **Celery**: an actor / task that does nothing, with one process and
  one thread (Celery: the solo pool), acked after the task like the fleet.

All four consume from a quorum queue on the same broker (a vhost of the bench's own)
with prefetch 10, messages of the same size, one process each.  Each queue is filled
first, then its consumer is started, and the rate is taken from the queue's depth, the
same way for all: from the moment the first 5 % are gone until the queue is empty (the
consumer's start-up is left out).  The rounds are interleaved, and the median is shown.
Over the same window, the consumer's CPU (user and system, its processes together, from
/proc) is divided by the messages: CPU microseconds a message.  Last, unless
``--no-profile``, one more run of the null pipeline under cProfile: the top 15 functions
by cumulative time, the reference the next change is measured against.

Dramatiq and Celery are installed only in the bench's own venv (``.state/bench-venv``),
never as the project's dependencies.

Run with RabbitMQ on 127.0.0.1:5672 and the platform's env file present:
``.venv/bin/python -m bench.pipeline [--messages N] [--rounds R] [--no-profile]
[--against REV]``.
"""

from __future__ import annotations

import argparse
import io
import os
import pstats
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import pika

from bench.common import (
    REPO,
    bench_vhost,
    platform_env,
    scratch_env,
    user_envelopes,
    worktree,
)
from messages.envelope import encode
from messages.publisher import publish_all
from workers.broker import topology

PREFETCH = 10
TENANTS = 50
PEER_VENV = REPO / ".state" / "bench-venv"
PEER_PACKAGES = ["dramatiq[rabbitmq]>=1.17", "celery>=5.4"]
LOGS = REPO / ".state" / "bench"


def peer_python() -> Path:
    """The bench venv's Python, with Dramatiq and Celery installed (made on first use)."""
    python = PEER_VENV / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(PEER_VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", *PEER_PACKAGES], check=True)
    return python


def peer_versions(python: Path) -> str:
    out = subprocess.run(
        [
            str(python),
            "-c",
            "import dramatiq, celery; print(dramatiq.__version__, celery.__version__)",
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    return f"Dramatiq {out[0]}, Celery {out[1]}"


def depth(channel: pika.adapters.blocking_connection.BlockingChannel, queue: str) -> int:
    return int(channel.queue_declare(queue, passive=True).method.message_count)


@dataclass(frozen=True)
class Drained:
    rate: float  # messages a second
    cpu_us: float  # CPU microseconds a message, the consumer's processes together


def tree_cpu_seconds(pid: int) -> float:
    """User and system CPU of ``pid`` and every process below it, from /proc (Dramatiq
    works in a child of the process it is started as)."""
    tick = os.sysconf("SC_CLK_TCK")
    stats: dict[int, tuple[int, float]] = {}  # pid -> (parent, CPU seconds)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        stats[int(entry.name)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / tick)
    total, below = 0.0, [pid]
    while below:
        here = below.pop()
        total += stats.get(here, (0, 0.0))[1]
        below += [child for child, (parent, _) in stats.items() if parent == here]
    return total


def drain_rate(
    url: str, queue: str, count: int, consumer: Callable[[], subprocess.Popen[bytes]]
) -> Drained:
    """Start the consumer on a full queue; messages/s, and the consumer's CPU a message,
    from 5 % consumed until empty."""
    connection = pika.BlockingConnection(pika.URLParameters(url))
    channel = connection.channel()
    filled = depth(channel, queue)
    assert filled == count, f"{queue} holds {filled} messages, not {count}"
    mark = count - count // 20
    process = consumer()
    try:
        started = None
        cpu_at_start = 0.0
        deadline = time.monotonic() + 600
        while (left := depth(channel, queue)) > 0:
            if started is None and left <= mark:
                started = time.perf_counter()
                cpu_at_start = tree_cpu_seconds(process.pid)
            if process.poll() is not None:
                raise RuntimeError(f"{queue}'s consumer exited with {process.returncode}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{queue} still holds {left} messages")
            time.sleep(0.005)
        assert started is not None
        rate = mark / (time.perf_counter() - started)
        cpu = tree_cpu_seconds(process.pid) - cpu_at_start
        time.sleep(2)  # untimed: the consumer finishes the messages it holds
        return Drained(rate, cpu / mark * 1e6)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        channel.queue_purge(queue)
        connection.close()


def _log(name: str) -> int:
    LOGS.mkdir(parents=True, exist_ok=True)
    return os.open(LOGS / f"{name}.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)


def popen(
    argv: list[str], env: dict[str, str], name: str, cwd: Path = REPO
) -> subprocess.Popen[bytes]:
    """``python -m`` imports from ``cwd`` first: the project's own tree, or a worktree."""
    out = _log(name)
    try:
        return subprocess.Popen(argv, env=env, cwd=cwd, stdout=out, stderr=out)
    finally:
        os.close(out)


class Run:
    def __init__(self, url: str, count: int) -> None:
        self.url, self.count = url, count
        self.batch = user_envelopes(count, sealed=True)
        self.size = len(encode(self.batch[0]))
        self.peer = peer_python()
        self.peer_env = {**os.environ, "BENCH_AMQP_URL": url, "BENCH_PREFETCH": str(PREFETCH)}

    def fleet(self, *, forget: bool = False) -> Drained:
        """The worker; with ``forget``, its directory keeps none of the jobs' writes (what
        the null directory of earlier runs measured: the fleet without a directory's work)."""
        return self._in_memory("bench.memory_worker", forget=forget)

    def floor(self, *, forget: bool = False) -> Drained:
        """The same work inline on raw pika (:mod:`bench.floor_consumer`)."""
        return self._in_memory("bench.floor_consumer", forget=forget)

    def earlier(self, tree: Path) -> Drained:
        """The worker of an earlier revision (checked out in ``tree``), no-writes directory."""
        return self._in_memory("bench.memory_worker", forget=True, cwd=tree)

    def _in_memory(self, module: str, *, forget: bool, cwd: Path = REPO) -> Drained:
        report = publish_all(self.url, ((e.id, e) for e in self.batch))
        assert len(report.confirmed) == self.count, report.failed[:3]
        argv = [sys.executable, "-m", module, *(["--forget"] if forget else [])]
        return drain_rate(
            self.url,
            topology.WORK_QUEUE,
            self.count,
            lambda: popen(argv, self.fleet_env(), module.rsplit(".", 1)[1], cwd),
        )

    def fleet_env(self) -> dict[str, str]:
        return {
            **os.environ,
            **platform_env(),
            **scratch_env(self.url),
            "PROVISIONER_PREFETCH": str(PREFETCH),
            "PROVISIONER_METRICS_PORT": "0",
            "PROVISIONER_LOG_LEVEL": "info",
            "PROVISIONER_LOG_FORMAT": "json",
        }

    def raw(self) -> Drained:
        report = publish_all(self.url, ((e.id, e) for e in self.batch))
        assert len(report.confirmed) == self.count, report.failed[:3]
        argv = [
            sys.executable,
            "-m",
            "bench.raw_consumer",
            self.url,
            topology.WORK_QUEUE,
            str(PREFETCH),
        ]
        return drain_rate(
            self.url, topology.WORK_QUEUE, self.count, lambda: popen(argv, dict(os.environ), "raw")
        )

    def dramatiq(self) -> Drained:
        fill = [str(self.peer), "-m", "bench.peers.dramatiq_app", str(self.count), str(self.size)]
        subprocess.run(fill, env=self.peer_env, cwd=REPO, check=True)
        argv = [
            str(PEER_VENV / "bin" / "dramatiq"),
            "bench.peers.dramatiq_app",
            "--processes",
            "1",
            "--threads",
            "1",
        ]
        env = {**self.peer_env, "dramatiq_queue_prefetch": str(PREFETCH)}
        return drain_rate(self.url, "default", self.count, lambda: popen(argv, env, "dramatiq"))

    def celery(self) -> Drained:
        fill = [str(self.peer), "-m", "bench.peers.celery_app", str(self.count), str(self.size)]
        subprocess.run(fill, env=self.peer_env, cwd=REPO, check=True)
        argv = [
            str(PEER_VENV / "bin" / "celery"),
            "-A",
            "bench.peers.celery_app",
            "worker",
            "--pool",
            "solo",
            "--concurrency",
            "1",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "--loglevel",
            "warning",
        ]
        return drain_rate(
            self.url, "celery", self.count, lambda: popen(argv, self.peer_env, "celery")
        )


def profile_null_pipeline(run: Run, top: int = 15) -> str:
    """One more run of the worker with the directory keeping no writes, under cProfile:
    the top ``top`` functions by cumulative time (pstats' own table)."""
    LOGS.mkdir(parents=True, exist_ok=True)
    out = LOGS / "null-pipeline.prof"
    out.unlink(missing_ok=True)
    report = publish_all(run.url, ((e.id, e) for e in run.batch))
    assert len(report.confirmed) == run.count, report.failed[:3]
    argv = [sys.executable, "-m", "bench.memory_worker", "--forget", "--profile", str(out)]
    drain_rate(
        run.url, topology.WORK_QUEUE, run.count, lambda: popen(argv, run.fleet_env(), "prof")
    )
    text = io.StringIO()
    pstats.Stats(str(out), stream=text).sort_stats("cumulative").print_stats(top)
    lines = text.getvalue().splitlines()
    start = next(i for i, line in enumerate(lines) if line.lstrip().startswith("ncalls"))
    return "\n".join(lines[start - 2 :]).strip()


FLEET = "fleet worker, in-memory directory"
FLEET_NULL = "fleet worker, directory keeping no writes"
FLOOR = "fair floor: the same work inline on raw pika, in-memory directory"
FLOOR_NULL = "fair floor, directory keeping no writes"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=10000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--no-profile",
        dest="profile",
        action="store_false",
        help="leave out the profile of the null pipeline (one more run, under cProfile)",
    )
    parser.add_argument(
        "--against",
        metavar="REV",
        help="also the worker at this git revision (no-writes directory), from a worktree",
    )
    args = parser.parse_args()
    with bench_vhost() as url, ExitStack() as stack:
        run = Run(url, args.messages)
        earlier: dict[str, Callable[[], Drained]] = {}
        if args.against:
            tree = stack.enter_context(worktree(args.against))
            earlier[f"{FLEET_NULL}, at {args.against}"] = lambda: run.earlier(tree)
        variants: dict[str, Callable[[], Drained]] = {
            FLEET: run.fleet,
            FLOOR: run.floor,
            FLEET_NULL: lambda: run.fleet(forget=True),
            **earlier,
            FLOOR_NULL: lambda: run.floor(forget=True),
            "raw pika consume + ack": run.raw,
            "Dramatiq actor doing nothing": run.dramatiq,
            "Celery task doing nothing": run.celery,
        }
        runs: dict[str, list[Drained]] = {name: [] for name in variants}
        for _ in range(args.rounds):
            for name, measure in variants.items():
                runs[name].append(measure())
        versions = peer_versions(run.peer)
        profile = profile_null_pipeline(run) if args.profile else ""
    rate = {name: statistics.median(d.rate for d in ds) for name, ds in runs.items()}
    cpu = {name: statistics.median(d.cpu_us for d in ds) for name, ds in runs.items()}
    print(
        f"## The pipeline with an in-memory directory: {args.messages} messages of "
        f"{run.size} bytes per run, quorum queues, prefetch {PREFETCH}, one process each, "
        f"median of {args.rounds}\n"
    )
    print("| consumer | messages/s | CPU µs a message | fleet / this |")
    print("|---|---:|---:|---:|")
    for name in variants:
        fleet = rate[FLEET_NULL if "no writes" in name else FLEET]
        print(f"| {name} | {rate[name]:,.0f} | {cpu[name]:,.0f} | {fleet / rate[name]:.2f} |")
    print(
        f"\nfleet / fair floor: {rate[FLEET] / rate[FLOOR]:.2f} with the in-memory directory, "
        f"{rate[FLEET_NULL] / rate[FLOOR_NULL]:.2f} with the directory keeping no writes "
        "(the fleet's own overhead: what it does beyond the work itself).  The rows of the "
        "no-writes directory compare with the no-writes fleet; the others with the "
        "in-memory fleet."
    )
    for name in earlier:
        print(
            f"\nThe null pipeline against the worker at {args.against}, same run: "
            f"{rate[FLEET_NULL] / rate[name]:.2f}x the rate, "
            f"{cpu[FLEET_NULL] / cpu[name]:.2f}x the CPU a message."
        )
    print(
        f"\n{versions}; every run (messages/s): "
        + "; ".join(
            f"{name}: " + ", ".join(f"{d.rate:,.0f}" for d in ds) for name, ds in runs.items()
        )
    )
    if profile:
        print(
            f"\nThe null pipeline (the worker, directory keeping no writes) under cProfile, "
            f"{args.messages} messages, top 15 by cumulative time:\n\n```\n{profile}\n```"
        )


if __name__ == "__main__":
    main()
