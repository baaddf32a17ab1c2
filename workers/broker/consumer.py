"""The pika edge of a worker: consume, carry out each decision, ack.

A message is acked only after its copy (to a delay queue or the dead-letter queue), if
any, and its result event are confirmed by the broker: nothing is lost, and bad input
never crashes the worker nor loops.  The worker does not wait for those confirms before
it takes the next message (:mod:`workers.broker.confirms`): they arrive while it works,
and the message is acked then.  A lost broker connection is re-opened with a
capped backoff (the broker redelivers what was unacked, and the idempotency records
answer what was already applied); a failing directory makes the worker pause, with a
capped backoff, before it takes the next message.  SIGTERM drains: the message in hand
finishes, the held ones are acked once confirmed, the rest go back to the queue, and the
worker returns.
"""

from __future__ import annotations

import os
import socket
import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

import pika
import pika.exceptions
import structlog

from messages.results import RESULTS_EXCHANGE, encode_result
from workers.broker import topology
from workers.broker.confirms import Confirms, Held
from workers.broker.connection import parameters as broker_parameters
from workers.delivery.decisions import DeadLetter, Decision, Delivery, Done, Retry, decide
from workers.delivery.failures import attempt_of
from workers.delivery.session import Sessions
from workers.directory.metered import MeteredDirectory
from workers.directory.port import Directory, DirectoryUnavailable
from workers.errors import PermanentError
from workers.ops import bootstrap
from workers.provisioning.keys import KeyRing
from workers.runtime.metrics import Endpoint, Metrics
from workers.runtime.settings import Settings

ACCESS_REFUSED, NOT_FOUND = 403, 404
INACTIVITY_SECONDS = 0.5
CONFIRM_POLL_SECONDS = 0.05  # waiting only for confirms: how often to look
DRAIN_SECONDS = 30.0  # stopping: how long to wait for the confirms of the messages held
PROBE_IDLE_SECONDS = 5.0  # an idle worker reads the domain head this often: is the DC there?
BACKOFF_START = 0.5
BACKOFF_CAP = 10.0
BROKER_ERRORS = (
    pika.exceptions.AMQPConnectionError,
    pika.exceptions.AMQPChannelError,
    pika.exceptions.StreamLostError,
    pika.exceptions.ConnectionClosedByBroker,
)


class BrokerRefused(PermanentError):
    """The broker refused this account an operation the worker needs: a wrong account,
    or its permissions (``deploy/local/platform`` sets them) are missing."""

    def __init__(self, message: str) -> None:
        super().__init__("broker_refused", message)


class Backoff:
    """Doubling delays from ``start`` up to ``cap``; ``reset`` after a success."""

    def __init__(self, start: float = BACKOFF_START, cap: float = BACKOFF_CAP) -> None:
        self.start, self.cap, self.current = start, cap, 0.0

    def next(self) -> float:
        self.current = min(self.cap, self.current * 2 if self.current else self.start)
        return self.current

    def reset(self) -> None:
        self.current = 0.0


