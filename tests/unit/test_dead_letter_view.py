from __future__ import annotations

from datetime import UTC, datetime

import msgpack

from tests.unit.test_envelope import tenant_created_wire
from workers.broker.dead_letter_queue import RateLimit, replay_headers
from workers.ops.dead_letter_view import REDACTED, Filter, redacted_body, view


def fleet_headers() -> dict[str, object]:
    return {
        "x-dead-letter-id": "dl-1",
        "x-error-code": "quota_exceeded",
        "x-error-message": "full",
        "x-tenant": "contoso",
        "x-original-routing-key": "user.created",
        "x-first-failure-at": "2026-11-25T08:00:00Z",
        "x-last-failure-at": "2026-11-25T08:05:00Z",
        "x-attempts": [
            {"attempt": 1, "code": "tenant_not_ready"},
            {"attempt": 2, "code": "quota_exceeded"},
        ],
        "x-attempt": 3,
        "x-delivery-count": 1,
    }


def test_a_fleet_dead_letter_reads_from_its_headers() -> None:
    body = msgpack.packb(tenant_created_wire())
    letter = view("user.created", "m-1", fleet_headers(), body)
    assert (letter.id, letter.type, letter.tenant, letter.error_code, letter.attempts) == (
        "dl-1",
        "tenant.created",
        "contoso",
        "quota_exceeded",
        2,
    )
    assert letter.first_failure == datetime(2026, 11, 25, 8, tzinfo=UTC)
    assert letter.age_seconds(datetime(2026, 11, 25, 8, 15, tzinfo=UTC)) == 600


def test_a_broker_dead_letter_is_a_delivery_limit_with_a_stable_id() -> None:
    death = {
        "reason": "delivery_limit",
        "queue": "provisioning.work",
        "count": 1,
        "routing-keys": ["user.deleted"],
        "time": datetime(2026, 11, 25, 9, tzinfo=UTC),
    }
    body = b"\xc1 not even msgpack"
    first = view("user.deleted", "m-9", {"x-death": [death]}, body)
    again = view("user.deleted", "m-9", {"x-death": [death]}, body)
    assert first.error_code == "delivery_limit"
    assert first.id == again.id
    assert first.id.startswith("b-")
    assert first.routing_key == first.type == "user.deleted"
    assert first.last_failure == datetime(2026, 11, 25, 9, tzinfo=UTC)


def test_show_redacts_sealed_passwords() -> None:
    wire = tenant_created_wire()
    wire["data"]["admin"]["password"] = b"\x01" * 80  # type: ignore[index]
    shown = redacted_body(msgpack.packb(wire, use_bin_type=True))
    assert shown["data"]["admin"]["password"] == REDACTED
    assert shown["data"]["tenant"] == "contoso"


def test_a_replay_starts_over_keeps_its_history_and_counts_itself() -> None:
    letter = view("user.created", "m-1", {**fleet_headers(), "x-replay-count": 1}, b"x")
    headers = replay_headers(letter)
    assert headers["x-attempt"] == 1
    assert headers["x-replay-count"] == 2
    assert headers["x-dead-letter-id"] == "dl-1"
    assert len(headers["x-attempts"]) == 2
    assert "x-error-code" not in headers
    assert "x-delivery-count" not in headers


def test_filters() -> None:
    letter = view("user.created", "m-1", fleet_headers(), msgpack.packb(tenant_created_wire()))
    assert Filter(error="quota_exceeded", tenant="contoso").matches(letter)
    assert not Filter(error="other").matches(letter)
    assert Filter(since=datetime(2026, 11, 25, 8, 5, tzinfo=UTC)).matches(letter)
    assert not Filter(until=datetime(2026, 11, 25, 8, 4, tzinfo=UTC)).matches(letter)
    assert Filter(ids=frozenset({"dl-1"})).matches(letter)
    assert Filter().empty()
    assert not Filter(everything=True).empty()


