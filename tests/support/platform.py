"""The test suite's own platform: a Samba DC on 127.0.0.2 and a broker vhost of its own.

Brought up once per run by the project's script (``deploy/local/platform``), wiped
first so that no state (tenants, queues declared with other arguments) survives
from an earlier run.  It never touches the developer's platform on 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PLATFORM_SCRIPT = REPO / "deploy" / "local" / "platform"
PROVISIONER = Path(sys.executable).with_name("provisioner")
STATE_DIR = Path(os.environ.get("PROVISIONER_TEST_STATE_DIR", str(REPO / ".state" / "test")))
LISTEN_IP = os.environ.get("PROVISIONER_TEST_LISTEN_IP", "127.0.0.2")
VHOST = "/provisioning-test"


def read_env_file(path: Path) -> dict[str, str]:
    """The ``export K='V'`` lines of the platform's env file."""
    values: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        words = shlex.split(line, comments=True)
        if len(words) == 2 and words[0] == "export" and "=" in words[1]:
            key, value = words[1].split("=", 1)
            values[key] = value
    return values


@dataclass
class SuitePlatform:
    state_dir: Path
    listen_ip: str
    vhost: str
    up_output: str

    @property
    def script_env(self) -> dict[str, str]:
        return {
            **os.environ,
            "PROVISIONER_STATE_DIR": str(self.state_dir),
            "PROVISIONER_LISTEN_IP": self.listen_ip,
            "PROVISIONER_VHOST": self.vhost,
            "PROVISIONER_VENV": str(Path(sys.executable).parents[1]),
        }

    @property
    def env_file(self) -> Path:
        return self.state_dir / "provisioner.env"

    @property
    def settings_env(self) -> dict[str, str]:
        """The provisioner's settings as the env file gives them."""
        return read_env_file(self.env_file)

    @property
    def administrator_password(self) -> str:
        return (self.state_dir / "administrator.secret").read_text(encoding="utf-8").strip()

    def script(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(PLATFORM_SCRIPT), *args],
            env=self.script_env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )

    def provisioner_env(self, overrides: Mapping[str, str] | None = None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PROVISIONER_")}
        # Metrics off unless a test asks: several workers run at once on one machine.
        return {
            **env,
            **self.settings_env,
            "PROVISIONER_LOG_FORMAT": "json",
            "PROVISIONER_METRICS_PORT": "0",
            **(overrides or {}),
        }

    def provisioner(
        self,
        *args: str,
        overrides: Mapping[str, str] | None = None,
        stdin: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(PROVISIONER), *args],
            env=self.provisioner_env(overrides),
            input=stdin,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    @property
    def admin_options(self) -> list[str]:
        """The administrator's credential, for the one command that is given it."""
        return [
            "--admin-bind-dn",
            "Administrator@hosting.test",
            "--admin-password-file",
            str(self.state_dir / "administrator.secret"),
        ]

    def bootstrap(self) -> subprocess.CompletedProcess[str]:
        """``provisioner directory bootstrap`` as the platform script runs it: as
        Administrator, for the fleet's account of the env file."""
        return self.provisioner("directory", "bootstrap", *self.admin_options)

    @contextmanager
    def worker(
        self, log_path: Path, overrides: Mapping[str, str] | None = None
    ) -> Iterator[subprocess.Popen[bytes]]:
        """A ``provisioner worker`` process; stopped with SIGTERM, which must exit 0."""
        with _running(
            ["worker"],
            self.provisioner_env(overrides),
            log_path,
            lambda: b"worker.started" in log_path.read_bytes(),
            30,
        ) as process:
            yield process


@contextmanager
def _running(
    args: list[str],
    env: Mapping[str, str],
    log_path: Path,
    ready: Callable[[], bool],
    timeout: float,
) -> Iterator[subprocess.Popen[bytes]]:
    """``provisioner ARGS``, logging to ``log_path``, until ``ready``; SIGTERM at the end,
    which must exit 0."""
    with log_path.open("ab") as log:  # O_APPEND: whole lines from every process
        process = subprocess.Popen(
            [str(PROVISIONER), *args], env=env, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        wait_for(lambda: ready() or process.poll() is not None, timeout=timeout)
        assert process.poll() is None, log_path.read_text(encoding="utf-8")
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=90)
    assert code == 0, f"provisioner {' '.join(args)} exited {code}"


def wait_for(condition: object, timeout: float, interval: float = 0.1) -> None:
    assert callable(condition)
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"condition not met within {timeout} s")
        time.sleep(interval)


def bring_up() -> SuitePlatform:
    platform = SuitePlatform(STATE_DIR, LISTEN_IP, VHOST, up_output="")
    reset = platform.script("reset")
    assert reset.returncode == 0, reset.stderr
    up = platform.script("up")
    assert up.returncode == 0, f"platform up failed:\n{up.stdout}\n{up.stderr}"
    platform.up_output = up.stdout + up.stderr
    return platform


class Fleet:
    """A running ``provisioner worker --processes N``, its log, and its children's PIDs."""

    def __init__(self, process: subprocess.Popen[bytes], log_path: Path) -> None:
        self.process = process
        self.log_path = log_path

    def lines(self) -> list[dict[str, object]]:
        text = self.log_path.read_text(encoding="utf-8", errors="replace")
        out = []
        for line in text.splitlines():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # not a log line, or one still being written
        return out

    def events(self, name: str) -> list[dict[str, object]]:
        return [e for e in self.lines() if e.get("event") == name]

    def child_pids(self) -> list[int]:
        """The PIDs of the children alive now, as the supervisor started them."""
        started = [int(str(e["pid"])) for e in self.events("supervisor.child_started")]
        return [pid for pid in started if _alive(pid)]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@contextmanager
def fleet(
    platform: SuitePlatform,
    log_path: Path,
    processes: int,
    overrides: Mapping[str, str] | None = None,
) -> Iterator[Fleet]:
    """``provisioner worker --processes N``; stopped with SIGTERM, which must exit 0."""

    def ready() -> bool:
        return log_path.read_text(encoding="utf-8").count('"worker.started"') >= processes

    args = ["worker", "--processes", str(processes)]
    with _running(args, platform.provisioner_env(overrides), log_path, ready, 60) as process:
        yield Fleet(process, log_path)
