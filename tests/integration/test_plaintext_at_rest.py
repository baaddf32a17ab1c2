"""No plaintext password at rest: not on the broker's disk, not in a dead letter, an
export, a log or an idempotency record, even when a producer sends one unsealed."""

from __future__ import annotations

import json
import secrets
import uuid
from pathlib import Path

import ldap3
import msgpack

from bench.common import rabbitmqctl
from messages.envelope import encode
from tests.support import broker, engine
from tests.support.platform import SuitePlatform, wait_for
from workers.delivery.failures import PLAINTEXT_MARKER


def broker_data_dir() -> Path:
    """The platform's broker's own data directory (whichever node the platform uses)."""
    done = rabbitmqctl("eval", "rabbit_mnesia:dir().", check=True)
    return Path(done.stdout.strip().strip('"'))


def files_holding(root: Path, needle: str) -> list[str]:
    wanted = needle.encode()
    return [
        str(path)
        for path in root.rglob("*")
        if path.is_file() and not path.is_symlink() and wanted in path.read_bytes()
    ]


def plaintext_user_created(platform: SuitePlatform, tenant: str, password: str) -> bytes:
    """A user.created as a producer in error sends it: the password a plain string."""
    sealed = engine.event(
        platform,
        "user.created",
        {"tenant": tenant, "username": "plain", "given_name": "P", "surname": "T",
         "password": "Sealed-Before-Swap-1"},
        f"{tenant}-plain",
    )  # fmt: skip
    raw = msgpack.unpackb(encode(sealed), raw=False)
    raw["data"]["password"] = password
    return bytes(msgpack.packb(raw, use_bin_type=True))


def test_a_plaintext_password_never_reaches_the_dead_letter_queue(
    platform: SuitePlatform, results: str, tmp_path: Path
) -> None:
    del results
    tenant = engine.create_tenant(platform, "pt", "Plaintext-Admin-Passw0rd-1")
    plaintext = f"Plain-{secrets.token_hex(6)}-Pw1"
    body = plaintext_user_created(platform, tenant, plaintext)
    assert plaintext.encode() in body  # what the producer sent
    with platform.worker(tmp_path / "w.log"):
        broker.publish_raw("provisioning.events", "user.created", body, str(uuid.uuid4()))
        wait_for(lambda: broker.depth(broker.DLQ) == 1, 30)
        shown = platform.provisioner("dlq", "list").stdout
    export = platform.provisioner("dlq", "export").stdout
    letter_id = json.loads(export.splitlines()[0])["id"]
    show = platform.provisioner("dlq", "show", letter_id).stdout
    assert "wrong_type" in shown  # the listing holds the letter
    ((letter),) = broker.drain(broker.DLQ)
    assert letter.headers["x-error-code"] == "wrong_type"
    assert letter.headers["x-redacted"] == ["data.password"]
    assert "redacted:       data.password (sent in plaintext; removed before storing)" in show
    stored = msgpack.unpackb(letter.body, raw=False)
    assert stored["data"]["password"] == PLAINTEXT_MARKER
    assert stored["data"]["username"] == "plain"  # the rest is intact
    for where, text in {
        "stored body": letter.body.decode("latin-1"),
        "dlq list": shown,
        "dlq show": show,
        "dlq export": export,
        "worker log": (tmp_path / "w.log").read_text(),
    }.items():
        assert plaintext not in text, where


def test_no_password_of_a_run_is_on_disk_and_a_planted_one_is_found(
    platform: SuitePlatform, results: str, tmp_path: Path, admin: ldap3.Connection
) -> None:
    tenant = f"pd-{secrets.token_hex(3)}"
    admin_password = f"Disk-Admin-{secrets.token_hex(6)}-1"
    given = f"Disk-Given-{secrets.token_hex(6)}-2"
    tenant_event = {
        "type": "tenant.created",
        "idempotency_key": f"{tenant}-c",
        "data": engine.tenant_data(tenant, admin_password=admin_password),
    }
    user_event = {
        "type": "user.created",
        "idempotency_key": f"{tenant}-u",
        "data": {"tenant": tenant, "username": "disk", "given_name": "D", "surname": "K",
                 "password": given},
    }  # fmt: skip
    events = tmp_path / "events.jsonl"
    events.write_text("\n".join(json.dumps(e) for e in (tenant_event, user_event)) + "\n")
    with platform.worker(tmp_path / "w.log"):
        assert platform.provisioner("publish", "--file", str(events)).returncode == 0
        wait_for(lambda: broker.depth(results) == 2, 60)
    assert len(broker.drain(results)) == 2
    records = "CN=Idempotency,CN=Provisioner,CN=System,DC=hosting,DC=test"
    admin.search(records, "(objectClass=*)", ldap3.LEVEL, attributes=["*"])
    ledger = repr([r.get("raw_attributes") for r in admin.response])
    assert f"entity:user:{tenant}/disk".encode() in ledger.encode()  # the records were read

    data_dir = broker_data_dir()
    planted = f"Planted-{secrets.token_hex(8)}"
    queue = f"test.planted.{secrets.token_hex(3)}"
    with broker.channel() as ch:
        ch.queue_declare(queue, durable=True, arguments={"x-queue-type": "quorum"})
        ch.confirm_delivery()
        ch.basic_publish("", queue, planted.encode(), mandatory=True)
    try:
        # The positive control: a plaintext that did reach the broker is found on its disk.
        wait_for(lambda: bool(files_holding(data_dir, planted)), 30, interval=1)
        for secret in (admin_password, given):
            assert files_holding(data_dir, secret) == [], secret
            assert secret not in ledger
            assert secret not in (tmp_path / "w.log").read_text()
            assert secret not in platform.provisioner("dlq", "export").stdout
    finally:
        with broker.channel() as ch:
            ch.queue_delete(queue)
