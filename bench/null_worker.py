"""The fleet's worker with only the directory replaced: the null-directory pipeline.

Everything else is the real worker (:class:`workers.broker.consumer.Worker`): decode and
validate, open the sealed password, the idempotency lookup, the tenant's state, the
plan and its steps, metrics, the JSON log line, the result event (confirmed) and the
ack.  The null directory answers every read with "not there", except a tenant's
settings object (so ``user.created`` plans and passes the quota), and accepts every
write without keeping it.

Run as a process: ``python -m bench.null_worker`` with the ``PROVISIONER_*`` variables
set; SIGTERM drains it like the real worker.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Mapping, Sequence
from typing import Any

from workers.broker.consumer import Worker
from workers.directory.metered import MeteredDirectory
from workers.directory.port import Changes, Directory, Entry, Scope
from workers.provisioning import names
from workers.provisioning.realm import Realm
from workers.runtime import logs
from workers.runtime.settings import Settings

# A domain SID and the provisioner's, as the real directory would give them.
DOMAIN_SID = "S-1-5-21-1000000000-2000000000-3000000000"


class NullDirectory:
    """Accepts every write and keeps none; every tenant exists and has room."""

    def __init__(self, base_dn: str) -> None:
        self._base_dn = base_dn
        self._settings_prefix = f"{names.rdn('CN', names.SETTINGS_CN)},".lower()

    @property
    def base_dn(self) -> str:
        return self._base_dn

    @property
    def configuration_nc(self) -> str:
        return f"CN=Configuration,{self._base_dn}"

    def read(self, dn: str, attributes: Sequence[str]) -> Entry | None:
        del attributes
        if not dn.lower().startswith(self._settings_prefix):
            return None
        tenant = dn.split(",", 2)[1].partition("=")[2]
        domain = f"{tenant}.example"
        return Entry(
            dn, {"msDS-Settings": [f"primary_domain={domain}", f"domains={domain}", "users=0"]}
        )

    def search(
        self, base: str, ldap_filter: str, scope: Scope, attributes: Sequence[str]
    ) -> list[Entry]:
        del base, ldap_filter, scope, attributes
        return []

    def add(self, dn: str, object_class: Sequence[str], attributes: Mapping[str, Any]) -> None:
        del dn, object_class, attributes

    def modify(self, dn: str, changes: Changes) -> None:
        del dn, changes

    def delete(self, dn: str) -> None:
        del dn

    def read_security_descriptor(self, dn: str) -> bytes | None:
        del dn
        return None

    def write_dacl(self, dn: str, descriptor: bytes) -> None:
        del dn, descriptor

    def close(self) -> None:
        """Nothing to close."""


class NullWorker(Worker):
    """The real worker, with the null directory behind the fleet's own metering."""

    def directory(self) -> Directory:
        if self._directory is None:
            self._realm = Realm(
                base_dn=self._settings.ldap_base_dn,
                domain_sid=DOMAIN_SID,
                provisioner_dn=self._settings.ldap_bind_dn,
                provisioner_sid=f"{DOMAIN_SID}-1105",
            )
            self._directory = MeteredDirectory(
                NullDirectory(self._settings.ldap_base_dn), self.metrics
            )
        return self._directory

    def _preflight(self) -> None:
        self.directory()  # nothing to check: there is no directory


def main() -> None:
    settings = Settings.from_env(os.environ)
    logs.configure(settings.log_format, settings.log_level)
    worker = NullWorker(settings)
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: worker.request_stop())
    worker.run()


if __name__ == "__main__":
    main()
