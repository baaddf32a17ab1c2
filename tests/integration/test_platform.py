"""The local platform script, as the test suite's own fixture brought it up."""

from __future__ import annotations

import os
import re
import stat
import subprocess
from pathlib import Path

from tests.support.platform import SuitePlatform

ENV_KEYS = {
    "PROVISIONER_AMQP_URL",
    "PROVISIONER_LDAP_URL",
    "PROVISIONER_LDAP_BIND_DN",
    "PROVISIONER_LDAP_BIND_PASSWORD",
    "PROVISIONER_LDAP_BASE_DN",
    "PROVISIONER_LDAP_CA_FILE",
}


def samba_pid(platform: SuitePlatform) -> int:
    return int((platform.state_dir / "samba.pid").read_text(encoding="utf-8"))


def test_env_file_is_private_and_complete(platform: SuitePlatform) -> None:
    mode = stat.S_IMODE(platform.env_file.stat().st_mode)
    assert mode == 0o600
    env = platform.settings_env
    assert env.keys() >= ENV_KEYS
    assert env["PROVISIONER_LDAP_URL"] == f"ldaps://{platform.listen_ip}:636"
    assert env["PROVISIONER_LDAP_BASE_DN"] == "DC=hosting,DC=test"
    assert env["PROVISIONER_AMQP_URL"].endswith("/%2Fprovisioning-test")


def test_generated_passwords_are_never_printed(platform: SuitePlatform) -> None:
    secrets = [
        platform.administrator_password,
        platform.settings_env["PROVISIONER_LDAP_BIND_PASSWORD"],
    ]
    assert all(len(s) >= 30 for s in secrets)
    assert "platform up in" in platform.up_output  # positive control: we hold the real output
    for secret in secrets:
        assert secret not in platform.up_output


def test_samba_listens_on_its_loopback_address_only(platform: SuitePlatform) -> None:
    pid = samba_pid(platform)
    group = [str(p) for p in _processes() if _group_of(p) == pid]
    listing = subprocess.run(["ss", "-Htlnup"], capture_output=True, text=True, check=True).stdout
    addresses = set()
    for line in listing.splitlines():
        pids = set(re.findall(r"pid=(\d+)", line))
        if pids & set(group):
            addresses.add(line.split()[4])
    assert f"{platform.listen_ip}:636" in addresses
    assert all(a.startswith(f"{platform.listen_ip}:") for a in addresses), addresses


def test_a_second_up_changes_nothing(platform: SuitePlatform) -> None:
    pid_before = samba_pid(platform)
    env_before = platform.env_file.read_bytes()
    again = platform.script("up")
    assert again.returncode == 0, again.stderr
    assert "directory bootstrapped (nothing to change)" in again.stdout
    assert "provisioning Samba" not in again.stderr
    assert samba_pid(platform) == pid_before
    assert platform.env_file.read_bytes() == env_before


def test_status_reports_everything_running(platform: SuitePlatform) -> None:
    status = platform.script("status")
    assert status.returncode == 0, status.stdout
    assert f"LDAPS answering on {platform.listen_ip}:636" in status.stdout
    assert f"vhost:      {platform.vhost}" in status.stdout


def _processes() -> list[int]:
    return [int(entry.name) for entry in Path("/proc").iterdir() if entry.name.isdigit()]


def _group_of(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except ProcessLookupError:
        return None  # gone since the listing
