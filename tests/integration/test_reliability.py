"""Idempotency keys and retries, on the real broker and DC, with real worker processes."""

from __future__ import annotations

import json
import secrets
import signal
import time
from collections import Counter
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import ldap3
import msgpack

from messages.results import Outcome, Result, decode_result
from tests.support import broker, engine, ldap_oracle
from tests.support.platform import SuitePlatform, wait_for

BASE = "DC=hosting,DC=test"
PASSWORD = "Reliable-Passw0rd!"
FAST_RETRIES = {"PROVISIONER_RETRY_DELAYS": "0.4,0.8", "PROVISIONER_RETRY_JITTER": "0.1"}


def new_tenant(platform: SuitePlatform) -> str:
    return engine.create_tenant(platform, "rl", PASSWORD)


def line(
    kind: str,
    data: dict[str, Any],
    key: str,
    *,
    message_id: str | None = None,
    occurred_at: datetime | None = None,
) -> str:
    out: dict[str, Any] = {
        "type": kind,
        "data": data,
        "idempotency_key": key,
        "id": message_id or secrets.token_hex(8),
    }
    if occurred_at is not None:
        out["occurred_at"] = occurred_at.isoformat().replace("+00:00", "Z")
    return json.dumps(out)


def publish(platform: SuitePlatform, tmp_path: Path, *lines: str) -> None:
    path = tmp_path / f"batch-{secrets.token_hex(3)}.jsonl"
    path.write_text("\n".join(lines) + "\n")
    published = platform.provisioner("publish", "--file", str(path))
    assert published.returncode == 0, published.stderr


def collect(queue: str, count: int, timeout: float = 60) -> list[tuple[str, Result]]:
    wait_for(lambda: broker.depth(queue) >= count, timeout, interval=0.2)
    return [(m.routing_key, decode_result(m.body)) for m in broker.drain(queue)]


def user_data(tenant: str, username: str, **extra: Any) -> dict[str, Any]:
    return {
        "tenant": tenant,
        "username": username,
        "given_name": "Re",
        "surname": "Liable",
        "password": PASSWORD,
        **extra,
    }


def users_named(admin: ldap3.Connection, tenant: str, username: str) -> int:
    admin.search(f"OU={tenant},OU=Tenants,{BASE}", f"(cn={username})", ldap3.LEVEL)
    return len([r for r in admin.response if r.get("type") == "searchResEntry"])


def test_five_copies_of_one_intent_on_three_workers_make_one_effect(
    platform: SuitePlatform, admin: ldap3.Connection, results: str, tmp_path: Path
) -> None:
    tenant = new_tenant(platform)
    copies = [line("user.created", user_data(tenant, "once"), f"{tenant}-once") for _ in range(5)]
    with ExitStack() as stack:
        workers = [stack.enter_context(platform.worker(tmp_path / f"w{n}.log")) for n in range(3)]
        publish(platform, tmp_path, *copies[:3])  # three at once: the workers race
        first = collect(results, 3)
        # Restart one worker between the copies: a new process, no memory of the first.
        old_pid = workers[0].pid
        with platform.worker(tmp_path / "w0-restarted.log") as restarted:
            assert restarted.pid != old_pid
            workers[0].terminate()
            assert workers[0].wait(30) == 0
            publish(platform, tmp_path, *copies[3:])
            rest = collect(results, 2)
    outcomes = Counter(r.outcome for _, r in first + rest)
    assert outcomes == {Outcome.SUCCEEDED: 1, Outcome.DUPLICATE: 4}
    details = {json.dumps(r.details, sort_keys=True, default=str) for _, r in first + rest}
    assert len(details) == 1  # every answer names the same user
    assert users_named(admin, tenant, "once") == 1
    settings = ldap_oracle.read(
        admin, f"CN=Tenant Settings,OU={tenant},OU=Tenants,{BASE}", ["msDS-Settings"]
    )
    assert settings is not None
    assert "users=2" in settings["msDS-Settings"]  # counted once
    assert broker.depth(broker.DLQ) == 0


def test_the_same_key_with_another_payload_is_a_conflict(
    platform: SuitePlatform, results: str, tmp_path: Path
) -> None:
    tenant = new_tenant(platform)
    with platform.worker(tmp_path / "w.log"):
        publish(platform, tmp_path, line("user.created", user_data(tenant, "a"), "k-shared"))
        collect(results, 1)
        publish(platform, tmp_path, line("user.created", user_data(tenant, "b"), "k-shared"))
        ((key, result),) = collect(results, 1)
    assert key == "user.created.dead_lettered"
    assert result.error is not None
    assert result.error.code == "idempotency_conflict"
    (dead,) = broker.drain(broker.DLQ)
    assert dead.headers["x-error-code"] == "idempotency_conflict"


