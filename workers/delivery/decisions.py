"""What to do with one delivery: the worker's decisions, apart from pika.

:func:`decide` checks who asked, decodes the message, consults the idempotency records,
runs the engine, and returns one :data:`Decision`, a type per outcome, built here whole:

- :class:`Done`: applied now, or answered from its record (a duplicate);
- :class:`Retry`: not now; the copy goes to a named delay tier with these headers;
- :class:`DeadLetter`: never as it stands; the copy (plaintext passwords scrubbed) goes
  to the dead-letter queue with these headers.

The pika edge (:mod:`workers.broker.consumer`) carries a decision out with one ``match``:
the copy (confirmed), the result (confirmed), then the ack.  Each decision also says how
it is counted and logged, so nothing else interprets it.
"""

from __future__ import annotations

import traceback
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from messages.envelope import Envelope, decode
from messages.errors import ContractError
from messages.results import UNKNOWN_TYPE, Outcome, Result, ResultError
from workers.delivery import failures
from workers.delivery.failures import Failure
from workers.delivery.idempotency import Ledger, payload_hash
from workers.delivery.session import Session, SessionSource
from workers.directory.port import DirectoryUnavailable
from workers.errors import DependencyNotReady, classify
from workers.provisioning import engine
from workers.runtime.metrics import Metrics
from workers.runtime.producers import ProducerPolicy, Unauthorized
from workers.runtime.retry import RetryPolicy, tier_queue

_LOG_EVENTS = {outcome: f"message.{outcome.value}" for outcome in Outcome}


@dataclass(frozen=True)
class Delivery:
    body: bytes
    routing_key: str
    message_id: str | None
    attempt: int  # 1 for the first
    producer: str | None = None  # the user_id the broker validated; None when unset
    headers: Mapping[str, Any] = field(default_factory=dict)

    @property
    def original_routing_key(self) -> str:
        """The routing key it was published with, before any retry moved it."""
        return str(self.headers.get("x-original-routing-key", self.routing_key))


def _dn_of(details: Mapping[str, Any]) -> Any:
    """The DN a result is about: the tenant's, or the user's for user events."""
    return details.get("dn") or details.get("user", {}).get("dn")


@dataclass(frozen=True)
class Done:
    """Applied, or answered from the record of an earlier application (a duplicate)."""

    result: Result
    tenant: str | None
    dc: str = ""  # the DC that acted, when the fleet knows several

    def count(self, metrics: Metrics) -> None:
        if self.result.outcome is Outcome.DUPLICATE:
            metrics.duplicates.labels(self.result.event_type).inc()
        metrics.last_success.set_to_current_time()

    def log(self, log: Any, seconds: float) -> None:
        log.info(
            _LOG_EVENTS[self.result.outcome],
            duration_s=round(seconds, 4),
            dn=_dn_of(self.result.details),
            **({"dc": self.dc} if self.dc else {}),
        )


@dataclass(frozen=True)
class Retry:
    """Not now: the message waits in the delay queue ``queue`` for ``delay`` seconds, then
    comes back with ``headers`` (its attempt history one longer)."""

    result: Result
    tenant: str | None
    failure: Failure
    queue: str
    delay: float
    headers: dict[str, Any]
    outage: bool  # the directory failed: the worker pauses before the next message

    def count(self, metrics: Metrics) -> None:
        metrics.retries.labels(self.result.event_type, self.failure.code).inc()

    def log(self, log: Any, seconds: float) -> None:
        del seconds
        log.warning(
            "message.retry_scheduled",
            error_code=self.failure.code,
            error=self.failure.message,
            retry_in_s=round(self.delay, 3),
        )


@dataclass(frozen=True)
class DeadLetter:
    """Never as it stands: ``body`` (plaintext passwords scrubbed) goes to the dead-letter
    queue under ``routing_key`` with ``headers``, which say why."""

    result: Result
    tenant: str | None
    failure: Failure
    routing_key: str
    body: bytes
    headers: dict[str, Any]

    def count(self, metrics: Metrics) -> None:
        metrics.dead_letters.labels(self.failure.code).inc()

    @property
    def dead_letter_id(self) -> str:
        """What ``provisioner dlq`` knows it by, as the log line and the result say."""
        return str(self.headers["x-dead-letter-id"])

    def log(self, log: Any, seconds: float) -> None:
        del seconds
        log.warning(
            "message.dead_lettered",
            dead_letter_id=self.dead_letter_id,
            error_code=self.failure.code,
            error=self.failure.message,
            traceback=self.failure.traceback,
        )


Decision = Done | Retry | DeadLetter


def decide(
    delivery: Delivery,
    sessions: SessionSource,
    policy: RetryPolicy,
    producers: ProducerPolicy,
    *,
    worker: str = "",
    observer: engine.Observer = engine.UNOBSERVED,
) -> Decision:
    """Who asked, then what was asked, then the directory: a message from a producer the
    policy does not know is refused before it is even decoded."""
    envelope: Envelope | None = None
    try:
        producer = producers.check_producer(delivery.producer)
        envelope = decode(delivery.body)
        producers.check_type(producer, envelope.type)
    except (Unauthorized, ContractError) as exc:
        return _dead_letter(delivery, envelope, Failure(exc.code, str(exc)), worker)
    return _Job(envelope, delivery, sessions, policy, producer, worker, observer).run()


