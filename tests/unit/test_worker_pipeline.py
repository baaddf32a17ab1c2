"""The worker's pipeline, step by step, on a recording stand-in for pika's blocking
channel (``basic_publish`` returns once confirmed, as it does in confirm mode): the next
message's directory work starts before the last one's result is published, and no
message is acked before its copy and its result are confirmed.  The real broker and DC
carry the same guarantees in tests/integration (test_confirm_window, test_faults,
test_reliability)."""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Any

import pika
import pytest

from messages.results import Outcome, Result
from workers.broker import consumer
from workers.delivery.decisions import Decision, Delivery, Done, Retry
from workers.delivery.failures import Failure
from workers.directory.port import Directory
from workers.runtime.settings import Settings

Event = tuple[str, str, str]  # (what, message id, where)


class Method:
    def __init__(self, tag: int) -> None:
        self.delivery_tag = tag
        self.routing_key = "user.created"
        self.redelivered = False


class Recorder:
    """The connection and the channel at once: what the worker did, in order."""

    def __init__(self, count: int, log: list[Event], lock: threading.Lock) -> None:
        self.waiting = deque(
            (Method(n), pika.BasicProperties(message_id=f"m{n}", headers={}), b"x")
            for n in range(1, count + 1)
        )
        self.inbox: deque[Any] | None = None
        self.log, self.lock = log, lock

    def process_data_events(self, time_limit: float) -> None:
        del time_limit
        assert self.inbox is not None
        while self.waiting:  # the broker hands out everything (a large prefetch)
            self.inbox.append(self.waiting.popleft())

    def basic_publish(
        self,
        exchange: str,
        routing_key: str,
        body: bytes,
        properties: pika.BasicProperties,
        mandatory: bool = False,
    ) -> None:
        del body, mandatory
        time.sleep(0.01)  # the confirm's round trip
        answered = properties.correlation_id or properties.message_id
        with self.lock:
            self.log.append(("confirmed", answered, exchange or routing_key))

    def basic_ack(self, tag: int) -> None:
        with self.lock:
            self.log.append(("ack", f"m{tag}", ""))


def decision_for(delivery: Delivery) -> Decision:
    result = Result(Outcome.SUCCEEDED, "user.created", delivery.message_id, "k", 1)
    if delivery.message_id == "m2":
        failure = Failure("directory_unavailable", "down")
        retry = Result(Outcome.RETRY_SCHEDULED, "user.created", "m2", "k", 1)
        return Retry(retry, "t", failure, queue="q.retry", delay=1.0, headers={}, outage=False)
    return Done(result, "t", "dc1")


def no_directory() -> Directory:
    raise AssertionError("the stand-in decides: no directory is opened")


@pytest.fixture
def run(monkeypatch: pytest.MonkeyPatch) -> tuple[list[Event], Recorder]:
    log: list[Event] = []
    lock = threading.Lock()

    def fake_decide(delivery: Delivery, *args: Any, **kwargs: Any) -> Decision:
        del args, kwargs
        with lock:
            log.append(("decide", str(delivery.message_id), ""))
        time.sleep(0.02)  # the directory's work
        return decision_for(delivery)

    monkeypatch.setattr(consumer, "decide", fake_decide)
    settings = Settings(amqp_url="amqp://u:p@127.0.0.1:5672/%2F", metrics_port=0)
    worker = consumer.Worker(settings, no_directory)
    recorder = Recorder(4, log, lock)
    inbox: deque[Any] = deque()
    recorder.inbox = inbox
    jobs: list[consumer._Job] = []

    def stop_when_done() -> None:
        while len([e for e in log if e[0] == "ack"]) < 4:
            time.sleep(0.005)
        worker.request_stop()

    stopper = threading.Thread(target=stop_when_done)
    stopper.start()
    worker._pipeline(recorder, recorder, inbox, jobs)
    stopper.join()
    return log, recorder


def test_each_message_is_acked_only_after_its_copy_and_result_are_confirmed(
    run: tuple[list[Event], Recorder],
) -> None:
    log, _ = run
    for n in range(1, 5):
        ack = next(i for i, e in enumerate(log) if e[:2] == ("ack", f"m{n}"))
        confirmed = [i for i, e in enumerate(log) if e[:2] == ("confirmed", f"m{n}")]
        assert confirmed, f"m{n}'s result was published"
        assert max(confirmed) < ack, log
    # m2 was retried: its copy to the retry queue and its result, both before its ack.
    m2 = [e[2] for e in log if e[:2] == ("confirmed", "m2")]
    assert m2 == ["q.retry", "provisioning.results"]


def test_the_next_message_is_decided_while_the_last_ones_result_is_confirmed(
    run: tuple[list[Event], Recorder],
) -> None:
    log, _ = run
    at = {e[:2]: i for i, e in enumerate(log)}
    # m2's directory work starts before m1 is acked, and so on down the line...
    for n in range(1, 4):
        assert at[("decide", f"m{n + 1}")] < at[("ack", f"m{n}")], log
    # ...in the order received, one at a time.
    assert [e[1] for e in log if e[0] == "decide"] == ["m1", "m2", "m3", "m4"]