def test_an_older_event_never_overwrites_a_newer_one(
    platform: SuitePlatform, admin: ldap3.Connection, results: str, tmp_path: Path
) -> None:
    tenant = new_tenant(platform)
    engine.run(
        platform,
        engine.event(platform, "user.created", user_data(tenant, "ordered"), f"{tenant}-ordered"),
    )
    now = datetime.now(UTC)
    newer = line(
        "user.updated",
        {"tenant": tenant, "username": "ordered", "surname": "Newer"},
        "upd-2",
        occurred_at=now,
    )
    older = line(
        "user.updated",
        {"tenant": tenant, "username": "ordered", "surname": "Older"},
        "upd-1",
        occurred_at=now - timedelta(milliseconds=1),
    )
    with platform.worker(tmp_path / "w.log"):
        publish(platform, tmp_path, newer, older)  # delivered out of order
        got = collect(results, 2)
    assert [(k, r.error.code if r.error else None) for k, r in got] == [
        ("user.updated.succeeded", None),
        ("user.updated.dead_lettered", "stale_event"),
    ]
    entry = ldap_oracle.read(admin, f"CN=ordered,OU={tenant},OU=Tenants,{BASE}", ["sn"])
    assert entry is not None
    assert entry["sn"] == ["Newer"]


def created_then_deleted(
    platform: SuitePlatform, tmp_path: Path, results: str, tenant: str, username: str
) -> str:
    """Publish a user's creation, then its deletion, each answered, to a running worker;
    return the creation's line, for publishing again."""
    created = line("user.created", user_data(tenant, username), f"{tenant}-{username}")
    deleted = line("user.deleted", {"tenant": tenant, "username": username}, f"{tenant}-bye")
    for event in (created, deleted):
        publish(platform, tmp_path, event)
        collect(results, 1)
    return created


def test_a_replayed_create_after_a_delete_does_not_bring_the_user_back(
    platform: SuitePlatform, admin: ldap3.Connection, results: str, tmp_path: Path
) -> None:
    tenant = new_tenant(platform)
    with platform.worker(tmp_path / "w.log"):
        created = created_then_deleted(platform, tmp_path, results, tenant, "ghost")
        assert users_named(admin, tenant, "ghost") == 0
        # The create again, as a replay would send it: same key, same payload, new message id.
        again = json.loads(created)
        again["id"] = secrets.token_hex(8)
        publish(platform, tmp_path, json.dumps(again))
        ((key, result),) = collect(results, 1)
    assert (key, result.outcome) == ("user.created.duplicate", Outcome.DUPLICATE)
    assert users_named(admin, tenant, "ghost") == 0


def test_a_user_before_its_tenant_is_retried_until_the_tenant_exists(
    platform: SuitePlatform, admin: ldap3.Connection, results: str, tmp_path: Path
) -> None:
    tenant = f"late-{secrets.token_hex(3)}"
    with platform.worker(tmp_path / "w.log", FAST_RETRIES):
        publish(platform, tmp_path, line("user.created", user_data(tenant, "early"), "early"))
        first = collect(results, 2)  # two attempts, both too early
        tenant_created = engine.tenant_data(tenant, admin_password=PASSWORD)
        publish(platform, tmp_path, line("tenant.created", tenant_created, f"{tenant}-created"))
        wait_for(lambda: users_named(admin, tenant, "early") == 1, 60)
        # The user is in the directory before its result is published: read results
        # until the user's answer is among them.
        rest: list[tuple[str, Result]] = []

        def user_answered() -> bool:
            rest.extend((m.routing_key, decode_result(m.body)) for m in broker.drain(results))
            return any(
                r.outcome is Outcome.SUCCEEDED and r.event_type == "user.created" for _, r in rest
            )

        wait_for(user_answered, 60, interval=0.2)
    retries = [r for _, r in first + rest if r.outcome is Outcome.RETRY_SCHEDULED]
    assert len(retries) >= 2
    assert all(r.error is not None and r.error.code == "tenant_not_ready" for r in retries)
    assert [r.attempt for r in retries[:2]] == [1, 2]
    assert retries[0].details["delay_s"] <= 0.4
    succeeded = [
        r
        for _, r in first + rest
        if r.outcome is Outcome.SUCCEEDED and r.event_type == "user.created"
    ]
    assert len(succeeded) == 1
    assert succeeded[0].attempt >= 3
    log = (tmp_path / "w.log").read_text()
    assert '"message.retry_scheduled"' in log
    assert broker.depth(broker.DLQ) == 0