def test_a_dead_letter_is_known_by_its_id_its_message_id_and_its_idempotency_key() -> None:
    letter = view("user.created", "m-1", fleet_headers(), msgpack.packb(tenant_created_wire()))
    for name in ("dl-1", "m-1", "k-1"):
        assert letter.known_as(name)
        assert Filter(ids=frozenset({name})).matches(letter)
    assert not letter.known_as("contoso")  # a tenant is a filter, not a name
    assert Filter(ids=frozenset({"k-1", "gone", "also-gone"})).unmatched([letter]) == [
        "also-gone",
        "gone",
    ]


def test_the_key_of_a_body_that_breaks_the_contract_still_names_it() -> None:
    broken = msgpack.packb(tenant_created_wire(tenant="NOT A TENANT ID"))
    letter = view("tenant.created", None, fleet_headers(), broken)
    assert letter.idempotency_key == "k-1"
    assert letter.known_as("k-1")
    garbage = view("user.created", "junk", fleet_headers(), b"\xc1garbage")
    assert garbage.idempotency_key is None
    assert garbage.known_as("junk")


def test_the_rate_limit_spaces_calls_evenly() -> None:
    now = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    limit = RateLimit(4, clock=lambda: now[0], sleep=sleep)
    for _ in range(5):
        limit.wait()
    assert slept == [0.25, 0.25, 0.25, 0.25]


def test_a_rate_reads_with_or_without_its_unit() -> None:
    import argparse  # noqa: PLC0415

    import pytest  # noqa: PLC0415

    from workers.cli.dlq import rate  # noqa: PLC0415

    assert rate("20/s") == rate("20") == 20.0
    for bad in ("fast", "0/s", "-1"):
        with pytest.raises(argparse.ArgumentTypeError):
            rate(bad)


def test_plaintext_passwords_are_scrubbed_and_named_and_sealed_ones_kept() -> None:
    import msgpack  # noqa: PLC0415

    from workers.delivery.failures import PLAINTEXT_MARKER, scrub_plaintext_passwords  # noqa: PLC0415

    sealed = b"\x01" * 80
    body = msgpack.packb(
        {
            "type": "tenant.created",
            "data": {
                "admin": {"username": "a", "password": "Plain-Text-Pw-1"},
                "users": [{"password": "Plain-Text-Pw-2"}, {"password": sealed}],
            },
        },
        use_bin_type=True,
    )
    stored, paths = scrub_plaintext_passwords(body)
    assert paths == ["data.admin.password", "data.users[0].password"]
    assert b"Plain-Text-Pw" not in stored
    decoded = msgpack.unpackb(stored, raw=False)
    assert decoded["data"]["admin"] == {"username": "a", "password": PLAINTEXT_MARKER}
    assert decoded["data"]["users"][1]["password"] == sealed  # a sealed box stays
    # Nothing to scrub, or not msgpack: byte for byte.
    clean = msgpack.packb({"data": {"password": sealed}}, use_bin_type=True)
    assert scrub_plaintext_passwords(clean) == (clean, [])
    assert scrub_plaintext_passwords(b"\xc1 not msgpack") == (b"\xc1 not msgpack", [])
    # Scrubbing what was scrubbed changes nothing (a replayed dead letter).
    assert scrub_plaintext_passwords(stored) == (stored, [])


def test_a_plaintext_hidden_inside_a_password_field_is_scrubbed_too() -> None:
    """A hostile producer nests the plaintext one level down, or in a list."""
    import msgpack  # noqa: PLC0415

    from workers.delivery.failures import scrub_plaintext_passwords  # noqa: PLC0415

    body = msgpack.packb(
        {"data": {"password": {"password": "Hidden-Pw-1"}, "x": {"password": ["Hidden-Pw-2"]}}},
        use_bin_type=True,
    )
    stored, paths = scrub_plaintext_passwords(body)
    assert b"Hidden-Pw" not in stored
    assert paths == ["data.password.password", "data.x.password[0]"]
