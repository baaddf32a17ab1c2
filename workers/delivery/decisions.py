"""What to do with one delivery: the worker's decisions, apart from pika.

:func:`decide` decodes the message, consults the idempotency records, runs the engine,
and returns a :class:`Decision`: the result event to publish and, on failure, whether
the message goes to a delay queue or to the dead-letter queue.  The pika edge
(:mod:`workers.broker.consumer`) carries the decision out: copy confirmed, result confirmed,
then ack.
"""

from __future__ import annotations

import traceback
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Protocol

from messages.envelope import Envelope, decode
from messages.errors import ContractError
from messages.results import UNKNOWN_TYPE, Outcome, Result, ResultError
from workers.delivery.failures import Failure
from workers.delivery.idempotency import Ledger, payload_hash
from workers.directory.port import Directory, DirectoryUnavailable
from workers.errors import DependencyNotReady, classify
from workers.provisioning import engine, planner, tenant_state
from workers.provisioning.steps import Context
from workers.runtime.producers import ProducerPolicy, Unauthorized
from workers.runtime.retry import RetryPolicy


@dataclass(frozen=True)
class Delivery:
    body: bytes
    routing_key: str
    message_id: str | None
    attempt: int  # 1 for the first
    producer: str | None = None  # the user_id the broker validated; None when unset


@dataclass(frozen=True)
class Decision:
    result: Result
    retry_in: float | None = None  # seconds: send to a delay queue
    dead_letter: Failure | None = None  # send to the dead-letter queue
    tenant: str | None = None
    unavailable: bool = False  # the directory failed: back off before the next message


class Ports(Protocol):
    """The worker's connections, opened lazily and dropped when they fail."""

    def directory(self) -> Directory: ...

    def context(self, envelope: Envelope) -> Context: ...

    def drop_directory(self) -> None: ...

    @property
    def observer(self) -> engine.Observer: ...


def decide(
    delivery: Delivery, ports: Ports, policy: RetryPolicy, producers: ProducerPolicy
) -> Decision:
    """Who asked, then what was asked, then the directory: a message from a producer the
    policy does not know is refused before it is even decoded."""
    envelope: Envelope | None = None
    try:
        producer = producers.check_producer(delivery.producer)
        envelope = decode(delivery.body)
        producers.check_type(producer, envelope.type)
    except (Unauthorized, ContractError) as exc:
        return _refused(delivery, envelope, Failure(exc.code, str(exc)))
    return _Job(envelope, delivery.attempt, ports, policy, producer).run()


def _refused(delivery: Delivery, envelope: Envelope | None, failure: Failure) -> Decision:
    """Dead-lettered with no directory work: undecodable, or not this producer's to ask."""
    return Decision(
        Result(
            Outcome.DEAD_LETTERED,
            envelope.type if envelope else UNKNOWN_TYPE,
            envelope.id if envelope else delivery.message_id,
            envelope.idempotency_key if envelope else None,
            delivery.attempt,
            error=ResultError(failure.code, failure.message),
            producer=delivery.producer,
        ),
        dead_letter=failure,
        tenant=envelope.tenant if envelope else None,
    )


@dataclass
class _Job:
    envelope: Envelope
    attempt: int
    ports: Ports
    policy: RetryPolicy
    producer: str

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
            self.attempt,
            details=details or {},
            error=ResultError(failure.code, failure.message) if failure else None,
            producer=self.producer,
        )

    @cached_property
    def payload(self) -> str:
        """What makes two messages the same intent (:func:`payload_hash`), hashed once."""
        return payload_hash(self.envelope)

    def failed(self, failure: Failure) -> Decision:
        return Decision(
            self.result(Outcome.DEAD_LETTERED, failure=failure),
            dead_letter=failure,
            tenant=self.envelope.tenant,
        )

    def run(self) -> Decision:
        try:
            directory = self.ports.directory()
            return self._apply(directory, Ledger(directory, directory.base_dn))
        except Exception as exc:  # noqa: BLE001 - a bug must not kill the worker; keep the message
            known = classify(exc)
            if known is None:
                return self.failed(Failure("internal_error", repr(exc), traceback.format_exc()))
            code, transient = known
            if transient:
                return self._transient(code, exc)
            return self.failed(Failure(code, str(exc)))

    def _apply(self, directory: Directory, ledger: Ledger) -> Decision:
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
        ctx = self.ports.context(self.envelope)
        details = engine.handle(self.envelope, directory, ctx, self.ports.observer)
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
        return Decision(self.result(outcome, details), tenant=self.envelope.tenant)

    def _entity_kind(self) -> str:
        return "user" if hasattr(self.envelope.data, "username") else "tenant"

    def _transient(self, code: str, exc: Exception) -> Decision:
        # A directory that failed is dropped and the worker pauses; a race or a dependency
        # not there yet is only retried.
        unavailable = isinstance(exc, DirectoryUnavailable)
        if unavailable:
            self.ports.drop_directory()
        failure = Failure(code, str(exc))
        if not self.policy.exhausted(self.attempt):
            delay = self.policy.delay(self.attempt)
            return Decision(
                self.result(Outcome.RETRY_SCHEDULED, {"delay_s": round(delay, 3)}, failure),
                retry_in=delay,
                tenant=self.envelope.tenant,
                unavailable=unavailable,
            )
        return self._exhausted(failure)

    def _exhausted(self, last: Failure) -> Decision:
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
                f"{self.attempt} attempts; the last: {last.code}: {last.message}",
                attempt_code=last.code,
            )
        return self.failed(reason)

    def _compensate(self) -> list[str]:
        try:
            directory = self.ports.directory()
            ctx = self.ports.context(self.envelope)
            state = tenant_state.read(directory, self.envelope.tenant, ctx.realm.base_dn)
            plan = planner.plan(self.envelope, ctx.realm, state)
        except DependencyNotReady:
            return []  # nothing was planned, so nothing was made
        except Exception as exc:  # noqa: BLE001 - the directory may still be down
            return [f"could not plan the undo ({exc})"]
        if not plan.all_or_nothing:
            return []
        leftovers = engine.rollback(plan, [], directory, ctx)
        self.ports.observer.on_rollback(plan.event_type, leftovers)
        return leftovers
