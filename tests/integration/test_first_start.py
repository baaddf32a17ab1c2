"""The README's first command where nothing runs yet.

Each test runs the platform script in a network namespace of its own: its loopback is
empty, so nothing answers on 127.0.0.1:5672 or anywhere else, as on a fresh machine or
container.  The script must start a RabbitMQ node of its own (its own node name and
directory, so the machine's broker is never touched), then Samba, and its ``down`` must
leave nothing running.  The packages and the venv are the suite's own: installing them
is what ``platform test`` did before the suite started.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.platform import PLATFORM_SCRIPT, PROVISIONER, read_env_file

RABBITMQ_HOME = Path("/var/lib/rabbitmq")


@dataclass
class Namespace:
    """A network namespace and a platform (state, broker node and directory) of its own."""

    name: str
    state_dir: Path
    broker_node: str
    broker_dir: Path

    def run(
        self, argv: list[str], env: Mapping[str, str], timeout: float = 300
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["ip", "netns", "exec", self.name, *argv],
            env=dict(env),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def platform_env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PROVISIONER_")}
        return {
            **env,
            "PROVISIONER_STATE_DIR": str(self.state_dir),
            "PROVISIONER_VENV": str(Path(sys.executable).parents[1]),
            "PROVISIONER_RABBITMQ_NODE": self.broker_node,
            "PROVISIONER_RABBITMQ_DIR": str(self.broker_dir),
            "PROVISIONER_WORKERS": "1",
            **extra,
        }

    def platform(self, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
        return self.run([str(PLATFORM_SCRIPT), *args], self.platform_env(**extra))

    def provisioner(
        self, settings: Mapping[str, str], *args: str
    ) -> subprocess.CompletedProcess[str]:
        """``provisioner ARGS`` in the namespace, with these settings and no others."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("PROVISIONER_")}
        return self.run([str(PROVISIONER), *args], {**env, **settings}, timeout=120)

    def pids(self) -> list[int]:
        listed = subprocess.run(
            ["ip", "netns", "pids", self.name], capture_output=True, text=True, check=True
        )
        return [int(p) for p in listed.stdout.split()]

    def command_lines(self) -> list[str]:
        lines = []
        for pid in self.pids():
            try:
                raw = Path(f"/proc/{pid}/cmdline").read_bytes()
            except FileNotFoundError:
                continue  # ended since the listing
            command = raw.replace(b"\0", b" ").decode(errors="replace")
            lines.append(f"{pid}: {command}")
        return lines

    def listeners(self) -> dict[str, str]:
        """Every local address:port that a server in the namespace listens on, with its
        ``ss`` line: TCP sockets in LISTEN, and UDP sockets on a port outside the kernel's
        ephemeral range.  UDP has no listening state, so ``ss -ul`` also shows a client's
        socket, which takes an ephemeral port on the wildcard address: measured here, the
        broker holds one for a moment now and then (0.0.0.0:<ephemeral>, never a fixed
        port).  A server binds a port of its own, outside that range."""
        low, high = map(int, Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
        listed = self.run(["ss", "-Htulnp"], os.environ)
        assert listed.returncode == 0, listed.stderr
        out = {}
        for line in listed.stdout.splitlines():
            protocol, local = line.split()[0], line.split()[4]
            port = int(local.rpartition(":")[2])
            if protocol == "tcp" or not low <= port <= high:
                out[local] = line
        return out

    def answers(self, port: int) -> bool:
        probe = self.run(
            ["bash", "-c", f"timeout 2 bash -c '>/dev/tcp/127.0.0.1/{port}'"], os.environ
        )
        return probe.returncode == 0


@pytest.fixture
def namespace(tmp_path: Path) -> Iterator[Namespace]:
    token = uuid.uuid4().hex[:8]
    ns = Namespace(
        name=f"prov-fresh-{token}",
        state_dir=tmp_path / "state",
        broker_node=f"prov-fresh-{token}@localhost",
        broker_dir=RABBITMQ_HOME / f"prov-fresh-{token}",
    )
    subprocess.run(["ip", "netns", "add", ns.name], check=True)
    try:
        subprocess.run(
            ["ip", "netns", "exec", ns.name, "ip", "link", "set", "lo", "up"], check=True
        )
        yield ns
    finally:
        # Whatever a failed test left: nothing of it may outlive the namespace.
        for pid in ns.pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, 9)
        subprocess.run(["ip", "netns", "del", ns.name], check=False)
        shutil.rmtree(ns.broker_dir, ignore_errors=True)


