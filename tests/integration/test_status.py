"""``provisioner status`` against the real broker, a real worker and the real DC: well
when a worker consumes and nothing waits; each wrong thing named, and exit 1, when not."""

from __future__ import annotations

import json
import secrets
from pathlib import Path

from tests.integration.test_metrics import free_port
from tests.support import broker, engine
from tests.support.platform import SuitePlatform, wait_for


def status(platform: SuitePlatform, *args: str) -> tuple[int, str]:
    done = platform.provisioner("status", *args)
    assert "Traceback" not in done.stderr, done.stderr
    return done.returncode, done.stdout


def test_status_says_the_fleet_is_well_then_names_what_is_wrong(
    platform: SuitePlatform, results: str, tmp_path: Path
) -> None:
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    tenant = f"st-{secrets.token_hex(3)}"
    data = engine.tenant_data(tenant, admin_password="Status-Passw0rd!")
    events = tmp_path / "events.jsonl"
    events.write_text(
        json.dumps({"type": "tenant.created", "idempotency_key": tenant, "data": data})
    )
    with platform.worker(tmp_path / "w.log", {"PROVISIONER_METRICS_PORT": str(port)}):
        assert platform.provisioner("publish", "--file", str(events)).returncode == 0
        wait_for(lambda: broker.depth(results) == 1, 30)
        code, shown = status(platform, "--worker", endpoint)
        assert code == 0, shown
        assert shown.splitlines()[-1] == "status: ok"
        row = next(line.split() for line in shown.splitlines() if line.startswith("127.0.0.1:"))
        assert row[:5] == [f"127.0.0.1:{port}", "yes", "yes", "0", "1"]  # live, ready, 1 done
        assert "DC dc1.hosting.test: reachable, bootstrap in place" in shown
        work = next(
            line.split() for line in shown.splitlines() if line.startswith("provisioning.work")
        )
        assert work[1:] == ["0", "1"]  # empty, one consumer
        # Something wrong while it runs: a dead letter waits.
        broker.publish_raw("provisioning.events", "tenant.created", b"\xc1", message_id="st-junk")
        wait_for(lambda: broker.depth(broker.DLQ) == 1, 30)
        code, shown = status(platform, "--worker", endpoint, "--json")
        record = json.loads(shown)
        assert code == 1
        assert record["dead_letters"] == {"malformed_msgpack": 1}
        assert record["problems"] == ["1 dead letter(s) wait for an operator (malformed_msgpack 1)"]
    # The worker gone: nothing consumes, and its endpoint does not answer.
    broker.purge(broker.DLQ)
    code, shown = status(platform, "--worker", endpoint)
    assert code == 1
    problems = shown.splitlines()[shown.splitlines().index("status: PROBLEMS") + 1 :]
    assert problems == [
        "- no worker consumes provisioning.work (0 message(s) waiting)",
        f"- worker {endpoint} is not live (its loop is stuck, or it is gone)",
    ]
