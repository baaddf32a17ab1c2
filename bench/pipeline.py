"""The pipeline's throughput without Samba, against raw pika, a Dramatiq actor and a Celery task.

- **fleet, in-memory directory** (:mod:`bench.memory_worker`): the real worker with only
  the directory replaced, by the in-memory one: decode and validate, open the sealed
  password, the idempotency lookup and record, plan, steps, metrics, a JSON log line per
  message (to a file), the result event (confirmed) and the ack.
- **fleet, directory keeping no writes** (``bench.memory_worker --forget``): the same,
  but the directory accepts the jobs' writes without keeping them, so every lookup finds
  nothing and costs next to nothing: the null directory of earlier runs, for comparison.
- **raw pika** (:mod:`bench.raw_consumer`): ``BlockingChannel.consume`` and
  ``basic_ack``, nothing else.
- **Dramatiq** and **Celery**: an actor / task that does nothing, with one process and
  one thread (Celery: the solo pool), acked after the task like the fleet.

All four consume from a quorum queue on the same broker (a vhost of the bench's own)
with prefetch 10, messages of the same size, one process each.  Each queue is filled
first, then its consumer is started, and the rate is taken from the queue's depth, the
same way for all: from the moment the first 5 % are gone until the queue is empty (the
consumer's start-up is left out).  The rounds are interleaved, and the median is shown.

Dramatiq and Celery are installed only in the bench's own venv (``.state/bench-venv``),
never as the project's dependencies.

Run with RabbitMQ on 127.0.0.1:5672 and the platform's env file present:
``.venv/bin/python -m bench.pipeline [--messages N] [--rounds R]``.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pika

from bench.common import REPO, bench_vhost, platform_env, scratch_env, user_envelopes
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


def drain_rate(
    url: str, queue: str, count: int, consumer: Callable[[], subprocess.Popen[bytes]]
) -> float:
    """Start the consumer on a full queue; messages/s from 5 % consumed until empty."""
    connection = pika.BlockingConnection(pika.URLParameters(url))
    channel = connection.channel()
    filled = depth(channel, queue)
    assert filled == count, f"{queue} holds {filled} messages, not {count}"
    mark = count - count // 20
    process = consumer()
    try:
        started = None
        deadline = time.monotonic() + 600
        while (left := depth(channel, queue)) > 0:
            if started is None and left <= mark:
                started = time.perf_counter()
            if process.poll() is not None:
                raise RuntimeError(f"{queue}'s consumer exited with {process.returncode}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{queue} still holds {left} messages")
            time.sleep(0.005)
        assert started is not None
        rate = mark / (time.perf_counter() - started)
        time.sleep(2)  # untimed: the consumer finishes the messages it holds
        return rate
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


def popen(argv: list[str], env: dict[str, str], name: str) -> subprocess.Popen[bytes]:
    out = _log(name)
    try:
        return subprocess.Popen(argv, env=env, cwd=REPO, stdout=out, stderr=out)
    finally:
        os.close(out)


class Run:
    def __init__(self, url: str, count: int) -> None:
        self.url, self.count = url, count
        self.batch = user_envelopes(count, sealed=True)
        self.size = len(encode(self.batch[0]))
        self.peer = peer_python()
        self.peer_env = {**os.environ, "BENCH_AMQP_URL": url, "BENCH_PREFETCH": str(PREFETCH)}

    def fleet(self, *, forget: bool = False) -> float:
        """The worker; with ``forget``, its directory keeps none of the jobs' writes (what
        the null directory of earlier runs measured: the fleet without a directory's work)."""
        report = publish_all(self.url, ((e.id, e) for e in self.batch))
        assert len(report.confirmed) == self.count, report.failed[:3]
        env = {
            **os.environ,
            **platform_env(),
            **scratch_env(self.url),
            "PROVISIONER_PREFETCH": str(PREFETCH),
            "PROVISIONER_METRICS_PORT": "0",
            "PROVISIONER_LOG_LEVEL": "info",
            "PROVISIONER_LOG_FORMAT": "json",
        }
        return drain_rate(
            self.url,
            topology.WORK_QUEUE,
            self.count,
            lambda: popen(
                [sys.executable, "-m", "bench.memory_worker", *(["--forget"] if forget else [])],
                env,
                "memory-worker",
            ),
        )

    def raw(self) -> float:
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

    def dramatiq(self) -> float:
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

    def celery(self) -> float:
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=10000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with bench_vhost() as url:
        run = Run(url, args.messages)
        variants: dict[str, Callable[[], float]] = {
            "fleet worker, in-memory directory": run.fleet,
            "fleet worker, directory keeping no writes": lambda: run.fleet(forget=True),
            "raw pika consume + ack": run.raw,
            "Dramatiq actor doing nothing": run.dramatiq,
            "Celery task doing nothing": run.celery,
        }
        rates: dict[str, list[float]] = {name: [] for name in variants}
        for _ in range(args.rounds):
            for name, measure in variants.items():
                rates[name].append(measure())
        versions = peer_versions(run.peer)
    medians = {name: statistics.median(r) for name, r in rates.items()}
    fleet = medians["fleet worker, in-memory directory"]
    print(
        f"## The pipeline with an in-memory directory: {args.messages} messages of "
        f"{run.size} bytes per run, quorum queues, prefetch {PREFETCH}, one process each, "
        f"median of {args.rounds}\n"
    )
    print("| consumer | messages/s | fleet / this |")
    print("|---|---:|---:|")
    for name, rate in medians.items():
        print(f"| {name} | {rate:,.0f} | {fleet / rate:.2f} |")
    print(
        f"\n{versions}; every run: "
        + "; ".join(f"{name}: " + ", ".join(f"{r:,.0f}" for r in rs) for name, rs in rates.items())
    )


if __name__ == "__main__":
    main()
