"""The pika edge of a worker: consume, hand each message to the engine, ack or dead-letter.

A message is acked only after its effect is in the directory (or its copy is confirmed
in the dead-letter exchange) and its result event is confirmed in
``provisioning.results``: nothing is lost, and bad input never crashes the worker nor
loops.  SIGTERM drains: the message in hand finishes, the rest are
returned to the queue, and the worker exits.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable
from typing import Any

import pika
import pika.exceptions
import structlog

from messages.envelope import decode
from messages.errors import ContractError
from messages.results import (
    RESULTS_EXCHANGE,
    UNKNOWN_TYPE,
    Outcome,
    Result,
    ResultError,
    encode_result,
)
from workers import bootstrap, dead_letters, engine, topology
from workers.directory import Directory, DirectoryRefused, DirectoryUnavailable
from workers.keys import KeyRing
from workers.ldap_directory import LdapDirectory
from workers.realm import Realm, read_realm
from workers.settings import Settings

INACTIVITY_SECONDS = 0.5
DIRECTORY_RETRY_SECONDS = 1.0


class Worker:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._stopping = False
        self._directory: Directory | None = None
        self._realm: Realm | None = None
        self._keys = KeyRing.from_settings(settings)
        self.name = f"{socket.gethostname()}:{os.getpid()}"
        self._log = structlog.get_logger("worker").bind(worker=self.name)

    def request_stop(self) -> None:
        """Finish the message in hand, then stop (safe to call from a signal handler)."""
        self._stopping = True

    def run(self) -> None:
        directory, realm = self._connected_directory()
        bootstrap.check(directory, realm)  # preflight: refuse to start on a wrong directory
        connection = pika.BlockingConnection(pika.URLParameters(self._settings.amqp_url))
        channel = connection.channel()
        channel.confirm_delivery()
        channel.basic_qos(prefetch_count=self._settings.prefetch)
        channel.queue_declare(topology.WORK_QUEUE, passive=True)
        self._log.info(
            "worker.started", queue=topology.WORK_QUEUE, prefetch=self._settings.prefetch
        )
        try:
            for method, properties, body in channel.consume(
                topology.WORK_QUEUE, inactivity_timeout=INACTIVITY_SECONDS
            ):
                if self._stopping:
                    break
                if method is None:
                    continue
                self._process(channel, method, properties, body)
            returned = channel.cancel()
            self._log.info("worker.stopped", returned_to_queue=returned)
        finally:
            if connection.is_open:
                connection.close()
            if self._directory is not None:
                self._directory.close()

    def _connected_directory(self) -> tuple[Directory, Realm]:
        if self._directory is None or self._realm is None:
            directory = LdapDirectory.connect(self._settings)
            self._realm = read_realm(directory, self._settings.ldap_bind_dn)
            self._directory = directory
        return self._directory, self._realm

    def _process(
        self, channel: Any, method: Any, properties: pika.BasicProperties, body: bytes
    ) -> None:
        log = self._log.bind(message_id=properties.message_id, routing_key=method.routing_key)
        attempt = _attempt(properties)
        try:
            envelope = decode(body)
        except ContractError as exc:
            self._dead_letter(
                channel, method, properties, body, code=exc.code, message=str(exc), tenant=None
            )
            self._publish_result(
                channel,
                Result(
                    Outcome.DEAD_LETTERED,
                    UNKNOWN_TYPE,
                    properties.message_id,
                    None,
                    attempt,
                    error=ResultError(exc.code, str(exc)),
                ),
            )
            channel.basic_ack(method.delivery_tag)
            log.warning("message.dead_lettered", error_code=exc.code, error=str(exc))
            return
        log = log.bind(
            id=envelope.id,
            idempotency_key=envelope.idempotency_key,
            type=envelope.type,
            tenant=envelope.tenant,
            attempt=attempt,
        )

        def result(outcome: Outcome, **kwargs: Any) -> Result:
            return Result(
                outcome, envelope.type, envelope.id, envelope.idempotency_key, attempt, **kwargs
            )

        started = time.monotonic()
        try:
            directory, realm = self._connected_directory()
            ctx = self._keys.context(realm, envelope.idempotency_key, self._settings.sam_digits)
            details = engine.handle(envelope, directory, ctx)
        except DirectoryUnavailable as exc:
            log.warning("directory.unavailable", error=str(exc))
            self._directory = None
            self._publish_result(
                channel,
                result(
                    Outcome.RETRY_SCHEDULED,
                    details={"delay_s": DIRECTORY_RETRY_SECONDS},
                    error=ResultError("directory_unavailable", str(exc)),
                ),
            )
            time.sleep(DIRECTORY_RETRY_SECONDS)
            channel.basic_nack(method.delivery_tag, requeue=True)
            return
        except (engine.PermanentError, DirectoryRefused, ContractError) as exc:
            code = (
                exc.code
                if isinstance(exc, engine.PermanentError | ContractError)
                else (f"ldap_{exc.result}")
            )
            self._fail(channel, method, properties, body, result, code, str(exc), envelope.tenant)
            log.warning("message.dead_lettered", error_code=code, error=str(exc))
            return
        except Exception as exc:  # a bug must not kill the worker; keep the message
            log.exception("message.failed")
            self._fail(
                channel,
                method,
                properties,
                body,
                result,
                "internal_error",
                repr(exc),
                envelope.tenant,
            )
            return
        self._publish_result(channel, result(Outcome.SUCCEEDED, details=details))
        channel.basic_ack(method.delivery_tag)
        log.info("message.succeeded", duration_s=round(time.monotonic() - started, 4), **details)

    def _fail(
        self,
        channel: Any,
        method: Any,
        properties: pika.BasicProperties,
        body: bytes,
        result: Callable[..., Result],
        code: str,
        message: str,
        tenant: str,
    ) -> None:
        self._dead_letter(
            channel, method, properties, body, code=code, message=message, tenant=tenant
        )
        self._publish_result(
            channel, result(Outcome.DEAD_LETTERED, error=ResultError(code, message))
        )
        channel.basic_ack(method.delivery_tag)

    def _publish_result(self, channel: Any, result: Result) -> None:
        """Publish ``result``; returns once the broker confirmed it."""
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

    def _dead_letter(
        self,
        channel: Any,
        method: Any,
        properties: pika.BasicProperties,
        body: bytes,
        *,
        code: str,
        message: str,
        tenant: str | None,
    ) -> None:
        """Publish the body unchanged, with the failure in headers; returns once confirmed."""
        headers = dead_letters.failure_headers(
            code=code,
            message=message,
            routing_key=method.routing_key,
            tenant=tenant,
            worker=self.name,
        )
        channel.basic_publish(
            topology.DEAD_LETTER_EXCHANGE,
            method.routing_key,
            body,
            pika.BasicProperties(
                content_type=properties.content_type,
                message_id=properties.message_id,
                delivery_mode=pika.DeliveryMode.Persistent,
                headers={**(properties.headers or {}), **headers},
            ),
            mandatory=True,
        )


def _attempt(properties: pika.BasicProperties) -> int:
    """1 for a first delivery; quorum queues count earlier ones in x-delivery-count."""
    return int((properties.headers or {}).get("x-delivery-count", 0)) + 1