def machine_broker() -> tuple[int | None, set[str]]:
    """The machine's broker as the root namespace sees it: its PID, and the node
    directories in its data directory."""
    listed = subprocess.run(
        ["ss", "-Htlnp", "sport = :5672"], capture_output=True, text=True, check=True
    )
    pids = re.findall(r"pid=(\d+)", listed.stdout)
    mnesia = RABBITMQ_HOME / "mnesia"
    nodes = {p.name for p in mnesia.iterdir()} if mnesia.is_dir() else set()
    return (int(pids[0]) if pids else None), nodes


def read_tenant_ou(ns: Namespace, tenant: str) -> str:
    """The tenant's OU read back over LDAPS as Administrator, with plain ldap3 run inside
    the namespace (the project's code plays no part), validating the DC's certificate."""
    script = textwrap.dedent(
        """
        import ssl, sys
        import ldap3
        state, tenant = sys.argv[1], sys.argv[2]
        password = open(f"{state}/administrator.secret").read().strip()
        tls = ldap3.Tls(
            validate=ssl.CERT_REQUIRED,
            ca_certs_file=f"{state}/samba/private/tls/ca.pem",
            valid_names=["dc1.hosting.test"],
        )
        server = ldap3.Server("127.0.0.1", port=636, use_ssl=True, tls=tls)
        conn = ldap3.Connection(
            server, "Administrator@hosting.test", password, auto_bind=True
        )
        conn.search(
            f"OU={tenant},OU=Tenants,DC=hosting,DC=test", "(objectClass=organizationalUnit)",
            ldap3.BASE, attributes=["description"],
        )
        for entry in conn.entries:
            print(entry.entry_dn, entry.description.value, sep="\\t")
        """
    )
    done = ns.run(
        [sys.executable, "-W", "ignore", "-c", script, str(ns.state_dir), tenant], os.environ
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_demo_where_nothing_runs_starts_its_own_broker_on_loopback_and_down_ends_it(
    namespace: Namespace,
) -> None:
    ns = namespace
    for port in (5672, 4369, 636, 15692):
        assert not ns.answers(port), f"something already answers on {port} in the namespace"
    machine_before = machine_broker()

    demo = ns.platform("demo")
    output = demo.stdout + demo.stderr
    assert demo.returncode == 0, output
    assert f"starting RabbitMQ node {ns.broker_node} in {ns.broker_dir}" in output
    assert f"RabbitMQ node {ns.broker_node} answers on 127.0.0.1:5672 after" in output
    assert "provisioning Samba AD domain" in output
    assert "OU=contoso,OU=Tenants,DC=hosting,DC=test\tContoso Ltd." in demo.stdout

    # Read back independently: the tenant's OU, over LDAPS with the DC's certificate checked.
    assert read_tenant_ou(ns, "contoso") == (
        "OU=contoso,OU=Tenants,DC=hosting,DC=test\tContoso Ltd."
    )
    assert read_tenant_ou(ns, "no-such-tenant") == ""  # the oracle can also say no

    # Every listener, the broker's and Samba's, is on loopback; the broker's are there.
    listening = ns.listeners()
    for expected in (
        "127.0.0.1:5672",
        "127.0.0.1:5671",
        "127.0.0.1:25672",
        "127.0.0.1:15692",
        "127.0.0.1:636",
    ):
        assert expected in listening, listening
    outside = [line for a, line in listening.items() if not a.startswith(("127.", "[::1]:"))]
    assert outside == []

    # AMQPS: the broker it started answers TLS too, with a CA of its own, and every
    # command of the demo used it.  The right CA connects; a wrong CA, or the right CA
    # for a name the certificate does not carry, is refused.
    assert "127.0.0.1:5671" in listening, listening
    settings = read_env_file(ns.state_dir / "provisioner.env")
    assert settings["PROVISIONER_AMQP_URL"].startswith("amqps://")
    assert settings["PROVISIONER_AMQP_CA_FILE"] == str(ns.broker_dir / "tls" / "ca.pem")
    right = ns.provisioner(settings, "dlq", "list")
    assert right.returncode == 0, right.stderr
    assert "0 dead letter(s)" in right.stdout
    samba_ca = str(ns.state_dir / "samba" / "private" / "tls" / "ca.pem")
    wrong_ca = ns.provisioner({**settings, "PROVISIONER_AMQP_CA_FILE": samba_ca}, "dlq", "list")
    assert wrong_ca.returncode == 1
    assert "CERTIFICATE_VERIFY_FAILED" in wrong_ca.stderr, wrong_ca.stderr
    wrong_name = ns.provisioner(
        {**settings, "PROVISIONER_AMQP_TLS_NAME": "broker.elsewhere.example"}, "dlq", "list"
    )
    assert wrong_name.returncode == 1
    assert "CERTIFICATE_VERIFY_FAILED" in wrong_name.stderr, wrong_name.stderr
    assert "broker.elsewhere.example" in wrong_name.stderr

    # The platform's own rabbitmqctl reaches the node it started, and so does status.
    vhosts = ns.platform("rabbitmqctl", "-q", "list_vhosts", "name")
    assert vhosts.returncode == 0, vhosts.stderr
    assert "/provisioning" in vhosts.stdout.split()
    status = ns.platform("status")
    assert status.returncode == 0, status.stdout
    assert f"node {ns.broker_node}, started by this script" in status.stdout

    # The machine's broker: the same process, and no node of ours in its data directory.
    machine_after = machine_broker()
    assert machine_after[0] == machine_before[0]
    assert ns.broker_node not in machine_after[1]
    assert (ns.broker_dir / "mnesia" / ns.broker_node).is_dir()

    down = ns.platform("down")
    assert down.returncode == 0, down.stderr
    assert f"stopping RabbitMQ node {ns.broker_node}, which this script started" in down.stderr
    # Nothing it started is left: broker, epmd, Samba, the fleet.
    assert ns.command_lines() == []
    assert not ns.answers(5672)


def test_a_broker_that_dies_at_start_fails_up_naming_its_log(namespace: Namespace) -> None:
    """Its distribution port taken, the node dies at boot: `up` says so at once, names the
    log, and leaves nothing of the broker running."""
    ns = namespace
    squat = (
        "import socket, time\n"
        "s = socket.socket(); s.bind(('127.0.0.1', 25672)); s.listen()\n"
        "print('listening', flush=True); time.sleep(300)"
    )
    with subprocess.Popen(
        ["ip", "netns", "exec", ns.name, sys.executable, "-c", squat],
        stdout=subprocess.PIPE,
        text=True,
    ) as squatter:
        try:
            assert squatter.stdout is not None
            assert squatter.stdout.readline().strip() == "listening"
            up = ns.platform("up", PROVISIONER_RABBITMQ_START_TIMEOUT="60")
            assert up.returncode == 1, up.stderr
            log = ns.broker_dir / "log" / f"{ns.broker_node}.log"
            assert (
                f"error: RabbitMQ node {ns.broker_node} exited before it answered; see {log}"
                in up.stderr
            )
            assert "dist_port_already_used" in up.stderr  # the cause, in the node's output
            assert "provisioning Samba" not in up.stderr
            assert ns.pids() == [squatter.pid]  # the node, its group and its epmd are gone
        finally:
            squatter.kill()


def test_a_broker_that_never_answers_fails_up_at_its_deadline(
    namespace: Namespace, tmp_path: Path
) -> None:
    """A node that hangs: `up` gives up at PROVISIONER_RABBITMQ_START_TIMEOUT, ends it and
    the epmd its checks brought up, and names the log."""
    ns = namespace
    fake = tmp_path / "bin" / "rabbitmq-server"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\necho 'a node that never answers'\nexec sleep 600\n")
    fake.chmod(0o755)
    path = f"{fake.parent}:{os.environ['PATH']}"
    up = ns.platform("up", PROVISIONER_RABBITMQ_START_TIMEOUT="6", PATH=path)
    assert up.returncode == 1, up.stderr
    log = ns.broker_dir / "log" / f"{ns.broker_node}.log"
    assert f"error: RabbitMQ node {ns.broker_node} did not answer within 6 s; see {log}" in (
        up.stderr
    )
    assert "a node that never answers" in up.stderr  # the fake did run
    assert ns.command_lines() == []
