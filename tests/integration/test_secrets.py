"""No password and no bind secret ever shows: not in logs, dead letters, exports or errors."""

from __future__ import annotations

import json
import secrets
from pathlib import Path

from messages.results import decode_result
from messages.sealing import load_private_key, unseal
from tests.support import broker, engine
from tests.support.platform import SuitePlatform, wait_for


def test_secrets_stay_secret(platform: SuitePlatform, results: str, tmp_path: Path) -> None:
    tenant = f"sx-{secrets.token_hex(3)}"
    engine.run(
        platform,
        engine.event(
            platform,
            "tenant.created",
            engine.tenant_data(tenant, admin_password="Admin-Secret-Passw0rd-1"),
            f"{tenant}-created",
        ),
    )
    given = "Given-Secret-Passw0rd-2"
    too_short = "Sh0rt!"  # refused by the domain's policy: a dead letter holding a password
    lines = [
        {
            "type": "user.created",
            "idempotency_key": "s1",
            "data": {
                "tenant": tenant,
                "username": "given",
                "given_name": "G",
                "surname": "S",
                "password": given,
            },
        },
        {
            "type": "user.created",
            "idempotency_key": "s2",
            "data": {
                "tenant": tenant,
                "username": "refused",
                "given_name": "R",
                "surname": "S",
                "password": too_short,
            },
        },
        {
            "type": "user.created",
            "idempotency_key": "s3",
            "data": {"tenant": tenant, "username": "generated", "given_name": "N", "surname": "S"},
        },
    ]
    events = tmp_path / "events.jsonl"
    events.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    with platform.worker(tmp_path / "w.log", {"PROVISIONER_LOG_LEVEL": "debug"}):
        published = platform.provisioner("publish", "--file", str(events))
        wait_for(lambda: broker.depth(results) == 3, 30)
    got = [decode_result(m.body) for m in broker.drain(results)]
    generated_sealed = next(
        r.details["user"]["initial_password"]
        for r in got
        if r.details.get("user", {}).get("initial_password")
    )
    key = load_private_key(platform.settings_env["PROVISIONER_RESULTS_PRIVATE_KEY_FILE"])
    generated = unseal(generated_sealed, key, "initial_password")
    bind_secret = platform.settings_env["PROVISIONER_LDAP_BIND_PASSWORD"]

    dead_id = json.loads(platform.provisioner("dlq", "export").stdout.splitlines()[0])["id"]
    wrong_bind = "Wrong-Bind-Secret-3"
    seen = {
        "publish output": published.stdout + published.stderr,
        "worker log": (tmp_path / "w.log").read_text(),
        "dlq list": platform.provisioner("dlq", "list").stdout,
        "dlq show": platform.provisioner("dlq", "show", dead_id).stdout,
        "dlq export": platform.provisioner("dlq", "export").stdout,
        "dead-letter headers": json.dumps(
            [d.headers for d in broker.drain(broker.DLQ)], default=str
        ),
        "settings": platform.provisioner("settings").stdout,
        "a refused bind": platform.provisioner(
            "directory", "check", overrides={"PROVISIONER_LDAP_BIND_PASSWORD": wrong_bind}
        ).stderr,
    }
    assert "password_policy" in seen["dlq show"]  # the positive control: the right letter
    assert "invalidCredentials" in seen["a refused bind"]
    assert '"message.succeeded"' in seen["worker log"]
    for where, text in seen.items():
        for secret in (
            given,
            too_short,
            generated,
            bind_secret,
            wrong_bind,
            "Admin-Secret-Passw0rd-1",
        ):
            assert secret not in text, f"a secret shows in the {where}"
