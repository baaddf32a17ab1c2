"""What the benchmarks share: the local platform's settings, and their accounts' password."""

from __future__ import annotations

import os
import secrets
import shlex
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import ldap3
import msgpack
import pika

from messages import amqp
from messages.envelope import Envelope
from messages.events import CATALOGUE, Role, UserCreated
from messages.sealing import load_public_key, seal
from workers.broker import topology
from workers.delivery import idempotency
from workers.provisioning import names, passwords
from workers.runtime.settings import Settings

REPO = Path(__file__).resolve().parents[1]
# The broker benchmarks' own vhost and account, made and deleted by bench_vhost(): the
# account may do anything there (it publishes, consumes and replays alike), and nothing
# elsewhere.
VHOST = "/provisioning-bench"
SCRATCH_USER = "provisioning-bench.bench"
SCRATCH_PASSWORD = secrets.token_urlsafe(24)
AMQP_URL = f"amqp://{SCRATCH_USER}:{SCRATCH_PASSWORD}@127.0.0.1:5672/%2Fprovisioning-bench"
PASSWORD = "Bench-Passw0rd-Value!"  # noqa: S105 - the benchmark's own throwaway accounts


def env_file() -> Path:
    state = Path(os.environ.get("PROVISIONER_STATE_DIR", REPO / ".state" / "local"))
    return state / "provisioner.env"


def _exports(path: Path) -> dict[str, str]:
    """The ``export K='V'`` lines of one of the local platform's env files."""
    env: dict[str, str] = {}
    for line in path.read_text().splitlines():
        words = shlex.split(line, comments=True)
        if len(words) == 2 and words[0] == "export":
            key, value = words[1].split("=", 1)
            env[key] = value
    return env


def platform_env() -> dict[str, str]:
    """The local platform's env file: its settings, with the operator's broker account."""
    return _exports(env_file())


def account_env(role: str) -> dict[str, str]:
    """What the local platform's broker account of ``role`` adds to its env file."""
    return _exports(env_file().parent / "broker" / f"{role}.env")


def amqp_parameters(url: str, ca_file: str) -> pika.URLParameters:
    """A platform account's URL as the fleet reaches it: over TLS with the platform's CA
    where the URL is amqps:// (a platform whose broker it started), plain otherwise."""
    return amqp.parameters(url, ca_file if url.startswith("amqps://") else "")


def broker(role: str) -> pika.URLParameters:
    """How the local platform's account of ``role`` reaches its broker."""
    return amqp_parameters(
        account_env(role)["PROVISIONER_AMQP_URL"],
        platform_env().get("PROVISIONER_AMQP_CA_FILE", ""),
    )


def load_settings(role: str | None = None) -> Settings:
    """The platform's settings, with the broker account of ``role`` (None: the operator)."""
    return Settings.from_env({**platform_env(), **(account_env(role) if role else {})})


def scratch_env(url: str) -> dict[str, str]:
    """The settings of a worker on the scratch vhost: its account, which may publish any type."""
    return {
        "PROVISIONER_AMQP_URL": url,
        "PROVISIONER_PRODUCER_POLICY": f"{SCRATCH_USER}={','.join(sorted(CATALOGUE))}",
    }


def raw_user_writes(
    conn: ldap3.Connection,
    base: str,
    tenant: str,
    username: str,
    counted: int,
    *,
    record: bool,
) -> None:
    """What the fleet writes for one user.created, as a bare ldap3 loop writes it: the quota
    swap from ``counted``, one add with password and flags, the membership, and (with
    ``record``) the idempotency record.  The baselines of bench.writes and bench.throughput."""
    conn.modify(
        names.settings_dn(tenant, base),
        {
            "msDS-Settings": [
                (ldap3.MODIFY_DELETE, [f"users={counted}"]),
                (ldap3.MODIFY_ADD, [f"users={counted + 1}"]),
            ],
            "keywords": [(ldap3.MODIFY_ADD, [f"reserved:{username}"])],
        },
    )
    dn = names.user_dn(tenant, username, base)
    conn.add(
        dn,
        ["top", "person", "organizationalPerson", "user"],
        {
            "sAMAccountName": names.user_sam_candidate(tenant, username, 0, 10),
            "userPrincipalName": f"{username}@{tenant}.example",
            "givenName": "Raw",
            "sn": username,
            "displayName": f"Raw {username}",
            "unicodePwd": passwords.unicode_pwd(PASSWORD),
            "userAccountControl": 512,
            "adminDescription": "bench",
        },
    )
    conn.modify(names.users_group_dn(tenant, base), {"member": [(ldap3.MODIFY_ADD, [dn])]})
    if record:
        conn.add(
            f"CN={secrets.token_hex(24)},{idempotency.container_dn(base)}",
            ["msDS-App-Configuration"],
            {
                "keywords": [f"entity:user:{tenant}/{username}", "type:user.created"],
                "msDS-Settings": ["payload=bench", f"message_id={username}"],
                "msDS-DateTime": "20261125000000.0Z",
                "msDS-Integer": counted,
                "msDS-ByteArray": msgpack.packb({"dn": dn}),
                # As the fleet adds it: a DACL of its own, inheriting only the container's.
                "nTSecurityDescriptor": idempotency.RECORD_DESCRIPTOR,
            },
        )


