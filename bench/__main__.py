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

from bench.common import REPO, rabbitmqctl

BENCHMARKS = [
    ("bench.publish", "4. Bulk publish with confirms"),
    ("bench.pipeline", "3. The pipeline without Samba"),
    ("bench.replay", "5. DLQ replay"),
    ("bench.memory", "6. Worker RSS"),
    ("bench.writes", "2. LDAP writes and round trips per event"),
    ("bench.throughput", "1. End-to-end user.created throughput into Samba"),
    ("bench.latency", "7. Latency, publish to result"),
    ("bench.two_dcs", "8. One DC and two: throughput and failover"),
    ("bench.reads_during_writes", "10. The fleet's reads while the DC writes"),
]
LIBRARIES = ["pika", "ldap3", "msgpack", "structlog", "prometheus-client", "pynacl", "winacl"]


def _first_line(argv: list[str]) -> str:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=60)
    except FileNotFoundError:
        return "not found"
    return (out.stdout or out.stderr).strip().splitlines()[0] if (out.stdout or out.stderr) else ""


def _field(path: str, key: str, separator: str) -> str:
    """The value of the first line of ``path`` that starts with ``key``."""
    try:
        with open(path, encoding="utf-8") as lines:  # noqa: PTH123 - a /proc or /etc file
            for line in lines:
                if line.startswith(key) and separator in line:
                    return line.split(separator, 1)[1].strip().strip('"')
    except OSError:
        pass
    return "?"


def machine() -> list[str]:
    libraries = ", ".join(f"{name} {metadata.version(name)}" for name in LIBRARIES)
    return [
        f"- CPU: {_field('/proc/cpuinfo', 'model name', ':')}, {os.cpu_count()} cores",
        f"- memory: {int(_field('/proc/meminfo', 'MemTotal', ':').split()[0]) / 2**20:.1f} GiB",
        f"- OS: {_field('/etc/os-release', 'PRETTY_NAME', '=')}, kernel {platform.release()}",
        f"- Python {platform.python_version()}; {libraries}",
        f"- RabbitMQ {rabbitmqctl('version').stdout.strip()} (quorum queues)",
        f"- Samba {_first_line(['samba', '--version']).removeprefix('Version ')} AD DC (LDAPS)",
    ]


def main() -> int:
    started = datetime.now(UTC)
    header = [
        "# Benchmark results",
        "",
        f"Written by `deploy/local/platform bench` on {started:%Y-%m-%d %H:%M} UTC.  Every",
        "ratio compares with a baseline measured in the same run; each module's docstring",
        "says what it measures and why its baseline is fair.",
        "",
        "Machine:",
        "",
        *machine(),
        "",
    ]
    results = REPO / "bench" / "RESULTS.md"
    sections: list[str] = []
    failed = []
    for module, title in BENCHMARKS:
        print(f"\n# {title} ({module})", flush=True)
        clock = time.monotonic()
        run = subprocess.run(
            [sys.executable, "-m", module], cwd=REPO, capture_output=True, text=True, check=False
        )
        print(run.stdout, flush=True)
        body = run.stdout.strip().replace("## ", "", 1)
        if run.returncode != 0:
            failed.append(module)
            body += f"\n\nFAILED ({run.returncode}):\n\n```\n{run.stderr[-3000:]}\n```"
            print(run.stderr[-3000:], file=sys.stderr)
        took = time.monotonic() - clock
        sections.append(f"## {title}\n\n`python -m {module}`, {took:.0f} s.  {body}\n")
        # Written after each one: a failure later keeps what was measured.
        results.write_text("\n".join(header) + "\n" + "\n".join(sections), encoding="utf-8")
    print(f"\nwritten: {results}")
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
