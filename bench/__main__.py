"""``python -m bench``: every benchmark, one after the other, into ``bench/RESULTS.md``.

Run it through ``deploy/local/platform bench``, which brings the platform up and stops
the demo's fleet first (the benchmarks need the work queue to themselves).  Each
benchmark is its own module, runnable alone; this prints each one's table as it comes
and writes them all, with the machine's details, to ``bench/RESULTS.md``.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import time
from datetime import UTC, datetime
from importlib import metadata

from bench.common import REPO

BENCHMARKS = [
    ("bench.publish", "4. Bulk publish with confirms"),
    ("bench.pipeline", "3. Null-directory pipeline"),
    ("bench.replay", "5. DLQ replay"),
    ("bench.memory", "6. Worker RSS"),
    ("bench.writes", "2. LDAP writes and round trips per event"),
    ("bench.throughput", "1. End-to-end user.created throughput into Samba"),
    ("bench.latency", "7. Latency, publish to result"),
]
LIBRARIES = ["pika", "ldap3", "msgpack", "structlog", "prometheus-client", "pynacl", "winacl"]


def _first_line(argv: list[str]) -> str:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=60)
    except FileNotFoundError:
        return "not found"
    return (out.stdout or out.stderr).strip().splitlines()[0] if (out.stdout or out.stderr) else ""


def _proc(path: str, key: str) -> str:
    with open(path, encoding="utf-8") as lines:  # noqa: PTH123 - a /proc file
        for line in lines:
            if line.startswith(key):
                return line.split(":", 1)[1].strip()
    return "?"


def machine() -> list[str]:
    os_name = _proc("/etc/os-release", "PRETTY_NAME").replace("=", "").strip('"')
    if os_name == "?":
        os_name = platform.platform()
    libraries = ", ".join(f"{name} {metadata.version(name)}" for name in LIBRARIES)
    return [
        f"- CPU: {_proc('/proc/cpuinfo', 'model name')}, {os.cpu_count()} cores",
        f"- memory: {_proc('/proc/meminfo', 'MemTotal')}",
        f"- OS: {os_name}, kernel {platform.release()}",
        f"- Python {platform.python_version()}; {libraries}",
        f"- RabbitMQ {_first_line(['rabbitmqctl', 'version'])} (quorum queues)",
        f"- {_first_line(['samba', '--version'])} AD DC, LDAPS on loopback",
    ]


def main() -> int:
    started = datetime.now(UTC)
    sections: list[str] = []
    failed = []
    for module, title in BENCHMARKS:
        print(f"\n# {title} ({module})", flush=True)
        clock = time.monotonic()
        run = subprocess.run(
            [sys.executable, "-m", module], cwd=REPO, capture_output=True, text=True, check=False
        )
        print(run.stdout, flush=True)
        took = time.monotonic() - clock
        body = run.stdout.strip().replace("## ", "", 1)
        if run.returncode != 0:
            failed.append(module)
            body += f"\n\nFAILED ({run.returncode}):\n\n```\n{run.stderr[-3000:]}\n```"
            print(run.stderr[-3000:], file=sys.stderr)
        sections.append(f"## {title}\n\n`python -m {module}`, {took:.0f} s.  {body}\n")
    header = [
        "# Benchmark results",
        "",
        f"Written by `deploy/local/platform bench` on {started:%Y-%m-%d %H:%M} UTC.  Every",
        "ratio compares with a baseline measured in the same run; see each module's",
        "docstring for what it measures and why its baseline is fair.",
        "",
        "Machine:",
        "",
        *machine(),
        "",
    ]
    (REPO / "bench" / "RESULTS.md").write_text("\n".join(header) + "\n" + "\n".join(sections))
    print(f"\nwritten: {REPO / 'bench' / 'RESULTS.md'}")
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
