"""Sealing-key rotation with events in flight, on a fleet of two that is never restarted.

Users are published in six batches, each sealed to whatever key is current when the
batch is published.  After the third batch, with most of its messages still queued,
`provisioner keys rotate` makes a new key current.  Every user must be created with its
own password: each one binds with it.  Then the old key is retired: a user sealed to it
is refused as `retired_key` and waits in the dead-letter queue, which `dlq show` names,
while the same user sealed to the current key is created (the control).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from messages.results import Outcome, decode_result
from messages.sealing import load_public_key
from tests.support import broker, engine, ldap_oracle
from tests.support.platform import SuitePlatform, fleet, wait_for
from workers.runtime import key_ring

BATCHES, PER_BATCH = 6, 10
ADMIN_PASSWORD = "Rotation-Admin-Passw0rd-1"


def user_line(tenant: str, name: str) -> dict[str, object]:
    return {
        "type": "user.created",
        "idempotency_key": f"{tenant}-{name}",
        "data": {
            "tenant": tenant,
            "username": name,
            "given_name": "Rot",
            "surname": name,
            "role": "user",
            "password": password_of(name),
        },
    }


def password_of(name: str) -> str:
    return f"Rot-{name}-Passw0rd!"


class Answers:
    """The results queue, read as it fills: in_reply_to -> (outcome, error code)."""

    def __init__(self, queue: str) -> None:
        self.queue = queue
        self.seen: dict[str, tuple[Outcome, str | None]] = {}

    def read(self) -> dict[str, tuple[Outcome, str | None]]:
        for message in broker.drain(self.queue):
            result = decode_result(message.body)
            if result.outcome is not Outcome.RETRY_SCHEDULED:
                code = result.error.code if result.error else None
                self.seen[str(result.in_reply_to)] = (result.outcome, code)
        return self.seen


def publish(
    platform: SuitePlatform, path: Path, lines: list[dict[str, object]], keys: dict[str, str]
) -> None:
    """Publish the lines as the suite's producer, sealed to the key file ``keys`` names."""
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    done = platform.provisioner("publish", "--file", str(path), overrides=keys)
    assert done.returncode == 0, done.stderr
    assert f"confirmed {len(lines)}, failed 0" in done.stdout


def test_keys_rotate_while_events_flow_and_none_is_lost(
    platform: SuitePlatform, results: str, tmp_path: Path
) -> None:
    tenant = engine.create_tenant(platform, "rot", ADMIN_PASSWORD, max_users=200)
    ring = tmp_path / "ring"
    old = key_ring.init(ring)
    assert old is not None
    shutil.copy(ring / key_ring.CURRENT, tmp_path / "old.pub")
    keys = {
        "PROVISIONER_FLEET_KEY_DIR": str(ring),
        "PROVISIONER_FLEET_PUBLIC_KEY_FILE": str(ring / key_ring.CURRENT),
    }
    answers = Answers(results)
    sealed_to: dict[str, str] = {}  # batch -> the key its passwords were sealed to
    names = [f"u{b}-{i}" for b in range(BATCHES) for i in range(PER_BATCH)]
    with fleet(platform, tmp_path / "fleet.log", 2, overrides=keys) as running:
        pids = sorted(running.children())
        for batch in range(BATCHES):
            if batch == BATCHES // 2:
                published = batch * PER_BATCH
                in_flight = published - len(answers.read())
                new, previous = key_ring.rotate(ring)
                assert previous == old
            chunk = names[batch * PER_BATCH : (batch + 1) * PER_BATCH]
            current = key_ring.fingerprint(load_public_key(ring / key_ring.CURRENT))
            sealed_to[f"batch {batch}"] = current
            publish(
                platform, tmp_path / f"b{batch}.jsonl", [user_line(tenant, n) for n in chunk], keys
            )
        wait_for(lambda: len(answers.read()) >= len(names), timeout=240, interval=0.5)
        assert sorted(running.children()) == pids  # no worker was restarted
    # The rotation landed mid-flight, and both keys were used.
    assert in_flight > 0, "every message was answered before the rotation"
    assert set(sealed_to.values()) == {old, new}
    outcomes = {outcome for outcome, _ in answers.seen.values()}
    assert outcomes == {Outcome.SUCCEEDED}, answers.seen
    assert len(answers.seen) == len(names)
    for name in names:  # every password opened, and is the user's own
        assert binds(platform, f"{name}@{tenant}.example", name), name
    print(
        f"key rotation: {len(names)} users in {BATCHES} batches, rotated with {in_flight} "
        f"of {published} published unanswered; {len(answers.seen)} succeeded, 0 lost, "
        f"{len(names)} binds with their own passwords; worker PIDs {pids} throughout"
    )

    # Retire the old key: a box sealed to it is refused, named, and kept.
    assert key_ring.retire(ring) == [old]
    late = user_line(tenant, "late")
    old_keys = {**keys, "PROVISIONER_FLEET_PUBLIC_KEY_FILE": str(tmp_path / "old.pub")}
    with fleet(platform, tmp_path / "fleet2.log", 1, overrides=keys):
        publish(platform, tmp_path / "late-old.jsonl", [late], old_keys)
        wait_for(lambda: broker.depth(broker.DLQ) >= 1, timeout=60)
        listed = platform.provisioner("dlq", "list", "--error", "retired_key")
        assert listed.returncode == 0, listed.stderr
        (letter_id,) = [line.split()[0] for line in listed.stdout.splitlines()[1:-1]]
        shown = platform.provisioner("dlq", "show", letter_id, overrides=keys)
        assert shown.returncode == 0, shown.stderr
        assert f"sealed to the RETIRED key {old}" in shown.stdout
        assert "retired_key" in shown.stdout
        assert broker.depth(broker.DLQ) == 1  # shown, not dropped
        assert not binds(platform, f"late@{tenant}.example", "late")
        # The control: the same user sealed to the current key is created.
        again = {**late, "idempotency_key": f"{tenant}-late-again"}
        publish(platform, tmp_path / "late-new.jsonl", [again], keys)
        wait_for(lambda: binds(platform, f"late@{tenant}.example", "late"), timeout=60)
    assert broker.depth(broker.DLQ) == 1  # the refused one is still there


def binds(platform: SuitePlatform, upn: str, name: str) -> bool:
    with ldap_oracle.bind(platform, upn, password_of(name)) as conn:
        return bool(conn.bound)
