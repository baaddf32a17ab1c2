"""``provisioner dlq`` against the real dead-letter queue, filled by a real worker."""

from __future__ import annotations

import json
import re
import secrets
import subprocess
from pathlib import Path

import ldap3

from messages.results import Outcome, decode_result
from tests.support import broker, engine
from tests.support.platform import PROVISIONER, SuitePlatform, wait_for

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
    named_where_operators_find_them(platform, tmp_path, results)
    mine = find_and_understand(platform, tenant)
    found_by_what_operators_know(platform, tenant)
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
    return mine


def named_where_operators_find_them(platform: SuitePlatform, tmp_path: Path, results: str) -> None:
    """The dead-letter id is in the worker's log line and in the result event."""
    listed = {r[0] for r in rows(platform.provisioner("dlq", "list").stdout)}
    answers = [decode_result(m.body) for m in broker.drain(results)]
    dead = [a for a in answers if a.outcome is Outcome.DEAD_LETTERED]
    assert {a.details["dead_letter_id"] for a in dead} == listed
    log = (tmp_path / "fill.log").read_text().splitlines()
    logged = [json.loads(line) for line in log if line.startswith("{")]
    lines = [x for x in logged if x.get("event") == "message.dead_lettered"]
    assert {x["dead_letter_id"] for x in lines} == listed


def found_by_what_operators_know(platform: SuitePlatform, tenant: str) -> None:
    """A message id, an idempotency key or the dead letter's own id; an id that names
    nothing is an error, a filter that matches nothing is not."""
    by_key = platform.provisioner("dlq", "show", f"{tenant}-early1")  # the idempotency key
    assert by_key.returncode == 0, by_key.stderr
    assert f"idempotency key: {tenant}-early1" in by_key.stdout
    by_message = platform.provisioner("dlq", "show", "junk-1")  # the producer's message id
    assert by_message.returncode == 0, by_message.stderr
    assert "message id:     junk-1" in by_message.stdout
    assert "error:          malformed_msgpack" in by_message.stdout
    listed = rows(platform.provisioner("dlq", "list", f"{tenant}-early2", "junk-0").stdout)
    assert len(listed) == 2
    for action in (("show",), ("list", "junk-0"), ("replay", "--dry-run", "junk-0")):
        named = platform.provisioner("dlq", *action, "no-such-id")
        assert named.returncode == 1, (action, named.stdout)
        assert named.stderr.strip() == "provisioner: no dead letter is known as no-such-id"
    for acting in (("replay", "junk-0"), ("discard", "--yes", "junk-0")):
        named = platform.provisioner("dlq", *acting, "no-such-id")
        assert named.returncode == 1, (acting, named.stdout)
        assert named.stdout == ""  # nothing done, not even the letter that was named well
    assert broker.depth(broker.DLQ) == 4  # nothing was discarded or replayed
    for action in (("list",), ("replay",), ("replay", "--dry-run"), ("discard", "--yes")):
        nothing = platform.provisioner("dlq", *action, "--tenant", "nobody")
        assert nothing.returncode == 0, (action, nothing.stderr)
        assert nothing.stdout.splitlines()[-1] == "no dead letter matches"
    # Scriptable: JSON Lines, the same letters and facts as the tables.
    as_json = platform.provisioner("dlq", "list", "--json")
    records = [json.loads(line) for line in as_json.stdout.splitlines()]
    assert sorted(r["id"] for r in records) == sorted(
        r[0] for r in rows(platform.provisioner("dlq", "list").stdout)
    )
    mine = next(r for r in records if r["idempotency_key"] == f"{tenant}-early1")
    assert (mine["type"], mine["tenant"], mine["error_code"]) == (
        "user.created",
        tenant,
        "retries_exhausted",
    )
    whole = json.loads(platform.provisioner("dlq", "show", "--json", mine["id"]).stdout)
    assert whole["history"][0]["code"] == "tenant_not_ready"
    assert whole["message"]["data"]["password"] == "[sealed password, not shown]"
    grouped = platform.provisioner("dlq", "list", "--json", "--group-by", "error").stdout
    counts = {g["error_code"]: g["count"] for g in map(json.loads, grouped.splitlines())}
    assert counts == {"malformed_msgpack": 2, "retries_exhausted": 2}
    assert PASSWORD not in as_json.stdout + json.dumps(whole) + grouped
    # A reader that goes away (`| head`) ends the output quietly.
    piped = subprocess.run(
        ["bash", "-o", "pipefail", "-c", f"{PROVISIONER} dlq list | true"],
        env=platform.provisioner_env(),
        capture_output=True,
        text=True,
        check=False,
    )
    assert piped.returncode == 0, piped.stderr
    assert "Traceback" not in piped.stderr
    assert piped.stderr == ""


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