def rabbitmqctl(
    *args: str, stdin: str | None = None, check: bool = False, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """``rabbitmqctl -q ARGS`` against the platform's broker: the node the platform script
    started where nothing answered, or else the machine's (a bare ``rabbitmqctl`` reaches
    only the machine's default node)."""
    done = subprocess.run(
        [str(REPO / "deploy" / "local" / "platform"), "rabbitmqctl", "-q", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if check and done.returncode != 0:
        raise RuntimeError(f"rabbitmqctl {' '.join(args)} exited {done.returncode}: {done.stderr}")
    return done


def restart_broker() -> None:
    """``rabbitmqctl stop_app``, 2 s, ``start_app``: the platform's broker, all its vhosts."""
    try:
        rabbitmqctl("stop_app", check=True)
        time.sleep(2)
    finally:  # whatever happens, the broker runs again
        rabbitmqctl("start_app", check=True)
        rabbitmqctl("await_startup", check=True)


@contextmanager
def bench_vhost() -> Iterator[str]:
    """A fresh vhost with the fleet's topology, deleted afterwards; yields its AMQP URL."""
    rabbitmqctl("delete_vhost", VHOST)
    rabbitmqctl("delete_user", SCRATCH_USER)
    rabbitmqctl("add_vhost", VHOST, check=True)
    rabbitmqctl("add_user", SCRATCH_USER, stdin=SCRATCH_PASSWORD + "\n", check=True)
    rabbitmqctl("set_permissions", "-p", VHOST, SCRATCH_USER, ".*", ".*", ".*", check=True)
    connection = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
    topology.declare(connection.channel(), Settings().retry_policy)
    connection.close()
    try:
        yield AMQP_URL
    finally:
        rabbitmqctl("delete_vhost", VHOST)
        rabbitmqctl("delete_user", SCRATCH_USER)


@contextmanager
def worktree(revision: str) -> Iterator[Path]:
    """A detached git worktree of ``revision`` (under ``.state/bench``), removed after:
    the code of an earlier revision, to measure it in the same run as this one."""
    tree = REPO / ".state" / "bench" / f"worktree-{revision}"
    subprocess.run(
        ["git", "worktree", "remove", "--force", str(tree)],
        cwd=REPO,
        capture_output=True,
        check=False,  # none there: the usual case
    )
    subprocess.run(
        ["git", "worktree", "add", "--detach", str(tree), revision],
        cwd=REPO,
        check=True,
        capture_output=True,
    )
    try:
        yield tree
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=REPO, check=True)


@contextmanager
def fleet(
    processes: int,
    log: Path,
    metrics_port: int = 0,
    settings: Mapping[str, str] | None = None,
    tree: Path | None = None,
) -> Iterator[subprocess.Popen[bytes]]:
    """``provisioner worker --processes N`` on the local platform, consuming; SIGTERM after.

    With ``metrics_port``, child k serves its metrics on ``metrics_port + k``;
    ``settings`` override the platform's (``PROVISIONER_*``); ``tree`` (a
    :func:`worktree`) runs the worker of that tree, with the same interpreter and
    libraries (``python -m`` imports from the working directory first, and the worker's
    children inherit it)."""
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("PROVISIONER_")},
        **platform_env(),
        **account_env("worker"),
        "PROVISIONER_METRICS_PORT": str(metrics_port),
        "PROVISIONER_LOG_LEVEL": "warning",
        "PROVISIONER_LOG_FORMAT": "json",
        **(settings or {}),
    }
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        python = str(REPO / ".venv" / "bin" / "python")
        process = subprocess.Popen(
            [python, "-m", "workers.cli", "worker", "--processes", str(processes)],
            env=env,
            stdout=out,
            stderr=out,
            cwd=tree or REPO,
        )
    try:
        time.sleep(3)  # the workers connect and start consuming
        yield process
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(90)


def user_envelopes(count: int, *, sealed: bool = False, tenants: int = 50) -> list[Envelope]:
    """``count`` user.created envelopes over ``tenants`` tenants, each its own intent; with
    ``sealed``, a password sealed to the platform's fleet key (as a worker must open it)."""
    public = load_public_key(Path(load_settings().fleet_public_key_file)) if sealed else None
    return [
        Envelope(
            id=str(uuid.uuid4()),
            idempotency_key=str(uuid.uuid4()),
            occurred_at=datetime.now(UTC),
            data=UserCreated(
                tenant=f"bench-{i % tenants}",
                username=f"user.{i}",
                given_name="Bench",
                surname=f"Mark {i}",
                display_name=f"Bench Mark {i}",
                role=Role.USER,
                password=seal(PASSWORD, public) if public else None,
            ),
        )
        for i in range(count)
    ]
