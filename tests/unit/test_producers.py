"""The producer policy (pure), and that the worker's decision consults it before it
touches the directory."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from messages.envelope import Envelope, encode
from messages.events import TenantDeleted
from messages.results import Outcome
from workers.delivery.decisions import DeadLetter, Delivery, decide
from workers.runtime.producers import PolicyError, ProducerPolicy
from workers.runtime.retry import RetryPolicy

POLICY = ProducerPolicy.parse(
    "order=tenant.created,tenant.deleted; billing=tenant.suspended,tenant.resumed"
)


def test_the_policy_reads_users_and_their_types() -> None:
    assert dict(POLICY.allowed) == {
        "order": frozenset({"tenant.created", "tenant.deleted"}),
        "billing": frozenset({"tenant.suspended", "tenant.resumed"}),
    }
    assert ProducerPolicy.parse(POLICY.text()) == POLICY
    assert ProducerPolicy.parse("").allowed == {}


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("order", "is not USER=TYPE,TYPE"),
        ("=tenant.created", "is not USER=TYPE,TYPE"),
        ("order=tenant.created;order=tenant.deleted", "named twice"),
        ("order=tenant.created,tenant.destroyed", "unknown event type(s) tenant.destroyed"),
    ],
)
def test_a_policy_that_does_not_parse_says_why(text: str, says: str) -> None:
    with pytest.raises(PolicyError, match=says.replace("(", r"\(").replace(")", r"\)")):
        ProducerPolicy.parse(text)


class NoDirectory:
    """Sessions whose every use fails the test: a refused message must not reach them."""

    def open(self) -> Any:
        raise AssertionError("the directory was consulted")

    def acting(self, tenant: str, key: str) -> Any:
        del tenant, key
        raise AssertionError("the directory was consulted")

    def drop(self) -> None:
        raise AssertionError("the directory was dropped")


class Unobserved:
    """An observer whose every use fails the test: a refused message runs no engine."""

    def on_step(self, step: object, seconds: float) -> None:
        raise AssertionError(f"the engine ran {step} ({seconds} s)")

    def on_rollback(self, event_type: str, leftovers: list[str]) -> None:
        raise AssertionError(f"the engine rolled back {event_type} ({leftovers})")


def deleted(tenant: str = "contoso") -> bytes:
    envelope = Envelope(
        id="m-1",
        idempotency_key="k-1",
        occurred_at=datetime(2026, 12, 1, tzinfo=UTC),
        data=TenantDeleted(tenant=tenant),
    )
    return encode(envelope)


def refusal(producer: str | None, body: bytes) -> tuple[str, str]:
    decision = decide(
        Delivery(body, "tenant.deleted", "m-1", 1, producer),
        NoDirectory(),
        RetryPolicy((1.0,), 3),
        POLICY,
        observer=Unobserved(),
    )
    assert isinstance(decision, DeadLetter)
    assert decision.result.outcome is Outcome.DEAD_LETTERED
    assert decision.result.producer == producer
    return decision.failure.code, decision.failure.message


def test_no_user_id_is_refused_before_the_body_is_read() -> None:
    code, message = refusal(None, b"\xc1 not even msgpack")
    assert code == "unauthorized_producer"
    assert "no user_id" in message


def test_a_user_the_policy_does_not_name_is_refused() -> None:
    code, message = refusal("portal", deleted())
    assert (code, message) == (
        "unauthorized_producer",
        "producer 'portal' may publish no event type",
    )


def test_a_type_its_producer_may_not_publish_is_refused_whatever_its_routing_key() -> None:
    code, message = refusal("billing", deleted())
    assert code == "unauthorized_producer"
    assert "'billing' may not publish tenant.deleted" in message


def test_an_allowed_producer_gets_to_the_directory() -> None:
    """The positive control: the same message from the producer allowed it goes on to the
    directory (which this test's ports refuse to be: the worker keeps the message as
    ``internal_error``, saying so)."""
    decision = decide(
        Delivery(deleted(), "tenant.deleted", "m-1", 1, "order"),
        NoDirectory(),
        RetryPolicy((1.0,), 3),
        POLICY,
        observer=Unobserved(),
    )
    assert isinstance(decision, DeadLetter)
    assert decision.failure.code == "internal_error"
    assert "the directory was consulted" in decision.failure.message
    assert decision.result.producer == "order"


def test_an_allowed_producer_with_a_malformed_body_gets_the_contract_error() -> None:
    code, _ = refusal("order", b"\xc1")
    assert code == "malformed_msgpack"
