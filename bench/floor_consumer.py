"""The fair floor of the pipeline: the fleet's work for each message done inline on raw
pika, with no framework at all.

For each message, what the fleet's worker does for a ``user.created`` that succeeds,
and only that: decode and validate with :mod:`messages`, the idempotency lookup, open
the sealed password (through the same key ring), plan and apply against the same
in-memory directory (:func:`bench.memory_worker.bench_domain`), write the idempotency
record (its payload hash included), publish the result event and wait for its confirm,
ack.  Left out: the producer policy, the session and its DC pinning, the retry and
dead-letter paths, metrics, the log line.  The gap between the worker and this floor is
the fleet's own overhead.

``python -m bench.floor_consumer [--forget]`` with the ``PROVISIONER_*`` variables set
(as ``bench.memory_worker``); stops on SIGTERM.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import signal

import pika

from bench.memory_worker import Forgetful, bench_domain
from messages.envelope import decode
from messages.results import RESULTS_EXCHANGE, Outcome, Result, encode_result
from workers.broker import topology
from workers.broker.connection import parameters
from workers.delivery import idempotency
from workers.provisioning import engine, names
from workers.provisioning.keys import KeyRing
from workers.provisioning.realm import read_realm
from workers.runtime.settings import Settings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--forget", action="store_true", help="keep no write after the start")
    args = parser.parse_args()
    directory, base, fleet = bench_domain()
    if args.forget:
        directory = Forgetful(directory, [names.tenants_dn(base), idempotency.container_dn(base)])
    settings = dataclasses.replace(
        Settings.from_env(os.environ), ldap_base_dn=base, ldap_bind_dn=fleet
    )
    realm = read_realm(directory, fleet)
    ring = KeyRing.from_settings(settings)
    ledger = idempotency.Ledger(directory, base)
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    connection = pika.BlockingConnection(parameters(settings))
    channel = connection.channel()
    channel.confirm_delivery()
    channel.basic_qos(prefetch_count=settings.prefetch)
    for method, properties, body in channel.consume(topology.WORK_QUEUE, inactivity_timeout=0.5):
        if stopping:
            break
        if method is None:
            continue
        envelope = decode(body)
        found = ledger.lookup(envelope)
        if found.record is None:
            ctx = ring.context(realm, envelope.idempotency_key, settings.sam_digits)
            details = engine.handle(envelope, directory, ctx)
            ledger.record(envelope, details, producer=properties.user_id or "")
        else:
            details = found.record.details
        result = Result(
            Outcome.SUCCEEDED, envelope.type, envelope.id, envelope.idempotency_key, 1, details
        )
        channel.basic_publish(
            RESULTS_EXCHANGE,
            result.routing_key,
            encode_result(result),
            pika.BasicProperties(
                content_type="application/msgpack",
                delivery_mode=pika.DeliveryMode.Persistent,
                correlation_id=result.in_reply_to,
            ),
        )
        channel.basic_ack(method.delivery_tag)
    channel.cancel()
    connection.close()


if __name__ == "__main__":
    main()
