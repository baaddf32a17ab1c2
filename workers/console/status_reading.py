"""The fleet's status as ``provisioner status`` and the web page show it: the broker's
queues, the dead letters by code, each worker's own endpoint, each DC."""

from __future__ import annotations

from collections import Counter

from workers.broker import topology
from workers.broker.connection import BrokerError
from workers.broker.connection import parameters as broker_parameters
from workers.broker.dead_letter_queue import DeadLetterQueue
from workers.directory.ldap_directory import LdapDirectory
from workers.directory.port import DirectoryRefused, DirectoryUnavailable
from workers.ops import bootstrap
from workers.ops.dead_letter_view import DeadLetter
from workers.ops.fleet_status import BOOTSTRAPPED, Dc, Queue, Status, Worker, read_worker
from workers.provisioning.realm import read_realm
from workers.runtime.settings import DomainController, Settings

SCAN = 16  # ports tried from the metrics port when no --worker is given


def gather(
    settings: Settings, workers: list[str] | None, letters: list[DeadLetter] | None = None
) -> Status:
    """The fleet's status; ``letters``: the dead letters, when the caller has read them
    already (they are read here otherwise, once, if the queue holds any)."""
    status = Status(topology.WORK_QUEUE, topology.DEAD_LETTER_QUEUE)
    names = [
        topology.WORK_QUEUE,
        *topology.retry_tier_queues(settings.retry_policy),
        topology.DEAD_LETTER_QUEUE,
    ]
    try:
        broker = broker_parameters(settings)
        depth = topology.depths(broker, names)
        status.queues = [Queue(n, *(depth[n] or (None, None))) for n in names]
        if letters is None and depth[topology.DEAD_LETTER_QUEUE]:
            letters = list(DeadLetterQueue(broker).letters())
        status.dead_letters = dict(Counter(x.error_code for x in letters or []))
    except (BrokerError, OSError) as exc:
        status.broker_error = repr(exc)
    if workers:
        status.workers = [read_worker(u) or Worker(u, live=False, ready=False) for u in workers]
    elif settings.metrics_port:
        urls = [f"http://127.0.0.1:{settings.metrics_port + k}" for k in range(SCAN)]
        status.workers = [w for w in map(read_worker, urls) if w is not None]
    status.dcs = [_dc(settings, dc) for dc in settings.domain_controllers]
    return status


def _dc(settings: Settings, dc: DomainController) -> Dc:
    try:
        with LdapDirectory.connect(settings, dc) as directory:
            bootstrap.check(directory, read_realm(directory, settings.ldap_bind_dn))
    except DirectoryUnavailable as exc:
        return Dc(dc.name, reachable=False, detail=f"unreachable: {exc}")
    except (bootstrap.BootstrapError, DirectoryRefused) as exc:
        return Dc(dc.name, reachable=True, detail=str(exc))
    return Dc(dc.name, reachable=True, detail=BOOTSTRAPPED)
