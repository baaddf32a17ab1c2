"""``provisioner publish --file F --wait`` against the real broker, a real fleet of two
processes and the real DC: it reports what was provisioned, writes the failed lines (no
password in them) to a file, and resumes an interrupted run by its idempotency keys
without making anything twice.  Every outcome is read back from the DC as Administrator
with plain ldap3."""

from __future__ import annotations

import json
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import ldap3
import pytest

from tests.support import broker, engine, ldap_oracle
from tests.support.platform import PROVISIONER, SuitePlatform, fleet, wait_for

BASE = "DC=hosting,DC=test"
DEAD_LETTERS = "provisioning.dead-letter"
PLAIN_PASSWORD = "Plain-Onb0arding-Secret!"


@pytest.fixture
def tenant(platform: SuitePlatform) -> Iterator[str]:
    """A tenant with room for 5 users besides its admin."""
    yield engine.create_tenant(platform, "pw", "Pw-Admin-Passw0rd!", max_users=6)
    broker.purge(DEAD_LETTERS)


def user_line(tenant: str, username: str, **extra: object) -> str:
    data = {"tenant": tenant, "username": username, "given_name": "On", "surname": "Board"}
    return json.dumps({"type": "user.created", "data": {**data, **extra}}) + "\n"


def users_in(admin: ldap3.Connection, tenant: str) -> list[str]:
    """The usernames (CNs) of the tenant's user objects, one per object, admin included."""
    assert admin.search(
        f"OU={tenant},OU=Tenants,{BASE}",
        "(&(objectCategory=person)(objectClass=user))",
        ldap3.LEVEL,
        attributes=["cn"],
    ), admin.result
    return sorted(
        e["raw_attributes"]["cn"][0].decode()
        for e in admin.response
        if e["type"] == "searchResEntry"
    )


def progress_entries(path: Path) -> list[dict[str, object]]:
    if not path.exists():
        return []
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


def answered(path: Path) -> int:
    return sum(1 for e in progress_entries(path) if e.get("outcome") in {"succeeded", "duplicate"})


def test_it_reports_what_was_provisioned_and_writes_the_failed_lines(
    platform: SuitePlatform, admin: ldap3.Connection, tenant: str, tmp_path: Path
) -> None:
    source = tmp_path / "users.jsonl"
    lines = [user_line(tenant, f"u{i}") for i in range(7)]  # room for 5: 2 over the plan
    # Refused by the contract before anything is published, and holding a password.
    lines.insert(3, user_line(tenant, "not a name!", password=PLAIN_PASSWORD))
    source.write_text("".join(lines))

    with fleet(platform, tmp_path / "fleet.log", processes=2):
        done = platform.provisioner("publish", "--file", str(source), "--wait", "--timeout", "60")

    assert done.returncode == 1, done.stderr
    summary = done.stdout.strip().splitlines()
    assert (
        "succeeded 5, duplicate 0, dead-lettered 2, not published 0, invalid 1, not answered 0"
        in summary[0]
    ), done.stdout
    assert summary[-1] == f"failed lines: 3 in {source}.failed (fix them and publish that file)"
    assert "line 4: invalid: " in done.stderr, done.stderr
    assert done.stderr.count("dead_lettered: quota_exceeded") == 2, done.stderr

    made = users_in(admin, tenant)
    assert len(made) == 6, made
    assert "admin" in made, made
    failed = (tmp_path / "users.jsonl.failed").read_text().splitlines()
    assert len(failed) == 3
    failed_names = {json.loads(x)["data"]["username"] for x in failed}
    assert "not a name!" in failed_names
    assert failed_names - {"not a name!"} == {f"u{i}" for i in range(7)} - set(made)
    # No secret on disk: neither in the failed lines nor in the progress file.
    for written in (source.with_suffix(".jsonl.failed"), source.with_suffix(".jsonl.progress")):
        assert PLAIN_PASSWORD not in written.read_text(), written
    assert all("password" not in json.loads(x)["data"] for x in failed)
    assert "its password is left out of the failed file" in done.stderr

    # The failed lines, fed back once the plan has room: the two over the plan go through.
    raised = engine.event(
        platform,
        "tenant.updated",
        {"tenant": tenant, "plan": {"max_users": 8}},
        f"{tenant}-raise",
    )
    engine.run(platform, raised)
    fixed = tmp_path / "fixed.jsonl"
    fixed.write_text("".join(x + "\n" for x in failed if "not a name!" not in x))
    with fleet(platform, tmp_path / "fleet2.log", processes=2):
        again = platform.provisioner("publish", "--file", str(fixed), "--wait", "--timeout", "60")
    assert again.returncode == 0, again.stderr
    assert "succeeded 2, duplicate 0, dead-lettered 0" in again.stdout
    assert len(users_in(admin, tenant)) == 8
    assert not (tmp_path / "fixed.jsonl.failed").exists()


