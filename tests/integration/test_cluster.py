"""A RabbitMQ cluster of three nodes on loopback (``deploy/local/platform cluster``): the
fleet's quorum queues are replicated on all three, and the node that leads the work
queue is stopped mid-run.  Nothing is lost and nothing is applied twice: every user is
in the DC exactly once, every message is answered, the dead-letter queue stays empty,
and the workers (the same processes throughout) reconnected through the list of nodes.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import ldap3
import pika
import pika.exceptions
import pytest

from messages import amqp
from messages.events import CATALOGUE
from messages.results import Outcome, decode_result
from tests.support import engine
from tests.support.platform import SuitePlatform, fleet, wait_for

USERS = 300
TENANTS = 5
PASSWORD = "Cluster-Passw0rd!"
WORK = "provisioning.work"
RESULTS = "test.cluster.results"
FINAL = {Outcome.SUCCEEDED, Outcome.DUPLICATE, Outcome.DEAD_LETTERED}


@pytest.fixture(scope="module")
def cluster(platform: SuitePlatform) -> Iterator[str]:
    """The cluster's URLs (guest on its own vhost), and its topology applied."""
    up = platform.script("cluster", "up")
    assert up.returncode == 0, up.stderr
    urls = platform.script("cluster", "urls").stdout.strip()
    try:
        applied = platform.provisioner(
            "topology", "apply", overrides={"PROVISIONER_AMQP_URL": urls}
        )
        assert applied.returncode == 0, applied.stderr
        yield urls
    finally:
        platform.script("cluster", "down")


def leader(platform: SuitePlatform, queue: str) -> int:
    done = platform.script("cluster", "leader", queue)
    assert done.returncode == 0, done.stderr
    return int(done.stdout.strip())


def members(platform: SuitePlatform, queue: str) -> list[str]:
    done = platform.script("cluster", "members", queue)
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


class Answers:
    """The results of the run, read from a quorum queue of the test's own through any node
    that answers; each acked once tallied."""

    def __init__(self, urls: str) -> None:
        self.nodes = amqp.endpoints(urls)
        self.final: dict[str, Outcome] = {}
        self.times: list[datetime] = []  # when each final answer was made (its occurred_at)
        self.retries = 0
        with self._channel() as channel:
            channel.queue_declare(RESULTS, durable=True, arguments={"x-queue-type": "quorum"})
            channel.queue_bind(RESULTS, "provisioning.results", routing_key="#")
            channel.queue_purge(RESULTS)

    @contextlib.contextmanager
    def _channel(self) -> Iterator[pika.adapters.blocking_connection.BlockingChannel]:
        connection = pika.BlockingConnection(self.nodes)
        try:
            yield connection.channel()
        finally:
            with contextlib.suppress(pika.exceptions.AMQPError, OSError):
                connection.close()

    def count(self) -> int:
        with contextlib.suppress(pika.exceptions.AMQPError, OSError), self._channel() as ch:
            while True:
                method, _, body = ch.basic_get(RESULTS, auto_ack=False)
                if method is None:
                    break
                result = decode_result(body)
                if result.outcome is Outcome.RETRY_SCHEDULED:
                    self.retries += 1
                elif result.in_reply_to and result.outcome in FINAL:
                    self.final[result.in_reply_to] = result.outcome
                    self.times.append(result.occurred_at)
                ch.basic_ack(method.delivery_tag)
        return len(self.final)

    def depth(self, queue: str) -> int:
        with self._channel() as channel:
            return int(channel.queue_declare(queue, passive=True).method.message_count)


def test_the_fleets_queues_are_replicated_on_all_three_nodes(
    platform: SuitePlatform, cluster: str
) -> None:
    del cluster
    nodes = ["pc1@localhost", "pc2@localhost", "pc3@localhost"]
    for queue in (WORK, "provisioning.dead-letter"):
        assert members(platform, queue) == nodes


