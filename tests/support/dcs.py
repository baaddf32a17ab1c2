"""The suite's two domain controllers (``deploy/local/platform dc2 ...``): the settings of a
fleet that knows both, each DC's own oracle connection, and the platform's levers on them
(stop, start, hold back a DC's outbound replication, force a replication each way)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import ldap3

from tests.support import ldap_oracle
from tests.support.platform import SuitePlatform, read_env_file

DC_NAMES = ("dc1.hosting.test", "dc2.hosting.test")


@dataclass
class TwoDcs:
    platform: SuitePlatform
    ips: tuple[str, str]
    ca_files: tuple[str, str]

    @classmethod
    def up(cls, platform: SuitePlatform) -> TwoDcs:
        done = platform.script("dc2", "up")
        assert done.returncode == 0, done.stderr
        dc2_ip = platform.script("dc2", "ip").stdout.strip()
        return cls(
            platform,
            (platform.listen_ip, dc2_ip),
            (
                str(platform.state_dir / "samba" / "private" / "tls" / "ca.pem"),
                str(platform.state_dir / "samba-dc2" / "private" / "tls" / "ca.pem"),
            ),
        )

    @property
    def settings_env(self) -> dict[str, str]:
        """The platform's settings with both DCs (``dc2 env``), DC1 listed first."""
        done = self.platform.script("dc2", "env")
        assert done.returncode == 0, done.stderr
        return {**self.platform.settings_env, **read_env_file(Path(done.stdout.strip()))}

    def env_of(self, n: int) -> dict[str, str]:
        """The platform's settings naming DC ``n`` (1 or 2) alone: the oracle's view."""
        return {
            **self.platform.settings_env,
            "PROVISIONER_LDAP_URL": f"ldaps://{self.ips[n - 1]}:636",
            "PROVISIONER_LDAP_TLS_NAME": DC_NAMES[n - 1],
            "PROVISIONER_LDAP_CA_FILE": self.ca_files[n - 1],
        }

    def administrator(self, n: int) -> ldap3.Connection:
        return ldap_oracle.administrator(
            self.platform, self.ips[n - 1], self.ca_files[n - 1], DC_NAMES[n - 1]
        )

    def run(self, *args: str) -> None:
        done = self.platform.script(*args)
        assert done.returncode == 0, f"{args}: {done.stderr}"

    def stop(self, n: int) -> None:
        self.run(f"dc{n}", "stop")

    def start(self, n: int) -> None:
        """DC ``n`` answers again; no replication is forced (see :meth:`sync`)."""
        if n == 1:
            self.run("samba-start")
        else:
            self.run("dc2", "start-only")

    def outbound(self, n: int, on: bool) -> None:
        self.run(f"dc{n}", "outbound", "on" if on else "off")

    def sync(self) -> None:
        self.run("dc2", "sync")

    @classmethod
    @contextmanager
    def running(cls, platform: SuitePlatform) -> Iterator[TwoDcs]:
        """Both DCs for a module's tests; DC2 stops after them, for it costs every later
        test the replication of its writes."""
        two = cls.up(platform)
        try:
            with two.restored():
                yield two
        finally:
            two.run("dc2", "stop")

    @contextmanager
    def restored(self) -> Iterator[None]:
        """Whatever a test did to the DCs, both run and replicate both ways after it."""
        try:
            yield
        finally:
            self.run("samba-start")
            self.run("dc2", "start-only")
            for n in (1, 2):
                self.platform.script(f"dc{n}", "outbound", "on")
            self.sync()
