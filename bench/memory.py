"""Worker RSS before and after 50k messages.

One worker process (the fleet's worker with an in-memory directory that forgets what the
jobs write, ``bench.memory_worker --forget``, so that 50k messages take a minute rather
than the half hour Samba would need, and the directory's growth is not counted as the
worker's) consumes ``user.created`` messages with sealed passwords, logging a JSON line
for each.  Its RSS (``VmRSS`` from ``/proc``) is read after a warm-up of 1,000 messages
(the baseline: every code path loaded, every metric label created), then after each
further 10,000.  The goal
is flat: after / before close to 1.

Run with RabbitMQ on 127.0.0.1:5672 and the platform's env file present:
``.venv/bin/python -m bench.memory [--messages N]``.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pika

from bench.common import bench_vhost, platform_env, scratch_env, user_envelopes
from bench.pipeline import LOGS
from messages.publisher import publish_all
from workers.broker import topology

WARM_UP = 1_000
STEP = 10_000


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def feed(url: str, count: int) -> None:
    """Publish ``count`` messages and wait until the worker has taken them all."""
    report = publish_all(url, ((e.id, e) for e in user_envelopes(count, sealed=True)))
    assert len(report.confirmed) == count, report.failed[:3]
    connection = pika.BlockingConnection(pika.URLParameters(url))
    channel = connection.channel()
    while channel.queue_declare(topology.WORK_QUEUE, passive=True).method.message_count:
        time.sleep(0.1)
    connection.close()
    time.sleep(1)  # the last prefetched messages are finished


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=50_000)
    args = parser.parse_args()
    LOGS.mkdir(parents=True, exist_ok=True)
    with bench_vhost() as url, (LOGS / "memory-worker.log").open("ab") as log:
        env = {
            **os.environ,
            **platform_env(),
            **scratch_env(url),
            "PROVISIONER_METRICS_PORT": "0",
            "PROVISIONER_LOG_FORMAT": "json",
        }
        worker = subprocess.Popen(
            [sys.executable, "-m", "bench.memory_worker", "--forget"],
            env=env,
            stdout=log,
            stderr=log,
        )
        try:
            time.sleep(2)
            feed(url, WARM_UP)
            samples = [(WARM_UP, rss_kib(worker.pid))]
            done = WARM_UP
            while done < WARM_UP + args.messages:
                step = min(STEP, WARM_UP + args.messages - done)
                feed(url, step)
                done += step
                samples.append((done, rss_kib(worker.pid)))
        finally:
            worker.send_signal(signal.SIGTERM)
            worker.wait(30)
    before = samples[0][1]
    after = samples[-1][1]
    print(f"## Worker RSS over {args.messages:,} messages (after a warm-up of {WARM_UP:,})\n")
    print("| messages handled | RSS (MiB) | / after warm-up |")
    print("|---:|---:|---:|")
    for count, kib in samples:
        print(f"| {count:,} | {kib / 1024:.1f} | {kib / before:.3f} |")
    print(f"\nafter / before: {after / before:.3f} ({(after - before) / 1024:+.1f} MiB)")


if __name__ == "__main__":
    main()
