"""The test suite's own platform: a Samba DC on 127.0.0.2 and a broker vhost of its own.

Brought up once per run by the project's script (``deploy/local/platform``), wiped
first so that no state (tenants, queues declared with other arguments) survives
from an earlier run.  It never touches the developer's platform on 127.0.0.1.

Commands run with the broker account of their role, as on a real platform: a worker as
the worker, ``publish`` as a producer, the rest as the operator.  Two things are the
suite's own, on its own vhost only: ``guest`` may do anything there (for the raw reads of
``tests/support/broker``), and a producer ``provisioning-test.suite`` may publish every
event type (the policy the workers get names it too), so that tests about provisioning
need not split their events by producer.  ``test_broker_roles`` checks the real roles.
"""

from __future__ import annotations

import os
import secrets
import shlex
import signal
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pika

from bench.common import amqp_parameters
from bench.fleet import Fleet
from messages.events import CATALOGUE

REPO = Path(__file__).resolve().parents[2]
PLATFORM_SCRIPT = REPO / "deploy" / "local" / "platform"
PROVISIONER = Path(sys.executable).with_name("provisioner")
STATE_DIR = Path(os.environ.get("PROVISIONER_TEST_STATE_DIR", str(REPO / ".state" / "test")))
LISTEN_IP = os.environ.get("PROVISIONER_TEST_LISTEN_IP", "127.0.0.2")
VHOST = "/provisioning-test"
SUITE_PRODUCER = "provisioning-test.suite"


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
        """The provisioner's settings as the env file gives them (the operator's account)."""
        return read_env_file(self.env_file)

    def role_env(self, role: str) -> dict[str, str]:
        """What the broker account file of ``role`` adds (its PROVISIONER_AMQP_URL)."""
        return read_env_file(self.state_dir / "broker" / f"{role}.env")

    def amqp_url(self, role: str) -> str:
        return self.role_env(role)["PROVISIONER_AMQP_URL"]

    def amqp_parameters(self, role: str) -> pika.URLParameters:
        """How ``role`` reaches the broker: over TLS with the platform's CA when the
        platform started the broker itself (as on a fresh machine), plain otherwise."""
        ca_file = self.settings_env.get("PROVISIONER_AMQP_CA_FILE", "")
        return amqp_parameters(self.amqp_url(role), ca_file)

    @property
    def suite_policy(self) -> str:
        """The env file's producer policy, and the suite's producer allowed every type."""
        documented = self.settings_env["PROVISIONER_PRODUCER_POLICY"]
        return f"{documented};{SUITE_PRODUCER}={','.join(sorted(CATALOGUE))}"

    @property
    def administrator_password(self) -> str:
        return (self.state_dir / "administrator.secret").read_text(encoding="utf-8").strip()

    def script(self, *args: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [str(PLATFORM_SCRIPT), *args],
            env=self.script_env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if args[:1] == ("up",) and done.returncode == 0:
            _grant_guest(self)  # `up` takes guest's permissions away, as it should
        return done

    def apply_topology(self, overrides: Mapping[str, str] | None) -> None:
        """The delay queues of retry delays a test gives its workers: the operator's to
        declare, as on a real platform (workers may not)."""
        if overrides and "PROVISIONER_RETRY_DELAYS" in overrides:
            applied = self.provisioner("topology", "apply", overrides=overrides)
            assert applied.returncode == 0, applied.stderr

    def provisioner_env(
        self, overrides: Mapping[str, str] | None = None, role: str | None = None
    ) -> dict[str, str]:
        """The env of a command run as ``role`` (None: the operator, as the env file is)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("PROVISIONER_")}
        # Metrics off unless a test asks: several workers run at once on one machine.
        return {
            **env,
            **self.settings_env,
            **(self.role_env(role) if role else {}),
            "PROVISIONER_PRODUCER_POLICY": self.suite_policy,
            "PROVISIONER_LOG_FORMAT": "json",
            "PROVISIONER_METRICS_PORT": "0",
            **(overrides or {}),
        }

    def provisioner(
        self,
        *args: str,
        overrides: Mapping[str, str] | None = None,
        stdin: str | None = None,
        role: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """``provisioner ARGS`` as ``role``; by default ``publish`` as the suite's producer,
        ``worker`` as the worker, and the rest as the operator."""
        if role is None:
            role = {"publish": "suite", "worker": "worker"}.get(args[0] if args else "")
        return subprocess.run(
            [str(PROVISIONER), *args],
            env=self.provisioner_env(overrides, role),
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
        self.apply_topology(overrides)
        with _running(
            ["worker"],
            self.provisioner_env(overrides, "worker"),
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
    _suite_accounts(platform)
    return platform


def _suite_accounts(platform: SuitePlatform) -> None:
    """guest on the suite's vhost, and the suite's producer of every type (see above)."""
    password = secrets.token_urlsafe(24)

    _grant_guest(platform)
    if _user_exists(SUITE_PRODUCER):
        rabbitmqctl("delete_user", SUITE_PRODUCER)
    rabbitmqctl("add_user", SUITE_PRODUCER, stdin=password + "\n")
    rabbitmqctl(
        "set_permissions",
        "-p",
        platform.vhost,
        SUITE_PRODUCER,
        "^$",
        "^provisioning\\.events$",
        "^$",
    )
    # The same way in as the platform's own accounts: amqps where the platform started the
    # broker (a fresh machine), plain amqp on a broker that was running already.
    operator = urllib.parse.urlsplit(platform.amqp_url("operator"))
    vhost = urllib.parse.quote(platform.vhost, safe="")
    url = f"{operator.scheme}://{SUITE_PRODUCER}:{password}@{operator.hostname}:{operator.port}/{vhost}"
    path = platform.state_dir / "broker" / "suite.env"
    with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as out:
        out.write(f"export PROVISIONER_AMQP_URL='{url}'\n")
        out.write(f"export PROVISIONER_RESULTS_AMQP_URL='{platform.amqp_url('results')}'\n")


def rabbitmqctl(*args: str, stdin: str | None = None) -> None:
    done = subprocess.run(
        [str(PLATFORM_SCRIPT), "rabbitmqctl", "-q", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def _grant_guest(platform: SuitePlatform) -> None:
    rabbitmqctl("set_permissions", "-p", platform.vhost, "guest", ".*", ".*", ".*")


def _user_exists(user: str) -> bool:
    listed = subprocess.run(
        [str(PLATFORM_SCRIPT), "rabbitmqctl", "-q", "list_users"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return user in (line.split("\t")[0] for line in listed.stdout.splitlines())


@contextmanager
def fleet(
    platform: SuitePlatform,
    log_path: Path,
    processes: int,
    overrides: Mapping[str, str] | None = None,
) -> Iterator[Fleet]:
    """``provisioner worker --processes N``, once every worker has started; stopped with
    SIGTERM, which must exit 0."""
    platform.apply_topology(overrides)
    env = platform.provisioner_env(overrides, "worker")
    running = Fleet.spawn(PROVISIONER, ["worker", "--processes", str(processes)], env, log_path)
    try:
        running.wait_started(processes, timeout=60)
        yield running
    finally:
        code = running.stop(timeout=90)
    assert code == 0, f"provisioner worker --processes {processes} exited {code}"
