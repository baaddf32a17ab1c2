"""user.created on the real DC, in-process: names, roles, quota, passwords, conflicts."""

from __future__ import annotations

import secrets
from typing import Any

import ldap3
import pytest

from tests.support import engine, ldap_oracle
from tests.support.platform import SuitePlatform
from workers.errors import DependencyNotReady, PermanentError

BASE = "DC=hosting,DC=test"
PASSWORD = "User-Test-Passw0rd!"


def new_tenant(platform: SuitePlatform, max_users: int | None = None) -> str:
    return engine.create_tenant(platform, "uc", PASSWORD, max_users)


def user(platform: SuitePlatform, tenant: str, username: str, **extra: Any) -> dict[str, Any]:
    data = {
        "tenant": tenant,
        "username": username,
        "given_name": "Gina",
        "surname": "User",
        **extra,
    }
    return engine.run(
        platform,
        engine.event(platform, "user.created", data, f"{tenant}-{username}-{secrets.token_hex(2)}"),
    )


def settings_of(admin: ldap3.Connection, tenant: str) -> list[str]:
    """The settings object's msDS-Settings and keywords (the per-user lists), together."""
    entry = ldap_oracle.read(
        admin, f"CN=Tenant Settings,OU={tenant},OU=Tenants,{BASE}", ["msDS-Settings", "keywords"]
    )
    assert entry is not None
    return sorted(entry["msDS-Settings"] + entry.get("keywords", []))


def test_a_user_with_its_names_groups_and_given_password(
    platform: SuitePlatform, admin: ldap3.Connection
) -> None:
    tenant = new_tenant(platform)
    display = ' Doe, Jane "JD" <Sales> #2; a=b + c\\d '
    details = user(platform, tenant, "jane.doe", display_name=display, password=PASSWORD)
    ou = f"OU={tenant},OU=Tenants,{BASE}"
    dn = f"CN=jane.doe,{ou}"
    entry = ldap_oracle.read(
        admin,
        dn,
        ["displayName", "cn", "userPrincipalName", "sAMAccountName", "memberOf", "pwdLastSet"],
    )
    assert entry is not None
    assert entry["displayName"] == [display]  # literally, only in displayName
    assert entry["cn"] == ["jane.doe"]
    assert entry["userPrincipalName"] == [f"jane.doe@{tenant}.example"]
    assert entry["memberOf"] == [f"CN=Tenant Users,{ou}"]
    assert entry["pwdLastSet"] != ["0"]  # a given password needs no change
    assert details["user"]["sAMAccountName"] == entry["sAMAccountName"][0]
    assert "initial_password" not in details["user"]
    with ldap_oracle.bind(platform, f"jane.doe@{tenant}.example", PASSWORD) as conn:
        assert conn.bound, conn.result
    assert "users=2" in settings_of(admin, tenant)


def test_an_admin_role_joins_both_groups(platform: SuitePlatform, admin: ldap3.Connection) -> None:
    tenant = new_tenant(platform)
    user(platform, tenant, "boss", role="admin", password=PASSWORD)
    ou = f"OU={tenant},OU=Tenants,{BASE}"
    entry = ldap_oracle.read(admin, f"CN=boss,{ou}", ["memberOf"])
    assert entry is not None
    assert sorted(entry["memberOf"]) == sorted([f"CN=Tenant Users,{ou}", f"CN=Tenant Admins,{ou}"])


def test_the_quota_counts_the_admin_and_is_never_exceeded(
    platform: SuitePlatform, admin: ldap3.Connection
) -> None:
    tenant = new_tenant(platform, max_users=2)
    user(platform, tenant, "second", password=PASSWORD)
    with pytest.raises(PermanentError) as info:
        user(platform, tenant, "third", password=PASSWORD)
    assert info.value.code == "quota_exceeded"
    assert ldap_oracle.read(admin, f"CN=third,OU={tenant},OU=Tenants,{BASE}", ["cn"]) is None
    assert [v for v in settings_of(admin, tenant) if v.startswith(("users=", "reserved"))] == [
        "reserved:admin",
        "reserved:second",
        "users=2",
    ]


@pytest.mark.parametrize(
    ("extra", "code"),
    [
        ({"password": "short"}, "password_policy"),
        ({"password": "UPN-taken-Passw0rd!"}, "upn_conflict"),
    ],
)
def test_a_refused_user_releases_its_quota_slot(
    platform: SuitePlatform, admin: ldap3.Connection, extra: dict[str, str], code: str
) -> None:
    tenant = new_tenant(platform, max_users=3)
    if code == "upn_conflict":  # someone outside the fleet holds the UPN already
        outsider = f"CN=outsider-{tenant},CN=Users,{BASE}"
        assert admin.add(
            outsider,
            ["top", "person", "organizationalPerson", "user"],
            {
                "sAMAccountName": f"o{secrets.token_hex(4)}",
                "userPrincipalName": f"taken@{tenant}.example",
            },
        ), admin.result
    before = settings_of(admin, tenant)
    with pytest.raises(PermanentError) as info:
        user(platform, tenant, "taken", **extra)
    assert info.value.code == code
    assert settings_of(admin, tenant) == before
    assert ldap_oracle.read(admin, f"CN=taken,OU={tenant},OU=Tenants,{BASE}", ["cn"]) is None


def test_a_password_that_does_not_open_is_refused(platform: SuitePlatform) -> None:
    tenant = new_tenant(platform)
    envelope = engine.event(
        platform,
        "user.created",
        {"tenant": tenant, "username": "sealed", "given_name": "S", "surname": "S"},
        "k",
    )
    forged = type(envelope.data)(**{**envelope.data.__dict__, "password": b"\x00" * 64})
    with pytest.raises(Exception) as info:  # noqa: PT011 - the contract error, below
        engine.run(platform, type(envelope)(**{**envelope.__dict__, "data": forged}))
    assert getattr(info.value, "code", None) == "password_undecryptable"


def test_a_user_before_its_tenant_waits(platform: SuitePlatform) -> None:
    with pytest.raises(DependencyNotReady) as info:
        user(platform, f"nx-{secrets.token_hex(3)}", "early")
    assert info.value.code == "tenant_not_ready"