def _dead_letter(
    delivery: Delivery, envelope: Envelope | None, failure: Failure, worker: str
) -> DeadLetter:
    """The dead letter of ``delivery``: its result, its scrubbed copy and its headers."""
    tenant = envelope.tenant if envelope else None
    headers = failures.dead_letter_headers(
        delivery.headers,
        failure,
        routing_key=delivery.original_routing_key,
        tenant=tenant,
        worker=worker,
    )
    stored, redacted = failures.scrub_plaintext_passwords(delivery.body)
    if redacted:
        headers["x-redacted"] = redacted
    result = Result(
        Outcome.DEAD_LETTERED,
        envelope.type if envelope else UNKNOWN_TYPE,
        envelope.id if envelope else delivery.message_id,
        envelope.idempotency_key if envelope else None,
        delivery.attempt,
        details={"dead_letter_id": headers["x-dead-letter-id"]},
        error=ResultError(failure.code, failure.message),
        producer=delivery.producer,
    )
    return DeadLetter(result, tenant, failure, delivery.original_routing_key, stored, headers)


@dataclass
class _Job:
    envelope: Envelope
    delivery: Delivery
    sessions: SessionSource
    policy: RetryPolicy
    producer: str
    worker: str
    observer: engine.Observer
    dc: str = ""

    def result(
        self,
        outcome: Outcome,
        details: dict[str, Any] | None = None,
        failure: Failure | None = None,
    ) -> Result:
        e = self.envelope
        return Result(
            outcome,
            e.type,
            e.id,
            e.idempotency_key,
            self.delivery.attempt,
            details=details or {},
            error=ResultError(failure.code, failure.message) if failure else None,
            producer=self.producer,
        )

    @cached_property
    def payload(self) -> str:
        """What makes two messages the same intent (:func:`payload_hash`), hashed once."""
        return payload_hash(self.envelope)

    def failed(self, failure: Failure) -> DeadLetter:
        return _dead_letter(self.delivery, self.envelope, failure, self.worker)

    def run(self) -> Decision:
        try:
            with self.sessions.acting(self.envelope.tenant, self.envelope.idempotency_key) as s:
                return self._apply(s)
        except Exception as exc:  # noqa: BLE001 - a bug must not kill the worker; keep the message
            known = classify(exc)
            if known is None:
                return self.failed(Failure("internal_error", repr(exc), traceback.format_exc()))
            code, transient = known
            if transient:
                return self._transient(Failure(code, str(exc)), exc)
            return self.failed(Failure(code, str(exc)))

    def _apply(self, session: Session) -> Decision:
        self.dc = session.dc
        directory = session.directory
        ledger = Ledger(directory, directory.base_dn)
        found = ledger.lookup(self.envelope)
        if found.record is not None:
            return self._answer_from(
                found.record.payload_hash, found.record.message_id, found.record.details
            )
        if found.newer:
            return self.failed(
                Failure(
                    "stale_event",
                    f"a later event for this {self._entity_kind()} was applied already",
                )
            )
        ctx = session.context(self.envelope)
        details = engine.handle(self.envelope, directory, ctx, self.observer)
        record = ledger.record(self.envelope, details, self.payload, self.producer)
        return self._answer_from(record.payload_hash, record.message_id, record.details)

    def _answer_from(self, payload: str, message_id: str, details: dict[str, Any]) -> Decision:
        if payload != self.payload:
            return self.failed(
                Failure(
                    "idempotency_conflict",
                    "this idempotency key was applied with a different payload",
                )
            )
        outcome = Outcome.SUCCEEDED if message_id == self.envelope.id else Outcome.DUPLICATE
        return Done(self.result(outcome, details), self.envelope.tenant, self.dc)

    def _entity_kind(self) -> str:
        return "user" if hasattr(self.envelope.data, "username") else "tenant"

    def _transient(self, failure: Failure, exc: Exception) -> Decision:
        # A directory that failed is dropped and the worker pauses; a race or a dependency
        # not there yet is only retried.
        outage = isinstance(exc, DirectoryUnavailable)
        if outage:
            self.sessions.drop()
        attempt = self.delivery.attempt
        if self.policy.exhausted(attempt):
            return self._exhausted(failure)
        delay = self.policy.delay(attempt)
        return Retry(
            self.result(Outcome.RETRY_SCHEDULED, {"delay_s": round(delay, 3)}, failure),
            self.envelope.tenant,
            failure,
            queue=tier_queue(self.policy.tier(attempt)),
            delay=delay,
            headers=failures.after_failure(
                self.delivery.headers,
                code=failure.code,
                worker=self.worker,
                routing_key=self.delivery.original_routing_key,
            ),
            outage=outage,
        )

    def _exhausted(self, last: Failure) -> DeadLetter:
        """The last attempt failed: undo what the job made, then dead-letter it."""
        leftovers = self._compensate()
        if leftovers:
            reason = Failure(
                "rollback_incomplete",
                f"retries exhausted ({last.code}: {last.message}); rollback left behind: "
                + "; ".join(leftovers),
                attempt_code=last.code,
            )
        else:
            reason = Failure(
                "retries_exhausted",
                f"{self.delivery.attempt} attempts; the last: {last.code}: {last.message}",
                attempt_code=last.code,
            )
        return self.failed(reason)

    def _compensate(self) -> list[str]:
        try:
            with self.sessions.acting(self.envelope.tenant, self.envelope.idempotency_key) as s:
                return self._undo(s)
        except Exception as exc:  # noqa: BLE001 - the directory may still be down
            return [f"could not plan the undo ({exc})"]

    def _undo(self, session: Session) -> list[str]:
        try:
            plan = engine.plan_for(self.envelope, session.directory, session.realm)
        except DependencyNotReady:
            return []  # nothing was planned, so nothing was made
        if not plan.all_or_nothing:
            return []
        leftovers = engine.rollback(plan, [], session.directory, session.context(self.envelope))
        self.observer.on_rollback(plan.event_type, leftovers)
        return leftovers
