"""The pika edge of a worker: consume, hand each message to the engine, ack or dead-letter.

A message is acked only after its effect is in the directory, or after its copy is
confirmed in the dead-letter exchange: nothing is lost, and bad input never crashes
the worker nor loops.  SIGTERM drains: the message in hand finishes, the rest are
returned to the queue, and the worker exits.
"""

from __future__ import annotations

import os
import socket
import time
from typing import Any

import pika
import pika.exceptions
import structlog

from messages.envelope import decode
from messages.errors import ContractError
from workers import bootstrap, dead_letters, engine, topology
from workers.directory import Directory, DirectoryRefused, DirectoryUnavailable
from workers.settings import Settings

INACTIVITY_SECONDS = 0.5
DIRECTORY_RETRY_SECONDS = 1.0


class Worker:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._stopping = False
        self._directory: Directory | None = None
        self.name = f"{socket.gethostname()}:{os.getpid()}"
        self._log = structlog.get_logger("worker").bind(worker=self.name)

    def request_stop(self) -> None:
        """Finish the message in hand, then stop (safe to call from a signal handler)."""
        self._stopping = True

    def run(self) -> None:
        self._directory = Directory.connect(self._settings)
        bootstrap.check(self._directory)  # preflight: refuse to start on a wrong directory
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

    def _connected_directory(self) -> Directory:
        if self._directory is None:
            self._directory = Directory.connect(self._settings)
        return self._directory

    def _process(
        self, channel: Any, method: Any, properties: pika.BasicProperties, body: bytes
    ) -> None:
        log = self._log.bind(message_id=properties.message_id, routing_key=method.routing_key)
        try:
            envelope = decode(body)
        except ContractError as exc:
            self._dead_letter(
                channel, method, properties, body, code=exc.code, message=str(exc), tenant=None
            )
            log.warning("message.dead_lettered", error_code=exc.code, error=str(exc))
            return
        log = log.bind(
            id=envelope.id,
            idempotency_key=envelope.idempotency_key,
            type=envelope.type,
            tenant=envelope.tenant,
        )
        started = time.monotonic()
        try:
            details = engine.handle(envelope, self._connected_directory())
        except DirectoryUnavailable as exc:
            log.warning("directory.unavailable", error=str(exc))
            self._directory = None
            time.sleep(DIRECTORY_RETRY_SECONDS)
            channel.basic_nack(method.delivery_tag, requeue=True)
            return
        except (engine.PermanentError, DirectoryRefused) as exc:
            code = exc.code if isinstance(exc, engine.PermanentError) else f"ldap_{exc.result}"
            self._dead_letter(
                channel,
                method,
                properties,
                body,
                code=code,
                message=str(exc),
                tenant=envelope.tenant,
            )
            log.warning("message.dead_lettered", error_code=code, error=str(exc))
            return
        except Exception as exc:  # a bug must not kill the worker; keep the message
            log.exception("message.failed")
            self._dead_letter(
                channel,
                method,
                properties,
                body,
                code="internal_error",
                message=repr(exc),
                tenant=envelope.tenant,
            )
            return
        channel.basic_ack(method.delivery_tag)
        log.info("message.succeeded", duration_s=round(time.monotonic() - started, 4), **details)

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
        """Publish the body unchanged, with the failure in headers, confirmed; then ack."""
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
        channel.basic_ack(method.delivery_tag)
