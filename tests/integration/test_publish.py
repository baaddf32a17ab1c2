"""``provisioner publish`` against the real broker: confirms, mandatory, bulk."""

from __future__ import annotations

import json
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from messages.envelope import decode
from messages.events import UserCreated
from messages.sealing import load_private_key, load_public_key, unseal
from tests.support import broker
from tests.support.platform import SuitePlatform
from workers.runtime.key_ring import fingerprint

WORK = "provisioning.work"
EVENTS = "provisioning.events"
COUNT = 1000


@pytest.fixture
def empty_work_queue(platform: SuitePlatform) -> Iterator[None]:
    del platform
    broker.purge(WORK)
    yield
    broker.purge(WORK)


def sample_lines(count: int) -> list[dict[str, object]]:
    lines: list[dict[str, object]] = []
    for i in range(count):
        tenant = f"bulk-{i % 37}"
        if i % 3 == 0:
            data: dict[str, object] = {
                "tenant": tenant,
                "username": f"user.{i}",
                "given_name": "Zoë",
                "surname": f"O'Brien, {i}",
                "display_name": f'Zoë "{i}" = O\'Brien, Jr.',
                "role": "admin" if i % 2 else "user",
            }
            kind = "user.created"
        elif i % 3 == 1:
            data = {"tenant": tenant, "username": f"user.{i}"}
            kind = "user.disabled"
        else:
            data = {"tenant": tenant, "name": f"Tenant #{i}", "plan": {"max_users": i + 1}}
            kind = "tenant.updated"
        lines.append(
            {
                "type": kind,
                "id": f"bulk-{i:04d}",
                "idempotency_key": f"k-{i}",
                "occurred_at": "2026-11-25T09:00:00Z",
                "source": "test",
                "data": data,
            }
        )
    return lines


@pytest.mark.usefixtures("empty_work_queue")
def test_a_thousand_events_from_jsonl_arrive_intact(
    platform: SuitePlatform, tmp_path: Path
) -> None:
    lines = sample_lines(COUNT)
    path = tmp_path / "events.jsonl"
    path.write_text(
        "".join(json.dumps(x, ensure_ascii=False) + "\n" for x in lines), encoding="utf-8"
    )
    result = platform.provisioner("publish", "--file", str(path))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == f"sent {COUNT}, confirmed {COUNT}, failed 0"

    received = broker.drain(WORK)
    assert len(received) == COUNT
    for line, message in zip(lines, received, strict=True):
        assert message.routing_key == line["type"]
        assert message.properties.message_id == line["id"]
        assert message.properties.content_type == "application/msgpack"
        assert message.properties.delivery_mode == 2
        envelope = decode(message.body)
        assert (envelope.id, envelope.type, envelope.idempotency_key, envelope.source) == (
            line["id"],
            line["type"],
            line["idempotency_key"],
            "test",
        )
        data = line["data"]
        assert isinstance(data, dict)
        for key, value in data.items():
            got = getattr(envelope.data, key)
            if key == "plan":
                assert got.max_users == value["max_users"]
            else:
                assert got == value, key


@pytest.mark.usefixtures("empty_work_queue")
def test_invalid_lines_are_reported_by_number_and_never_sent(
    platform: SuitePlatform, tmp_path: Path
) -> None:
    good = sample_lines(2)
    bad = {"type": "user.disabled", "data": {"tenant": "t1", "username": "bad name"}}
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(json.dumps(x) for x in (good[0], bad, good[1])) + "\n")
    result = platform.provisioner("publish", "--file", str(path))
    assert result.returncode == 1
    assert "sent 2, confirmed 2, failed 1" in result.stdout
    assert "line 2: invalid: unsafe_identifier at data.username" in result.stderr
    assert [m.properties.message_id for m in broker.drain(WORK)] == ["bulk-0000", "bulk-0001"]


@pytest.mark.usefixtures("empty_work_queue")
def test_an_unroutable_event_is_a_failure_not_silence(
    platform: SuitePlatform, tmp_path: Path
) -> None:
    path = tmp_path / "events.jsonl"
    path.write_text(json.dumps(sample_lines(1)[0]) + "\n")
    with broker.channel() as ch:
        ch.queue_unbind(WORK, EVENTS, routing_key="#")
    try:
        result = platform.provisioner("publish", "--file", str(path))
    finally:
        with broker.channel() as ch:
            ch.queue_bind(WORK, EVENTS, routing_key="#")
    assert result.returncode == 1
    assert "sent 1, confirmed 0, failed 1" in result.stdout
    assert "line 1: unroutable: no queue is bound for 'user.created'" in result.stderr
    # Positive control: the same file, with the binding back, is confirmed.
    again = platform.provisioner("publish", "--file", str(path))
    assert again.returncode == 0, again.stderr
    assert broker.depth(WORK) == 1


def test_an_unreachable_broker_is_a_clear_error(platform: SuitePlatform) -> None:
    data = json.dumps({"tenant": "t1", "username": "u1"})
    result = platform.provisioner(
        "publish",
        "user.disabled",
        "--data",
        data,
        overrides={
            "PROVISIONER_AMQP_URL": "amqp://guest:guest@127.0.0.1:1/%2F",
            "PROVISIONER_AMQP_CA_FILE": "",
        },
    )
    assert result.returncode == 1
    assert "cannot reach the broker" in result.stderr


@pytest.mark.usefixtures("empty_work_queue")
def test_a_password_is_sealed_before_it_reaches_the_broker(platform: SuitePlatform) -> None:
    env = platform.settings_env
    ring = Path(env["PROVISIONER_FLEET_KEY_DIR"])
    current = fingerprint(load_public_key(env["PROVISIONER_FLEET_PUBLIC_KEY_FILE"]))
    private_key = ring / f"{current}.key"
    assert stat.S_IMODE(ring.stat().st_mode) == 0o700
    assert stat.S_IMODE(private_key.stat().st_mode) == 0o600
    secret = "Plaintext-Never-On-The-Wire-42"
    data = {"tenant": "t1", "username": "u1", "given_name": "G", "surname": "S", "password": secret}
    result = platform.provisioner("publish", "user.created", "--data", json.dumps(data))
    assert result.returncode == 0, result.stderr
    assert secret not in result.stdout + result.stderr
    (message,) = broker.drain(WORK)
    assert secret.encode() not in message.body
    event = decode(message.body).data
    assert isinstance(event, UserCreated)
    assert event.password is not None
    assert unseal(event.password, load_private_key(private_key), "data.password") == secret
