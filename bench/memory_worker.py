"""The fleet's worker with the directory in memory: the pipeline without Samba.

Everything is the real worker (:class:`workers.broker.consumer.Worker`), handed a
directory factory as the ``provisioner worker`` command hands it the ldap3 edge: decode
and validate, the producer check, open the sealed password, the idempotency lookup and
record, the tenant's state, the plan and its steps, metrics, the JSON log line, the
result event (confirmed) and the ack.  The directory is
:class:`workers.directory.memory.MemoryDirectory`, bootstrapped like a real one, with the
bench's tenants (``bench-0`` ... ``bench-49``, no quota) created through the engine at
start; it keeps what the jobs write, so every lookup searches a directory that grows.

``--forget`` keeps the tenants but accepts every later write below ``OU=Tenants`` and
in the records container without keeping it: for the RSS benchmark, which measures the
worker's own memory, not the directory's growth.

Run as a process: ``python -m bench.memory_worker [--forget]`` with the ``PROVISIONER_*``
variables set; SIGTERM drains it like the real worker.
"""

from __future__ import annotations

import argparse
import cProfile
import dataclasses
import os
import signal
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from bench.common import PASSWORD
from messages.envelope import Envelope
from messages.events import AdminAccount, TenantCreated
from workers.broker.consumer import Worker
from workers.delivery import idempotency
from workers.directory.port import Changes, Delegating, Directory
from workers.ops.memory_domain import memory_domain
from workers.provisioning import engine, names
from workers.provisioning.steps import Context, job_tag
from workers.runtime import logs
from workers.runtime.settings import Settings

TENANTS = 50


class Forgetful(Delegating):
    """Reads as the directory holds them; writes below ``bases`` accepted and not kept."""

    def __init__(self, real: Directory, bases: Sequence[str]) -> None:
        super().__init__(real)
        self._suffixes = tuple("," + b.lower() for b in bases)  # as the fleet spells DNs

    def _kept(self, dn: str) -> bool:
        return not dn.lower().endswith(self._suffixes)

    def add(self, dn: str, object_class: Sequence[str], attributes: Mapping[str, Any]) -> None:
        if self._kept(dn):
            self.real.add(dn, object_class, attributes)

    def modify(self, dn: str, changes: Changes) -> None:
        if self._kept(dn):
            self.real.modify(dn, changes)

    def delete(self, dn: str) -> None:
        if self._kept(dn):
            self.real.delete(dn)


def bench_domain(tenants: int = TENANTS) -> tuple[Directory, str, str]:
    """A bootstrapped memory domain with the bench's tenants: (directory, base, fleet DN)."""
    domain = memory_domain()
    directory, realm = domain.directory, domain.realm
    for i in range(tenants):
        tenant = f"bench-{i}"
        created = Envelope(
            id=f"{tenant}-created",
            idempotency_key=f"{tenant}-created",
            occurred_at=datetime.now(UTC),
            data=TenantCreated(
                tenant=tenant,
                name=f"Bench {i}",
                domains=(f"{tenant}.example",),
                admin=AdminAccount(
                    username="admin", given_name="Bench", surname="Admin", password=b"sealed"
                ),
            ),
        )
        ctx = Context(
            realm=realm,
            tag=job_tag(created.idempotency_key),
            unseal=lambda _sealed, _path: PASSWORD,
            seal_for_results=None,
        )
        engine.handle(created, directory, ctx)
    return directory, realm.base_dn, realm.provisioner_dn


def bench_setting(*, forget: bool) -> tuple[Directory, Settings]:
    """The bench's domain (``forget``: keeping no write after the start) and the settings
    of a worker on it, from the ``PROVISIONER_*`` variables."""
    directory, base, fleet = bench_domain()
    if forget:
        directory = Forgetful(directory, [names.tenants_dn(base), idempotency.container_dn(base)])
    settings = dataclasses.replace(
        Settings.from_env(os.environ), ldap_base_dn=base, ldap_bind_dn=fleet
    )
    return directory, settings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--forget", action="store_true", help="keep no write after the start")
    parser.add_argument("--profile", metavar="FILE", help="run under cProfile; stats to FILE")
    args = parser.parse_args()
    directory, settings = bench_setting(forget=args.forget)
    logs.configure(settings.log_format, settings.log_level)
    worker = Worker(settings, lambda: directory)
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: worker.request_stop())
    if not args.profile:
        worker.run()
        return
    profiler = cProfile.Profile()
    profiler.runcall(worker.run)
    profiler.dump_stats(args.profile)


if __name__ == "__main__":
    main()
