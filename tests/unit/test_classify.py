"""One error root, classified in one place: what each kind of failure becomes."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from messages.envelope import Envelope, encode
from messages.errors import ContractError
from messages.events import TenantDeleted
from messages.results import Outcome
from workers.delivery.decisions import DeadLetter, Decision, Delivery, Retry, decide
from workers.directory.port import DirectoryRefused, DirectoryUnavailable
from workers.errors import DependencyNotReady, PermanentError, TransientError, classify
from workers.runtime.producers import ProducerPolicy
from workers.runtime.retry import RetryPolicy

POLICY = ProducerPolicy.parse("order=tenant.deleted")


class Failing:
    """Sessions whose opening raises ``error``; it records whether it was dropped."""

    def __init__(self, error: Exception) -> None:
        self.error, self.dropped = error, False

    def open(self) -> Any:
        raise self.error

    def acting(self, tenant: str, key: str) -> Any:
        del tenant, key
        raise self.error

    def drop(self) -> None:
        self.dropped = True


def run(error: Exception, attempt: int = 1) -> tuple[Decision, Failing]:
    body = encode(
        Envelope(
            id="m-1",
            idempotency_key="k-1",
            occurred_at=datetime(2026, 12, 1, tzinfo=UTC),
            data=TenantDeleted(tenant="contoso"),
        )
    )
    ports = Failing(error)
    delivery = Delivery(body, "tenant.deleted", "m-1", attempt, "order")
    return decide(delivery, ports, RetryPolicy((1.0,), 3), POLICY), ports


@pytest.mark.parametrize(
    ("error", "code", "dropped"),
    [
        (DirectoryUnavailable("the DC is gone"), "directory_unavailable", True),
        (TransientError("quota_contention", "kept changing"), "quota_contention", False),
        (DependencyNotReady("tenant_not_ready", "no OU yet"), "tenant_not_ready", False),
    ],
)
def test_a_transient_error_is_retried_with_its_own_code(
    error: Exception, code: str, *, dropped: bool
) -> None:
    decision, ports = run(error)
    assert decision.result.outcome is Outcome.RETRY_SCHEDULED
    assert isinstance(decision, Retry)
    assert decision.result.error is not None
    assert decision.result.error.code == code
    assert ports.dropped is dropped  # only a directory outage reconnects
    assert decision.outage is dropped  # and pauses the worker


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (PermanentError("quota_exceeded", "full"), "quota_exceeded"),
        (DirectoryRefused("unwillingToPerform", "no"), "ldap_unwillingToPerform"),
        (ContractError("invalid_value", "bad", "data.x"), "invalid_value"),
        (KeyError("a bug"), "internal_error"),
    ],
)
def test_a_permanent_error_or_a_bug_is_dead_lettered_at_once(error: Exception, code: str) -> None:
    decision, ports = run(error)
    assert isinstance(decision, DeadLetter)
    assert decision.failure.code == code
    assert not isinstance(decision, Retry)
    assert not ports.dropped


def test_classify_knows_the_fleets_errors_and_the_contracts_and_nothing_else() -> None:
    assert classify(DirectoryUnavailable("x")) == ("directory_unavailable", True)
    assert classify(DirectoryRefused("noSuchObject", "x")) == ("ldap_noSuchObject", False)
    assert classify(ContractError("unknown_type", "x", "type")) == ("unknown_type", False)
    assert classify(RuntimeError("x")) is None
