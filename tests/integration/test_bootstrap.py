"""``provisioner directory bootstrap`` and the worker's preflight, against the real DC."""

from __future__ import annotations

from collections.abc import Iterator

import ldap3
import pytest

from tests.support import ldap_oracle
from tests.support.platform import SuitePlatform

DS_DN = "CN=Directory Service,CN=Windows NT,CN=Services,CN=Configuration,DC=hosting,DC=test"
TENANTS_DN = "OU=Tenants,DC=hosting,DC=test"
CLERK_DN = "CN=bootstrap-clerk,CN=Users,DC=hosting,DC=test"
CLERK_PASSWORD = "Clerk-Passw0rd-only-for-tests"


def heuristics(admin: ldap3.Connection) -> str | None:
    entry = ldap_oracle.read(admin, DS_DN, ["dSHeuristics"])
    assert entry is not None
    values = entry.get("dSHeuristics", [])
    assert len(values) <= 1
    return values[0] if values else None


@pytest.fixture
def list_object_mode_off(admin: ldap3.Connection) -> Iterator[None]:
    assert admin.modify(DS_DN, {"dSHeuristics": [(ldap3.MODIFY_REPLACE, ["000"])]}), admin.result
    yield
    assert admin.modify(DS_DN, {"dSHeuristics": [(ldap3.MODIFY_REPLACE, ["001"])]}), admin.result


@pytest.fixture
def clerk(admin: ldap3.Connection) -> str:
    """An ordinary domain user: can bind, cannot write the configuration partition."""
    password = f'"{CLERK_PASSWORD}"'.encode("utf-16-le")
    assert admin.add(
        CLERK_DN,
        ["top", "person", "organizationalPerson", "user"],
        {"sAMAccountName": "bootstrap-clerk", "unicodePwd": password, "userAccountControl": 512},
    ), admin.result
    return CLERK_DN


def test_platform_up_bootstrapped_the_directory(admin: ldap3.Connection) -> None:
    assert heuristics(admin) == "001"
    assert ldap_oracle.read(admin, TENANTS_DN, ["ou"]) is not None


def test_bootstrap_is_idempotent(platform: SuitePlatform, admin: ldap3.Connection) -> None:
    result = platform.bootstrap()
    assert result.returncode == 0, result.stderr
    assert "nothing to change" in result.stdout
    assert heuristics(admin) == "001"


@pytest.mark.usefixtures("list_object_mode_off")
def test_bootstrap_without_rights_fails_loudly_and_changes_nothing(
    platform: SuitePlatform, admin: ldap3.Connection, clerk: str
) -> None:
    as_clerk = {"PROVISIONER_LDAP_BIND_DN": clerk, "PROVISIONER_LDAP_BIND_PASSWORD": CLERK_PASSWORD}
    # Positive control on the same account: the clerk binds and reads the object.
    readable = platform.provisioner("directory", "check", overrides=as_clerk)
    assert "List Object Mode is off" in readable.stderr
    refused = platform.provisioner(
        "directory",
        "bootstrap",
        "--admin-bind-dn",
        clerk,
        "--admin-password-file",
        "-",
        stdin=CLERK_PASSWORD + "\n",
    )
    assert refused.returncode == 1
    assert "cannot enable List Object Mode" in refused.stderr
    assert "insufficientAccessRights" in refused.stderr
    assert heuristics(admin) == "000"
    # Administrator succeeds where the clerk could not.
    fixed = platform.bootstrap()
    assert fixed.returncode == 0, fixed.stderr
    assert "dSHeuristics '000' -> '001'" in fixed.stdout
    assert heuristics(admin) == "001"


@pytest.mark.usefixtures("list_object_mode_off")
def test_worker_refuses_to_start_when_list_object_mode_is_off(platform: SuitePlatform) -> None:
    check = platform.provisioner("directory", "check")
    assert check.returncode == 1
    assert "List Object Mode is off" in check.stderr
    worker = platform.provisioner("worker")
    assert worker.returncode == 1
    assert "List Object Mode is off" in worker.stderr
    assert "worker.started" not in worker.stderr


def test_a_wrong_password_is_a_clear_error(platform: SuitePlatform) -> None:
    result = platform.provisioner(
        "directory", "check", overrides={"PROVISIONER_LDAP_BIND_PASSWORD": "wrong"}
    )
    assert result.returncode == 1
    assert "invalidCredentials" in result.stderr


def test_an_unlocked_tenants_ou_stops_the_worker_until_bootstrap_locks_it(
    platform: SuitePlatform, admin: ldap3.Connection
) -> None:
    from ldap3.protocol.microsoft import security_descriptor_control  # noqa: PLC0415
    from winacl.dtyp.security_descriptor import SECURITY_DESCRIPTOR  # noqa: PLC0415

    sddl = ldap_oracle.dacl_sddl(admin, TENANTS_DN)
    assert sddl.startswith("D:P(")
    assert "(A;;0x20090;;;S-1-5-11)" in sddl  # Authenticated Users: RC, LO, RP only
    # Someone opens OU=Tenants up again: inheritance back on, List Contents for everyone.
    opened = SECURITY_DESCRIPTOR.from_sddl("D:AI(A;CI;0xf01ff;;;S-1-5-18)(A;;0x20094;;;S-1-5-11)")
    controls = security_descriptor_control(sdflags=0x04)
    assert admin.modify(
        TENANTS_DN,
        {"nTSecurityDescriptor": [(ldap3.MODIFY_REPLACE, [opened.to_bytes()])]},
        controls=controls,
    ), admin.result
    try:
        check = platform.provisioner("directory", "check")
        assert check.returncode == 1
        assert "is not locked down" in check.stderr
        fixed = platform.bootstrap()
        assert fixed.returncode == 0, fixed.stderr
        assert f"locked down {TENANTS_DN}" in fixed.stdout
    finally:
        platform.bootstrap()
    assert platform.provisioner("directory", "check").returncode == 0
    assert ldap_oracle.dacl_sddl(admin, TENANTS_DN) == sddl
