"""Four worker processes racing: sAMAccountNames stay unique, quotas are never exceeded."""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from collections import Counter
from contextlib import ExitStack
from pathlib import Path

import ldap3

from messages.results import Outcome, decode_result
from tests.support import broker, engine
from tests.support.platform import SuitePlatform, wait_for

BASE = "DC=hosting,DC=test"
WORKERS = 4
DIGITS = 3  # 1,000 names for 200 users: collisions are certain


def first_candidate(tenant: str, username: str) -> str:
    """The scheme of docs/engine.md, computed here on its own: attempt 0."""
    digest = hashlib.sha256(f"{tenant}\0{username}\0{0}".encode()).digest()
    return "u" + str(int.from_bytes(digest[:8], "big") % 10**DIGITS).zfill(DIGITS)


def publish_users(platform: SuitePlatform, path: Path, pairs: list[tuple[str, str]]) -> None:
    lines = [
        json.dumps(
            {
                "type": "user.created",
                "idempotency_key": f"{t}-{u}",
                "data": {
                    "tenant": t,
                    "username": u,
                    "given_name": "Race",
                    "surname": u,
                    "password": "Race-Passw0rd!",
                },
            }
        )
        for t, u in pairs
    ]
    path.write_text("\n".join(lines) + "\n")
    published = platform.provisioner("publish", "--file", str(path))
    assert published.returncode == 0, published.stderr


def test_two_hundred_colliding_users_on_four_workers(
    platform: SuitePlatform, admin: ldap3.Connection, results: str, tmp_path: Path
) -> None:
    run = secrets.token_hex(2)
    tenants = [f"cc{i}-{run}" for i in range(10)]
    for tenant in tenants:
        engine.run(
            platform,
            engine.event(
                platform,
                "tenant.created",
                engine.tenant_data(tenant, admin_password="Race-Passw0rd!"),
                f"{tenant}-created",
            ),
        )
    usernames = [f"user{j:02d}" for j in range(20)]  # the same 20 names in every tenant
    pairs = [(t, u) for u in usernames for t in tenants]
    with ExitStack() as stack:
        pids = [
            stack.enter_context(
                platform.worker(
                    tmp_path / f"worker-{n}.log", {"PROVISIONER_SAM_DIGITS": str(DIGITS)}
                )
            ).pid
            for n in range(WORKERS)
        ]
        publish_users(platform, tmp_path / "users.jsonl", pairs)
        wait_for(lambda: broker.depth(results) == len(pairs), 120, interval=0.5)
    outcome = [decode_result(m.body) for m in broker.drain(results)]
    assert Counter(r.outcome for r in outcome) == {Outcome.SUCCEEDED: len(pairs)}
    assert broker.depth("provisioning.dead-letter") == 0
    served = {
        json.loads(line)["worker"].split(":")[1]
        for n in range(WORKERS)
        for line in (tmp_path / f"worker-{n}.log").read_text().splitlines()
        if '"message.succeeded"' in line
    }
    assert len(served) > 1, "the work was not shared"  # several of the pids did work
    assert served <= {str(p) for p in pids}

    sams: dict[str, str] = {}
    for tenant in tenants:
        admin.search(
            f"OU={tenant},OU=Tenants,{BASE}",
            "(&(objectClass=user)(!(cn=admin)))",
            ldap3.LEVEL,
            attributes=["cn", "sAMAccountName"],
        )
        for entry in admin.response:
            raw = entry["raw_attributes"]
            sams[f"{tenant}/{raw['cn'][0].decode()}"] = raw["sAMAccountName"][0].decode()
    assert sorted(sams) == sorted(f"{t}/{u}" for t, u in pairs)  # none lost
    assert len(set(sams.values())) == len(pairs)  # none duplicated
    assert all(re.fullmatch(r"u\d{3}", s) for s in sams.values())
    by_result = {r.in_reply_to: r.details["user"] for r in outcome}
    assert {d["sAMAccountName"] for d in by_result.values()} == set(sams.values())
    moved = sum(1 for key, sam in sams.items() if sam != first_candidate(*key.split("/")))
    assert moved > 0, "no collision happened: the test proves nothing"


def test_a_quota_raced_by_four_workers_is_never_exceeded(
    platform: SuitePlatform, admin: ldap3.Connection, results: str, tmp_path: Path
) -> None:
    tenant = f"cq-{secrets.token_hex(3)}"
    engine.run(
        platform,
        engine.event(
            platform,
            "tenant.created",
            engine.tenant_data(tenant, admin_password="Race-Passw0rd!", max_users=5),
            f"{tenant}-created",
        ),
    )
    pairs = [(tenant, f"racer{j:02d}") for j in range(20)]
    with ExitStack() as stack:
        for n in range(WORKERS):
            stack.enter_context(platform.worker(tmp_path / f"worker-{n}.log"))
        publish_users(platform, tmp_path / "users.jsonl", pairs)
        wait_for(lambda: broker.depth(results) == len(pairs), 120, interval=0.5)
    outcome = Counter(
        (r.outcome, r.error.code if r.error else None)
        for r in (decode_result(m.body) for m in broker.drain(results))
    )
    assert outcome == {(Outcome.SUCCEEDED, None): 4, (Outcome.DEAD_LETTERED, "quota_exceeded"): 16}
    admin.search(f"OU={tenant},OU=Tenants,{BASE}", "(objectClass=user)", ldap3.LEVEL)
    assert len(admin.response) == 5  # the admin and four users