class Worker:
    """Consumes the work queue and carries out each decision.

    ``connect`` makes a new directory connection (the ldap3 edge, or an in-memory
    directory), or, for several DCs, maps each DC's name to its own; the worker meters
    them and opens them lazily through :class:`workers.delivery.session.Sessions`.
    """

    def __init__(
        self,
        settings: Settings,
        connect: Callable[[], Directory] | Mapping[str, Callable[[], Directory]],
    ) -> None:
        self._settings = settings
        self._policy = settings.retry_policy
        self._producers = settings.producers
        self._broker = broker_parameters(settings)
        self._stopping = False
        self.metrics = Metrics()
        self._sessions = Sessions(
            self._metered(connect),
            settings.ldap_bind_dn,
            KeyRing.from_settings(settings),
            settings.sam_digits,
        )
        self._directory_backoff = Backoff()
        self._consuming = False
        self._directory_ok = False  # the last use of the directory succeeded
        self._beat = time.monotonic()  # the main loop's last turn
        # Live while the loop turns: a message may hold it for a few LDAP timeouts.
        self._liveness_window = max(60.0, 6.0 * settings.ldap_timeout)
        self.name = f"{socket.gethostname()}:{os.getpid()}"
        self._log = structlog.get_logger("worker").bind(worker=self.name)

    def _metered(
        self, connect: Callable[[], Directory] | Mapping[str, Callable[[], Directory]]
    ) -> Callable[[], Directory] | dict[str, Callable[[], Directory]]:
        def metered(one: Callable[[], Directory]) -> Callable[[], Directory]:
            return lambda: MeteredDirectory(one(), self.metrics)

        if isinstance(connect, Mapping):
            return {dc: metered(one) for dc, one in connect.items()}
        return metered(connect)

    def request_stop(self) -> None:
        """Finish the message in hand, then stop (safe to call from a signal handler)."""
        self._stopping = True

    def live(self) -> bool:
        """The main loop turned lately (``/healthz``): if not, a restart would help."""
        return time.monotonic() - self._beat < self._liveness_window

    def ready(self) -> bool:
        """Consuming from the broker, and the DC answered lately (``/readyz``)."""
        return self._consuming and self._directory_ok

    def run(self) -> None:
        """Preflight, then consume until stopped, reconnecting to the broker as needed."""
        if self._settings.ldap_tls_insecure_skip_verify:
            self._log.warning(
                "ldap.tls_insecure",
                detail="PROVISIONER_LDAP_TLS_INSECURE_SKIP_VERIFY is set: the DC's certificate "
                "is not validated, so anyone on the path can pose as the DC",
            )
        endpoint = None
        if self._settings.metrics_port:
            endpoint = Endpoint(
                self.metrics,
                self._settings.metrics_port,
                live=self.live,
                ready=self.ready,
                host=self._settings.metrics_address,
            )
            endpoint.start()
            self._log.info(
                "metrics.serving", port=endpoint.port, address=self._settings.metrics_address
            )
        try:
            self._run()
        finally:
            if endpoint is not None:
                endpoint.stop()

    def _run(self) -> None:
        if not self._producers.allowed:
            self._log.warning(
                "producers.none_allowed",
                detail="PROVISIONER_PRODUCER_POLICY is empty: every message is refused",
            )
        self._preflight()
        backoff = Backoff()
        while not self._stopping:
            try:
                self._consume(backoff)
            except pika.exceptions.ChannelClosedByBroker as exc:
                if exc.reply_code == ACCESS_REFUSED:
                    raise BrokerRefused(
                        f"the broker refused this account ({exc.reply_text}): is "
                        "PROVISIONER_AMQP_URL the worker's account, with its permissions?"
                    ) from None
                delay = backoff.next()
                if exc.reply_code == NOT_FOUND:
                    self._log.warning(
                        "broker.topology_missing",
                        error=repr(exc),
                        retry_in_s=delay,
                        hint="the operator applies it: provisioner topology apply, with this "
                        "PROVISIONER_RETRY_DELAYS",
                    )
                else:
                    self._log.warning("broker.lost", error=repr(exc), retry_in_s=delay)
                self._sleep(delay)
            except BROKER_ERRORS as exc:
                delay = backoff.next()
                self._log.warning("broker.lost", error=repr(exc), retry_in_s=delay)
                self._sleep(delay)
        self._sessions.drop()

    def _preflight(self) -> None:
        backoff = Backoff()
        while True:
            self._beat = time.monotonic()
            try:
                session = self._sessions.open()
                bootstrap.check(session.directory, session.realm)
            except DirectoryUnavailable as exc:
                self._sessions.drop()
                self._directory_ok = False
                delay = backoff.next()
                self._log.warning("directory.unavailable", error=str(exc), retry_in_s=delay)
                if self._stopping:
                    return
                self._sleep(delay)
                continue
            self._directory_ok = True
            return

    def _sleep(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not self._stopping and time.monotonic() < deadline:
            self._beat = time.monotonic()
            time.sleep(min(0.1, deadline - time.monotonic()))

    def _probe(self) -> None:
        """An idle worker reads the domain head, so that ``/readyz`` tells a DC that went
        away before a message finds out (and a DC that came back)."""
        try:
            session = self._sessions.open()
            session.directory.read(session.directory.base_dn, ["objectClass"])
        except DirectoryUnavailable:
            self._sessions.drop()
            self._directory_ok = False
        else:
            self._directory_ok = True

    def _consume(self, backoff: Backoff) -> None:
        connection = pika.BlockingConnection(self._broker)
        try:
            channel = connection.channel()
            confirms = Confirms(
                connection,
                channel,
                lambda held: self._log.warning("message.given_back", reason=held.refused),
            )
            channel.basic_qos(prefetch_count=self._settings.prefetch)
            # Checked, not declared: the worker has no configure rights on the broker;
            # `provisioner topology apply` (the operator's) declares them.
            for queue in (topology.WORK_QUEUE, *topology.retry_tier_queues(self._policy)):
                channel.queue_declare(queue, passive=True)
            inbox: deque[tuple[Any, pika.BasicProperties, bytes]] = deque()
            channel.basic_consume(
                topology.WORK_QUEUE,
                on_message_callback=lambda _ch, method, props, body: inbox.append(
                    (method, props, body)
                ),
            )
            self._log.info(
                "worker.started", queue=topology.WORK_QUEUE, prefetch=self._settings.prefetch
            )
            backoff.reset()
            self._consuming = True
            idle_since = time.monotonic()
            while not self._stopping:
                self._beat = time.monotonic()
                # Writes what the last turn published, reads what came (acking what it
                # settles, and writing those acks); with nothing in hand, waits for a
                # message or for the confirms of those held.
                if inbox:
                    wait = 0.0
                else:
                    wait = INACTIVITY_SECONDS if not confirms.pending else CONFIRM_POLL_SECONDS
                connection.process_data_events(time_limit=wait)
                if inbox:
                    if self._process(confirms, *inbox.popleft()):
                        # The directory is failing: do not burn the next messages.
                        connection.process_data_events(time_limit=0)  # the copy goes now
                        self._sleep(self._directory_backoff.next())
                    idle_since = time.monotonic()
                elif not confirms.pending and self._beat - idle_since >= PROBE_IDLE_SECONDS:
                    self._probe()
                    idle_since = self._beat
            self._drain(connection, confirms)
            for method, _props, _body in inbox:  # taken from the queue, never started
                channel.basic_nack(method.delivery_tag, requeue=True)
            self._log.info("worker.stopped", returned_to_queue=len(inbox))
        finally:
            self._consuming = False
            if connection.is_open:
                connection.close()

    def _drain(self, connection: Any, confirms: Confirms) -> None:
        """Stopping: wait for the confirms of the messages held, then ack them (what is
        not confirmed by then goes back to the queue with the connection)."""
        deadline = time.monotonic() + DRAIN_SECONDS
        while confirms.pending and time.monotonic() < deadline:
            connection.process_data_events(time_limit=CONFIRM_POLL_SECONDS)

    def _process(
        self,
        confirms: Confirms,
        method: Any,
        properties: pika.BasicProperties,
        body: bytes,
    ) -> bool:
        """Decide, publish the copy and the result; return whether to pause (the
        directory is failing)."""
        headers = dict(properties.headers or {})
        delivery = Delivery(
            body,
            method.routing_key,
            properties.message_id,
            attempt_of(headers),
            properties.user_id,
            headers,
        )
        started = time.monotonic()
        self.metrics.in_flight.inc()
        try:
            decision = decide(
                delivery,
                self._sessions,
                self._policy,
                self._producers,
                worker=self.name,
                observer=self.metrics,
            )
            held = confirms.hold(method.delivery_tag)
            pause = self._carry_out(confirms, held, properties, body, decision)
        finally:
            self.metrics.in_flight.dec()
        seconds = time.monotonic() - started
        result = decision.result
        self.metrics.messages.labels(result.event_type, result.outcome.value).inc()
        self.metrics.processing.labels(result.event_type).observe(seconds)
        decision.count(self.metrics)
        decision.log(
            self._log.bind(
                message_id=properties.message_id,
                id=result.in_reply_to,
                idempotency_key=result.idempotency_key,
                type=result.event_type,
                tenant=decision.tenant,
                attempt=delivery.attempt,
                # The broker had handed it out before: its worker died, or lost its connection.
                redelivered=bool(method.redelivered),
            ),
            seconds,
        )
        if pause:
            self._directory_ok = False
            return True
        if isinstance(decision, Done):  # the directory answered it
            self._directory_ok = True
        self._directory_backoff.reset()
        return False

    def _carry_out(
        self,
        confirms: Confirms,
        held: Held,
        properties: pika.BasicProperties,
        body: bytes,
        decision: Decision,
    ) -> bool:
        """Copy and result, published with their confirms in flight (the message is acked
        once both are confirmed: :class:`Confirms`); return whether to pause after it."""
        pause = False
        match decision:
            case DeadLetter(routing_key=routing_key, body=stored, headers=headers):
                self._publish_copy(
                    confirms,
                    held,
                    topology.DEAD_LETTER_EXCHANGE,
                    routing_key,
                    stored,
                    properties,
                    headers,
                )
            case Retry(queue=queue, delay=delay, headers=headers, outage=outage):
                self._publish_copy(
                    confirms,
                    held,
                    "",
                    queue,
                    body,
                    properties,
                    headers,
                    expiration=str(round(delay * 1000)),
                )
                pause = outage
            case Done():
                pass
        self._publish_result(confirms, held, decision)
        confirms.seal(held)
        return pause

    def _publish_copy(
        self,
        confirms: Confirms,
        held: Held,
        exchange: str,
        routing_key: str,
        body: bytes,
        properties: pika.BasicProperties,
        headers: dict[str, Any],
        expiration: str | None = None,
    ) -> None:
        """Publish the body unchanged with new headers.  The copy keeps the producer's
        ``user_id``: the worker's account may (RabbitMQ's ``impersonator`` tag), so a
        retried or dead-lettered message still says who asked."""
        confirms.publish(
            held,
            exchange,
            routing_key,
            body,
            pika.BasicProperties(
                content_type=properties.content_type,
                message_id=properties.message_id,
                user_id=properties.user_id,
                delivery_mode=pika.DeliveryMode.Persistent,
                headers=headers,
                expiration=expiration,
            ),
            mandatory=True,
        )

    def _publish_result(self, confirms: Confirms, held: Held, decision: Decision) -> None:
        result = decision.result
        confirms.publish(
            held,
            RESULTS_EXCHANGE,
            result.routing_key,
            encode_result(result),
            pika.BasicProperties(
                content_type="application/msgpack",
                delivery_mode=pika.DeliveryMode.Persistent,
                correlation_id=result.in_reply_to,
            ),
        )
