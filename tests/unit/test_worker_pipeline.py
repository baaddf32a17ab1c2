"""The worker's loop on a recording stand-in for pika's blocking connection, whose broker
confirms a publish only at the second poll after it (one writes it, the confirm comes
back with the next, as on a real broker where a confirm takes a round trip and a
quorum write): the worker takes the next message without
waiting for the last one's confirms, acks a message only once its copy and result are
confirmed, and gives back (requeues) one whose copy the broker returned or whose publish
it refused.  The real broker and DC carry the same guarantees in tests/integration
(test_confirm_window, test_faults, test_reliability)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pika
import pytest
from pika.spec import Basic

from messages.results import Outcome, Result
from workers.broker import consumer
from workers.delivery.decisions import Decision, Delivery, Done, Retry
from workers.delivery.failures import Failure
from workers.directory.port import Directory
from workers.runtime.settings import Settings

Event = tuple[str, str]  # (what, message id)


class Method:
    def __init__(self, tag: int) -> None:
        self.delivery_tag = tag
        self.routing_key = "user.created"
        self.redelivered = False


class Frame:
    def __init__(self, method: Any) -> None:
        self.method = method


class Broker:
    """Connection, channel and the channel's impl at once; it confirms (or refuses) each
    publish at the second poll after it, and returns an unroutable mandatory one first."""

    def __init__(
        self,
        count: int,
        log: list[Event],
        unroutable: str = "",
        nack: str = "",
        at_once: str = "",
    ) -> None:
        self.log = log
        self.unroutable, self.nack = unroutable, nack
        self.at_once = bool(at_once)  # confirm while still in basic_publish, as pika may
        self.polls = 0
        self.to_deliver = [
            (Method(n), pika.BasicProperties(message_id=f"m{n}", headers={}), b"x")
            for n in range(1, count + 1)
        ]
        self.count = count
        self.published: list[tuple[int, str, str, pika.BasicProperties, bool]] = []
        self.confirmed = 0
        self.written = 0  # publishes written by the last poll: confirmed at the next one
        self.on_message: Callable[..., None] | None = None
        self.on_confirm: Callable[[Any], None] | None = None
        self.on_return: Callable[..., None] | None = None
        self.stop: Callable[[], None] = lambda: None
        self.is_open = True
        self._impl = self

    # the connection
    def channel(self) -> Broker:
        return self

    def close(self) -> None:
        self.is_open = False

    def process_data_events(self, time_limit: float) -> None:
        del time_limit
        self.polls += 1
        if self.polls > 1000:  # a confirm was lost: the worker would wait for ever
            self.stop()
        self._confirm(self.written)
        self.written = len(self.published)
        if self.on_message is not None:
            while self.to_deliver:
                self.on_message(self, *self.to_deliver.pop(0))
        settled = sum(1 for what, _ in self.log if what in {"ack", "given back"})
        if settled == self.count:
            self.stop()

    def _confirm(self, upto: int) -> None:
        assert self.on_confirm is not None
        assert self.on_return is not None
        for seq, exchange, key, props, mandatory in self.published[self.confirmed : upto]:
            ident = props.correlation_id or props.message_id
            if mandatory and ident == self.unroutable:
                method = Basic.Return(312, "NO_ROUTE", exchange, key)
                self.on_return(self, method, props, b"x")
            refused = ident == self.nack and exchange == "provisioning.results"
            kind = Basic.Nack if refused else Basic.Ack
            self.log.append(("nacked" if refused else "confirmed", ident))
            self.on_confirm(Frame(kind(delivery_tag=seq, multiple=False)))
        self.confirmed = max(self.confirmed, upto)

    # the channel's impl (confirm mode)
    def confirm_delivery(self, ack_nack_callback: Any, callback: Any) -> None:
        self.on_confirm = ack_nack_callback
        callback(None)

    def add_on_return_callback(self, callback: Any) -> None:
        self.on_return = callback

    # the channel
    def basic_qos(self, prefetch_count: int) -> None:
        del prefetch_count

    def queue_declare(self, queue: str, passive: bool) -> None:
        del queue, passive

    def basic_consume(self, queue: str, on_message_callback: Any) -> None:
        del queue
        self.on_message = on_message_callback

    def basic_publish(
        self,
        exchange: str,
        routing_key: str,
        body: bytes,
        properties: pika.BasicProperties,
        mandatory: bool = False,
    ) -> None:
        del body
        self.published.append(
            (len(self.published) + 1, exchange, routing_key, properties, mandatory)
        )
        if self.at_once:
            self._confirm(len(self.published))

    def basic_ack(self, delivery_tag: int) -> None:
        self.log.append(("ack", f"m{delivery_tag}"))

    def basic_nack(self, delivery_tag: int, requeue: bool) -> None:
        assert requeue
        self.log.append(("given back", f"m{delivery_tag}"))


def decision_for(delivery: Delivery) -> Decision:
    """m2 is retried (a copy to a retry queue, mandatory); the others succeed."""
    if delivery.message_id == "m2":
        failure = Failure("tenant_not_ready", "later")
        retry = Result(Outcome.RETRY_SCHEDULED, "user.created", "m2", "k", 1)
        return Retry(retry, "t", failure, queue="q.retry", delay=1.0, headers={}, outage=False)
    result = Result(Outcome.SUCCEEDED, "user.created", delivery.message_id, "k", 1)
    return Done(result, "t", "dc1")


def no_directory() -> Directory:
    raise AssertionError("the stand-in decides: no directory is opened")


Run = Callable[..., list[Event]]


@pytest.fixture
def run(monkeypatch: pytest.MonkeyPatch) -> Run:
    def go(**broker_options: str) -> list[Event]:
        log: list[Event] = []

        def fake_decide(delivery: Delivery, *args: Any, **kwargs: Any) -> Decision:
            del args, kwargs
            log.append(("decide", str(delivery.message_id)))
            return decision_for(delivery)

        broker = Broker(4, log, **broker_options)
        monkeypatch.setattr(consumer, "decide", fake_decide)
        monkeypatch.setattr(pika, "BlockingConnection", lambda _params: broker)
        settings = Settings(amqp_url="amqp://u:p@127.0.0.1:5672/%2F", metrics_port=0)
        worker = consumer.Worker(settings, no_directory)
        broker.stop = worker.request_stop
        worker._consume(consumer.Backoff())
        return log

    return go


def test_the_next_message_is_taken_before_the_last_ones_confirms(run: Run) -> None:
    log = run()
    at = {e: i for i, e in enumerate(log)}
    for n in range(1, 4):
        assert at[("decide", f"m{n + 1}")] < at[("confirmed", f"m{n}")], log
    assert [m for what, m in log if what == "decide"] == ["m1", "m2", "m3", "m4"]


def test_each_message_is_acked_only_once_its_copy_and_result_are_confirmed(run: Run) -> None:
    log = run()
    for n in range(1, 5):
        confirmed = [i for i, e in enumerate(log) if e == ("confirmed", f"m{n}")]
        assert len(confirmed) == (2 if n == 2 else 1), log  # m2: its copy and its result
        assert max(confirmed) < log.index(("ack", f"m{n}")), log
    assert [m for what, m in log if what == "ack"] == ["m1", "m2", "m3", "m4"]


def test_a_returned_copy_gives_its_message_back(run: Run) -> None:
    log = run(unroutable="m2")  # its retry queue is missing
    assert ("given back", "m2") in log
    assert ("ack", "m2") not in log
    assert [m for what, m in log if what == "ack"] == ["m1", "m3", "m4"]


def test_a_refused_result_gives_its_message_back(run: Run) -> None:
    log = run(nack="m3")
    assert ("given back", "m3") in log
    assert ("ack", "m3") not in log


def test_a_confirm_read_while_still_publishing_is_not_lost(run: Run) -> None:
    """pika reads while it writes: the broker's ack of a publish may be handled before
    basic_publish returns (seen on the real broker, on loopback)."""
    log = run(at_once="yes")
    assert [m for what, m in log if what == "ack"] == ["m1", "m2", "m3", "m4"]


def test_a_copy_confirmed_at_once_does_not_ack_before_the_result_is_published(run: Run) -> None:
    """m2's copy may be confirmed before its result is even published: the message is
    acked only once both are, never on the copy's confirm alone."""
    log = run(at_once="yes")
    for n in range(1, 5):
        confirmed = [i for i, e in enumerate(log) if e == ("confirmed", f"m{n}")]
        assert len(confirmed) == (2 if n == 2 else 1), log
        assert max(confirmed) < log.index(("ack", f"m{n}")), log