def test_an_interrupted_run_resumes_by_its_keys_and_makes_nothing_twice(
    platform: SuitePlatform, admin: ldap3.Connection, tmp_path: Path
) -> None:
    tenant = engine.create_tenant(platform, "pr", "Pr-Admin-Passw0rd!", max_users=100)
    count = 60
    source = tmp_path / "users.jsonl"
    # No idempotency key in the file: the run makes them, and only the progress file
    # knows them.
    source.write_text("".join(user_line(tenant, f"r{i:02d}") for i in range(count)))
    progress = tmp_path / "users.jsonl.progress"
    command = [str(PROVISIONER), "publish", "--file", str(source), "--wait"]
    env = platform.provisioner_env(role="suite")

    with fleet(platform, tmp_path / "fleet.log", processes=2):
        first = subprocess.Popen(
            command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        wait_for(lambda: answered(progress) >= 10, timeout=60)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
        at_kill = answered(progress)
        assert 10 <= at_kill < count, f"the kill landed mid-flight: {at_kill} of {count} answered"
        keys_first = {e["line"]: e["key"] for e in progress_entries(progress) if "key" in e}
        assert len(keys_first) == count, "every line was given its key before it was published"

        second = subprocess.Popen(
            command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        out, err = second.communicate(timeout=120)
    assert second.returncode == 0, err
    assert second.pid != first.pid, "the rerun is a new process"
    summary = out.strip().splitlines()[0]
    skipped = int(summary.split("(")[1].split(" ")[0])
    assert skipped >= at_kill, summary
    counts = {
        word: int(summary.split(f"{word} ")[1].split(",")[0]) for word in ("succeeded", "duplicate")
    }
    assert skipped + counts["succeeded"] + counts["duplicate"] == count, summary
    assert "dead-lettered 0" in summary, summary
    assert "not answered 0" in summary, summary

    # Resumed under the same keys: the rerun published each unanswered line again under
    # the key the first run gave it.
    entries = progress_entries(progress)
    for entry in entries:
        if "key" in entry:
            assert entry["key"] == keys_first[entry["line"]], entry
    # Nothing made twice: each user once, and the plan's counter says count users + admin.
    made = users_in(admin, tenant)
    assert made == sorted(["admin", *(f"r{i:02d}" for i in range(count))]), made
    settings = ldap_oracle.read(
        admin, f"CN=Tenant Settings,OU={tenant},OU=Tenants,{BASE}", ["msDS-Settings"]
    )
    assert settings is not None
    assert f"users={count + 1}" in settings["msDS-Settings"], settings
    # A third run has nothing left to do.
    with fleet(platform, tmp_path / "fleet3.log", processes=1):
        third = platform.provisioner("publish", "--file", str(source), "--wait")
    assert third.returncode == 0, third.stderr
    assert f"published 0 ({count} answered before: skipped)" in third.stdout


def test_wait_needs_a_file_and_names_its_files_for_stdin(platform: SuitePlatform) -> None:
    alone = platform.provisioner("publish", "user.disabled", "--data", "{}", "--wait")
    assert alone.returncode == 2
    assert alone.stderr.strip() == "provisioner: --wait goes with --file"
    piped = platform.provisioner("publish", "--file", "-", "--wait", stdin="")
    assert piped.returncode == 2
    assert "needs --progress and --failed" in piped.stderr
