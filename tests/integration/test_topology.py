"""The topology: the exported definitions file is true, and importable into RabbitMQ."""

from __future__ import annotations

import json
import urllib.parse

import pika
import pika.exceptions
import pytest

from bench.common import rabbitmqctl
from tests.support.platform import REPO, SuitePlatform, wait_for
from workers.broker import topology
from workers.runtime.settings import Settings

SCRATCH = "/provisioning-definitions-test"


def test_the_committed_definitions_file_is_what_apply_declares() -> None:
    committed = json.loads((REPO / "deploy" / "rabbitmq" / "definitions.json").read_text())
    assert committed == topology.definitions("/provisioning", Settings().retry_policy)


def test_the_definitions_import_and_match_the_declared_arguments(
    platform: SuitePlatform,
) -> None:
    del platform
    policy = Settings().retry_policy
    document = json.dumps(topology.definitions(SCRATCH, policy))
    rabbitmqctl("delete_vhost", SCRATCH)
    try:
        # On standard input: the broker (user rabbitmq) cannot read the test's tmp files.
        imported = rabbitmqctl("import_definitions", stdin=document)
        assert imported.returncode == 0, imported.stdout + imported.stderr
        expected = {q["name"] for q in json.loads(document)["queues"]}

        def imported_queues() -> set[str]:  # the import runs asynchronously in the broker
            listed = rabbitmqctl("list_queues", "-p", SCRATCH, "name", "--no-table-headers")
            return set(listed.stdout.split()) if listed.returncode == 0 else set()

        wait_for(lambda: imported_queues() == expected, 30, interval=0.5)
        granted = rabbitmqctl("set_permissions", "-p", SCRATCH, "guest", ".*", ".*", ".*")
        assert granted.returncode == 0, granted.stderr
        url = "amqp://guest:guest@127.0.0.1:5672/" + urllib.parse.quote(SCRATCH, safe="")
        connection = pika.BlockingConnection(pika.URLParameters(url))
        try:
            # Declaring again with the project's own arguments: a mismatch would be a 406.
            topology.declare(connection.channel(), policy)
            channel = connection.channel()
            with pytest.raises(pika.exceptions.ChannelClosedByBroker) as info:
                channel.queue_declare(
                    topology.WORK_QUEUE, durable=True, arguments={"x-queue-type": "classic"}
                )
            assert info.value.reply_code == 406  # the control: a real mismatch is refused
        finally:
            if connection.is_open:
                connection.close()
    finally:
        rabbitmqctl("delete_vhost", SCRATCH)
