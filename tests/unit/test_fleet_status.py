"""What ``provisioner status`` calls wrong, from what it read (pure); the reading itself
is tests/integration/test_status.py."""

from __future__ import annotations

from workers.ops.fleet_status import BOOTSTRAPPED, Dc, Queue, Status, Worker, problems

WORK, DLQ = "provisioning.work", "provisioning.dead-letter"


def well() -> Status:
    return Status(
        WORK,
        DLQ,
        queues=[Queue(WORK, 0, 2), Queue("provisioning.retry.1000ms", 3, 0), Queue(DLQ, 0, 0)],
        workers=[Worker("http://127.0.0.1:9464", live=True, ready=True)],
        dcs=[Dc("dc1.hosting.test", reachable=True, detail=BOOTSTRAPPED)],
    )


def test_a_fleet_that_consumes_with_nothing_waiting_is_well() -> None:
    assert problems(well()) == []  # messages in a retry tier are not a problem


def test_each_wrong_thing_is_one_line() -> None:
    status = well()
    status.queues = [Queue(WORK, 7, 0), Queue("provisioning.retry.1000ms", None, None)]
    status.dead_letters = {"quota_exceeded": 2, "malformed_msgpack": 1}
    status.workers = [
        Worker("http://127.0.0.1:9464", live=False, ready=False),
        Worker("http://127.0.0.1:9465", live=True, ready=False),
    ]
    status.dcs = [
        Dc("dc1.hosting.test", reachable=False, detail="unreachable: refused"),
        Dc("dc2.hosting.test", reachable=True, detail="List Object Mode is off"),
    ]
    assert problems(status) == [
        "provisioning.retry.1000ms is missing: provisioner topology apply",
        "no worker consumes provisioning.work (7 message(s) waiting)",
        "3 dead letter(s) wait for an operator (malformed_msgpack 1, quota_exceeded 2)",
        "worker http://127.0.0.1:9464 is not live (its loop is stuck, or it is gone)",
        "worker http://127.0.0.1:9465 is not ready (no broker or no DC)",
        "DC dc1.hosting.test: unreachable: refused",
        "DC dc2.hosting.test: List Object Mode is off",
    ]


def test_a_broker_that_does_not_answer_and_no_worker_endpoint() -> None:
    status = Status(WORK, DLQ, broker_error="ConnectionRefusedError(111)")
    assert problems(status) == [
        "the broker does not answer: ConnectionRefusedError(111)",
        "no worker's metrics endpoint answers",
    ]