def test_retries_are_bounded_and_the_dead_letter_tells_the_story(
    platform: SuitePlatform, results: str, tmp_path: Path
) -> None:
    body_line = line("user.created", user_data(f"never-{secrets.token_hex(3)}", "x"), "never")
    with platform.worker(tmp_path / "w.log", {**FAST_RETRIES, "PROVISIONER_RETRY_ATTEMPTS": "3"}):
        publish(platform, tmp_path, body_line)
        got = collect(results, 3, timeout=30)
    assert [(r.outcome, r.attempt) for _, r in got] == [
        (Outcome.RETRY_SCHEDULED, 1),
        (Outcome.RETRY_SCHEDULED, 2),
        (Outcome.DEAD_LETTERED, 3),
    ]
    (dead,) = broker.drain(broker.DLQ)
    headers = dead.headers
    assert headers["x-error-code"] == "retries_exhausted"
    assert "tenant_not_ready" in headers["x-error-message"]
    assert [a["code"] for a in headers["x-attempts"]] == ["tenant_not_ready"] * 3
    assert [a["attempt"] for a in headers["x-attempts"]] == [1, 2, 3]
    assert headers["x-original-routing-key"] == "user.created"
    assert headers["x-first-failure-at"] < headers["x-last-failure-at"]
    assert headers["x-dead-letter-id"]
    body = msgpack.unpackb(dead.body)
    assert body["idempotency_key"] == "never"  # the body is the one published, unchanged
    assert b"Reliable-Passw0rd!" not in dead.body  # the password stayed sealed


def test_records_are_kept_for_the_retention_and_purged_after(
    platform: SuitePlatform, admin: ldap3.Connection, results: str, tmp_path: Path
) -> None:
    tenant = new_tenant(platform)
    with platform.worker(tmp_path / "w.log"):
        created = created_then_deleted(platform, tmp_path, results, tenant, "kept")
    kept = platform.provisioner("records", "purge")  # default retention: nothing this new
    assert kept.returncode == 0, kept.stderr
    assert kept.stdout.startswith("purged 0 ")
    purged = platform.provisioner("records", "purge", "--older-than-days", "0")
    assert purged.returncode == 0, purged.stderr
    assert int(purged.stdout.split()[1]) >= 2
    # Past retention, a replayed create is a new intent again: that is the documented limit.
    with platform.worker(tmp_path / "w2.log"):
        publish(platform, tmp_path, created)
        ((key, _),) = collect(results, 1)
    assert key == "user.created.succeeded"
    assert users_named(admin, tenant, "kept") == 1


def test_sigterm_drains_and_loses_nothing(
    platform: SuitePlatform, admin: ldap3.Connection, results: str, tmp_path: Path
) -> None:
    tenant = new_tenant(platform)
    total = 120
    publish(
        platform,
        tmp_path,
        *(
            line("user.created", user_data(tenant, f"t{n:03d}"), f"{tenant}-t{n}")
            for n in range(total)
        ),
    )
    with platform.worker(tmp_path / "w.log") as worker:
        wait_for(lambda: broker.depth(results) >= 10, 60, interval=0.1)
        started = time.monotonic()
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(30) == 0
        took = time.monotonic() - started
    assert took < 5, f"draining took {took:.1f} s"  # one message in hand, no more
    answered = broker.depth(results)
    assert 10 <= answered < total, answered  # stopped mid-run
    assert answered + broker.depth(broker.WORK) == total  # the rest are back in the queue
    log = (tmp_path / "w.log").read_text()
    assert '"worker.stopped"' in log
    with platform.worker(tmp_path / "w2.log"):
        wait_for(lambda: broker.depth(results) >= total, 60, interval=0.2)
    admin.search(f"OU={tenant},OU=Tenants,{BASE}", "(&(objectClass=user)(cn=t*))", ldap3.LEVEL)
    assert len([r for r in admin.response if r.get("type") == "searchResEntry"]) == total