def test_the_work_queues_leader_stopped_mid_run_loses_and_duplicates_nothing(
    platform: SuitePlatform, cluster: str, admin: ldap3.Connection, tmp_path: Path
) -> None:
    tenants = [engine.create_tenant(platform, "cl", PASSWORD) for _ in range(TENANTS)]
    answers = Answers(cluster)
    lines = [
        json.dumps(
            {
                "type": "user.created",
                "idempotency_key": f"{t}-u{n}",
                "data": {
                    "tenant": t,
                    "username": f"u{n:03d}",
                    "given_name": "C",
                    "surname": str(n),
                },
            }
        )
        for n in range(USERS // TENANTS)
        for t in tenants
    ]
    events = tmp_path / "users.jsonl"
    events.write_text("\n".join(lines) + "\n")
    # The workers connect to the work queue's leader first: stopping it takes both their
    # connections and the queue's leader at once, the worst case.
    first = leader(platform, WORK)
    urls = cluster.split(",")
    urls = [urls[first - 1], *(u for n, u in enumerate(urls, 1) if n != first)]
    overrides = {
        "PROVISIONER_AMQP_URL": ",".join(urls),
        "PROVISIONER_PRODUCER_POLICY": f"guest={','.join(sorted(CATALOGUE))}",
        "PROVISIONER_RETRY_DELAYS": "1,2,4",
        "PROVISIONER_RETRY_ATTEMPTS": "12",
    }
    published = platform.provisioner("publish", "--file", str(events), overrides=overrides)
    assert published.returncode == 0, published.stderr
    stopped: int | None = None
    with fleet(platform, tmp_path / "fleet.log", 2, overrides) as running:
        pids = sorted(running.children())
        wait_for(lambda: answers.count() >= USERS // 5, 120, interval=0.2)
        at = answers.count()
        stopped = leader(platform, WORK)
        assert stopped == first
        down = platform.script("cluster", "stop-node", str(stopped))
        assert down.returncode == 0, down.stderr
        began, stopped_at = time.monotonic(), datetime.now(UTC)
        try:
            wait_for(lambda: answers.count() >= USERS, 240, interval=0.5)
            recovered = time.monotonic() - began
        finally:
            again = platform.script("cluster", "start-node", str(stopped))
            assert again.returncode == 0, again.stderr
        new_leader = leader(platform, WORK)
        assert sorted(running.children()) == pids  # no worker had to be restarted
        lost = running.events("broker.lost")
    assert USERS // 10 <= at <= USERS * 9 // 10, f"the stop landed at {at}/{USERS}"
    assert lost  # the workers saw their node go, and came back through the list
    assert new_leader != stopped  # the queue failed over to another node's replica
    # Nothing lost, nothing twice: each user exactly once in the DC...
    names: list[str] = []
    for tenant in tenants:
        admin.search(
            f"OU={tenant},OU=Tenants,DC=hosting,DC=test",
            "(&(objectClass=user)(!(cn=admin)))",
            ldap3.LEVEL,
            attributes=["cn"],
        )
        names += [
            f"{tenant}/{r['attributes']['cn']}"
            for r in admin.response
            if r.get("type") == "searchResEntry"
        ]
    assert len(names) == USERS
    assert len(set(names)) == USERS
    # ...every message answered for good, none dead-lettered.
    assert len(answers.final) == USERS
    assert set(answers.final.values()) <= {Outcome.SUCCEEDED, Outcome.DUPLICATE}
    assert answers.depth("provisioning.dead-letter") == 0
    assert answers.depth(WORK) == 0
    # The failover, as the answers show it: the longest pause between two answers from the
    # stop on (prefetched messages may still be answered right after it).
    after = sorted(t for t in answers.times if t >= stopped_at)
    pauses = [(b - a).total_seconds() for a, b in zip([stopped_at, *after], after, strict=False)]
    failover = max(pauses)
    print(
        f"cluster: node pc{stopped} (leader of {WORK}) stopped at {at}/{USERS} answered; "
        f"next answer {failover:.1f} s after, all {USERS} {recovered:.1f} s after; "
        f"{answers.retries} retries; "
        f"leader now pc{new_leader}"
    )
