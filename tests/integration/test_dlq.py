"""``provisioner dlq`` against the real dead-letter queue, filled by a real worker."""

from __future__ import annotations

import json
import re
import secrets
from pathlib import Path

import ldap3

from messages.results import Outcome, decode_result
from tests.support import broker, engine
from tests.support.platform import SuitePlatform, wait_for

PASSWORD = "Dead-Letter-Passw0rd!"
ONE_ATTEMPT = {"PROVISIONER_RETRY_ATTEMPTS": "1"}


def fill(platform: SuitePlatform, tmp_path: Path, tenant: str) -> None:
    """Two users for a tenant that does not exist yet, and two malformed bodies."""
    lines = [
        json.dumps(
            {
                "type": "user.created",
                "idempotency_key": f"{tenant}-{name}",
                "data": {
                    "tenant": tenant,
                    "username": name,
                    "given_name": "D",
                    "surname": "L",
                    "password": PASSWORD,
                },
            }
        )
        for name in ("early1", "early2")
    ]
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(lines) + "\n")
    with platform.worker(tmp_path / "fill.log", ONE_ATTEMPT):
        assert platform.provisioner("publish", "--file", str(path)).returncode == 0
        for index in range(2):
            broker.publish_raw(
                "provisioning.events", "user.created", b"\xc1garbage", message_id=f"junk-{index}"
            )
        wait_for(lambda: broker.depth(broker.DLQ) == 4, 30)


def rows(output: str) -> list[list[str]]:
    return [line.split() for line in output.splitlines()[1:-1]]


def test_the_operator_workflow(
    platform: SuitePlatform, admin: ldap3.Connection, results: str, tmp_path: Path
) -> None:
    tenant = f"dl-{secrets.token_hex(3)}"
    fill(platform, tmp_path, tenant)
    mine = find_and_understand(platform, tenant)
    replay_too_early(platform, tmp_path, mine[0][0])
    fix_then_replay(platform, admin, results, tmp_path, tenant)
    export_discard_import(platform, tmp_path)


def find_and_understand(platform: SuitePlatform, tenant: str) -> list[list[str]]:
    listed = platform.provisioner("dlq", "list")
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.splitlines()[-1] == "4 dead letter(s)"
    assert sorted(r[3] for r in rows(listed.stdout)) == [
        "malformed_msgpack",
        "malformed_msgpack",
        "retries_exhausted",
        "retries_exhausted",
    ]
    mine = rows(platform.provisioner("dlq", "list", "--tenant", tenant).stdout)
    assert [(r[1], r[2]) for r in mine] == [("user.created", tenant)] * 2
    grouped = platform.provisioner("dlq", "list", "--group-by", "error").stdout
    assert [line.split()[:2] for line in grouped.splitlines()[1:]] == [
        ["malformed_msgpack", "2"],
        ["retries_exhausted", "2"],
    ]
    shown = platform.provisioner("dlq", "show", mine[0][0])
    assert shown.returncode == 0, shown.stderr
    assert "error:          retries_exhausted" in shown.stdout
    assert "tenant_not_ready" in shown.stdout  # the attempt history
    assert "[sealed password, not shown]" in shown.stdout
    assert PASSWORD not in shown.stdout + shown.stderr
    assert platform.provisioner("dlq", "show", "no-such-id").returncode == 1
    return mine


def replay_too_early(platform: SuitePlatform, tmp_path: Path, dead_letter_id: str) -> None:
    """Before the cause is fixed it fails again and comes back, its history extended."""
    with platform.worker(tmp_path / "w1.log", ONE_ATTEMPT):
        again = platform.provisioner("dlq", "replay", dead_letter_id)
        assert again.stdout.splitlines()[-1] == "replayed 1 dead letter(s)"
        wait_for(lambda: broker.depth(broker.DLQ) == 4, 30)
    back = platform.provisioner("dlq", "show", dead_letter_id).stdout  # the same id
    attempts = [line for line in back.splitlines() if re.match(r"  \d+\. ", line)]
    assert len(attempts) == 2
    assert all("tenant_not_ready" in line for line in attempts)
    assert "replays:        1" in back


def fix_then_replay(
    platform: SuitePlatform, admin: ldap3.Connection, results: str, tmp_path: Path, tenant: str
) -> None:
    engine.run(
        platform,
        engine.event(
            platform,
            "tenant.created",
            engine.tenant_data(tenant, admin_password=PASSWORD),
            f"{tenant}-created",
        ),
    )
    plan = platform.provisioner("dlq", "replay", "--tenant", tenant, "--dry-run")
    assert plan.returncode == 0, plan.stderr
    assert plan.stdout.count("user.created (all or nothing):") == 2
    assert "[to do] create user CN=early1" in plan.stdout
    assert broker.depth(broker.DLQ) == 4  # a dry run moves nothing
    broker.purge(results)
    with platform.worker(tmp_path / "w2.log"):
        replayed = platform.provisioner(
            "dlq", "replay", "--error", "retries_exhausted", "--rate", "20/s"
        )
        assert replayed.stdout.splitlines()[-1] == "replayed 2 dead letter(s)"
        wait_for(lambda: broker.depth(results) >= 2, 30)
    outcomes = [decode_result(m.body).outcome for m in broker.drain(results)]
    assert outcomes == [Outcome.SUCCEEDED, Outcome.SUCCEEDED]
    for name in ("early1", "early2"):
        assert admin.search(
            f"OU={tenant},OU=Tenants,DC=hosting,DC=test", f"(cn={name})", ldap3.LEVEL
        )
    assert broker.depth(broker.DLQ) == 2  # the malformed ones stay


def export_discard_import(platform: SuitePlatform, tmp_path: Path) -> None:
    exported = tmp_path / "dead.jsonl"
    assert platform.provisioner("dlq", "export", "--file", str(exported)).returncode == 0
    saved = [json.loads(line) for line in exported.read_text().splitlines()]
    assert len(saved) == 2
    assert broker.depth(broker.DLQ) == 2  # exporting removes nothing
    refused = platform.provisioner("dlq", "discard", "--all", stdin="n\n")
    assert refused.returncode == 1
    assert broker.depth(broker.DLQ) == 2
    gone = platform.provisioner("dlq", "discard", "--error", "malformed_msgpack", "--yes")
    assert gone.stdout.strip() == "discarded 2 dead letter(s)"
    assert broker.depth(broker.DLQ) == 0
    imported = platform.provisioner("dlq", "import", "--file", str(exported))
    assert imported.stdout.strip() == "imported 2 dead letter(s)"
    restored = [json.loads(x) for x in platform.provisioner("dlq", "export").stdout.splitlines()]
    assert sorted(x["body"] for x in restored) == sorted(x["body"] for x in saved)
    assert sorted(x["id"] for x in restored) == sorted(x["id"] for x in saved)


def test_replay_needs_a_selection(platform: SuitePlatform) -> None:
    result = platform.provisioner("dlq", "replay")
    assert result.returncode == 2
    assert "name dead letters by id, by filter, or --all" in result.stderr
