"""Every event type after tenant.created and user.created, against the real DC (in-process)."""

from __future__ import annotations

import secrets
from typing import Any

import ldap3
import pytest

from messages.sealing import load_private_key, unseal
from tests.support import engine, ldap_oracle
from tests.support.platform import SuitePlatform
from workers.errors import PermanentError

BASE = "DC=hosting,DC=test"
PASSWORD = "Lifecycle-Passw0rd!"


class Tenant:
    def __init__(self, platform: SuitePlatform, **plan: Any) -> None:
        self.platform = platform
        self.id = f"lc-{secrets.token_hex(3)}"
        self.ou = f"OU={self.id},OU=Tenants,{BASE}"
        data = engine.tenant_data(self.id, admin_password=PASSWORD)
        data["domains"] = [f"{self.id}.example", f"{self.id}.test"]
        if plan:
            data["plan"] = plan
        self.send("tenant.created", data)

    def send(self, kind: str, data: dict[str, Any]) -> dict[str, Any]:
        return engine.run(
            self.platform,
            engine.event(self.platform, kind, {"tenant": self.id, **data}, secrets.token_hex(8)),
        )

    def add_user(self, username: str, **extra: Any) -> dict[str, Any]:
        return self.send(
            "user.created",
            {
                "username": username,
                "given_name": "Lee",
                "surname": "Cycle",
                "password": PASSWORD,
                **extra,
            },
        )

    def dn(self, username: str) -> str:
        return f"CN={username},{self.ou}"

    def upn(self, username: str, domain: str = "example") -> str:
        return f"{username}@{self.id}.{domain}"


def read(admin: ldap3.Connection, dn: str, *attributes: str) -> dict[str, list[str]]:
    entry = ldap_oracle.read(admin, dn, list(attributes))
    assert entry is not None, dn
    return entry


def settings(admin: ldap3.Connection, t: Tenant) -> list[str]:
    """The settings object's msDS-Settings and keywords (the per-user lists), together."""
    entry = read(admin, f"CN=Tenant Settings,{t.ou}", "msDS-Settings", "keywords")
    return sorted(entry["msDS-Settings"] + entry.get("keywords", []))


def can_bind(platform: SuitePlatform, upn: str, password: str) -> str:
    with ldap_oracle.bind(platform, upn, password) as conn:
        return "ok" if conn.bound else str(conn.result["message"])


def test_user_updated_replaces_given_fields_and_moves_the_role(
    platform: SuitePlatform, admin: ldap3.Connection
) -> None:
    t = Tenant(platform)
    t.add_user("pat", display_name="Pat (old)")
    t.send("user.updated", {"username": "pat", "surname": "Newname", "role": "admin"})
    entry = read(admin, t.dn("pat"), "givenName", "sn", "displayName", "memberOf")
    assert (entry["givenName"], entry["sn"], entry["displayName"]) == (
        ["Lee"],
        ["Newname"],
        ["Pat (old)"],
    )
    assert f"CN=Tenant Admins,{t.ou}" in entry["memberOf"]
    t.send("user.updated", {"username": "pat", "role": "user"})
    assert read(admin, t.dn("pat"), "memberOf")["memberOf"] == [f"CN=Tenant Users,{t.ou}"]
    with pytest.raises(PermanentError) as info:
        t.send("user.updated", {"username": "nobody", "given_name": "X"})
    assert info.value.code == "user_not_found"


def test_role_user_for_a_user_never_admin_changes_nothing(
    platform: SuitePlatform, admin: ldap3.Connection
) -> None:
    """Found by the fault drill: Samba answers the removal of a value that was never there
    ("... doesn't exist for target GUID") otherwise than one removed before ("... already
    deleted"); both mean the user is not an admin, which is what was asked."""
    t = Tenant(platform)
    t.add_user("kim")
    assert read(admin, t.dn("kim"), "memberOf")["memberOf"] == [f"CN=Tenant Users,{t.ou}"]
    t.send("user.updated", {"username": "kim", "given_name": "Kimberly", "role": "user"})
    entry = read(admin, t.dn("kim"), "givenName", "memberOf")
    assert entry["givenName"] == ["Kimberly"]
    assert entry["memberOf"] == [f"CN=Tenant Users,{t.ou}"]


def test_disable_enable_and_password_reset(
    platform: SuitePlatform, admin: ldap3.Connection
) -> None:
    t = Tenant(platform)
    t.add_user("sam")
    assert can_bind(platform, t.upn("sam"), PASSWORD) == "ok"
    t.send("user.disabled", {"username": "sam"})
    assert int(read(admin, t.dn("sam"), "userAccountControl")["userAccountControl"][0]) & 2
    assert "data 533" in can_bind(platform, t.upn("sam"), PASSWORD)  # account disabled
    t.send("user.enabled", {"username": "sam"})
    assert can_bind(platform, t.upn("sam"), PASSWORD) == "ok"

    set_at = read(admin, t.dn("sam"), "pwdLastSet")["pwdLastSet"]
    t.send("user.password_reset", {"username": "sam", "password": "Brand-New-Passw0rd!"})
    assert can_bind(platform, t.upn("sam"), "Brand-New-Passw0rd!") == "ok"
    assert "data 52e" in can_bind(platform, t.upn("sam"), "Not-The-Passw0rd!")  # control
    # Samba keeps accepting the old password for 'old password allowed period' (60 min by
    # default) after a reset, so the reset shows in pwdLastSet rather than in a failed bind.
    assert read(admin, t.dn("sam"), "pwdLastSet")["pwdLastSet"] != set_at
    details = t.send("user.password_reset", {"username": "sam"})
    key = load_private_key(platform.settings_env["PROVISIONER_RESULTS_PRIVATE_KEY_FILE"])
    generated = unseal(details["user"]["initial_password"], key, "initial_password")
    assert "data 773" in can_bind(platform, t.upn("sam"), generated)  # real, must change
    assert read(admin, t.dn("sam"), "pwdLastSet")["pwdLastSet"] == ["0"]


def test_user_deleted_gives_the_slot_back_and_repeats_harmlessly(
    platform: SuitePlatform, admin: ldap3.Connection
) -> None:
    t = Tenant(platform, max_users=2)
    t.add_user("gone")
    assert {"users=2", "reserved:gone"} <= set(settings(admin, t))
    for _ in range(2):
        t.send("user.deleted", {"username": "gone"})
        assert ldap_oracle.read(admin, t.dn("gone"), ["cn"]) is None
        assert "users=1" in settings(admin, t)
        assert "reserved:gone" not in settings(admin, t)
        assert "reserved:admin" in settings(admin, t)
    t.add_user("next")  # the freed slot is usable


def test_tenant_updated_renames_moves_upns_and_keeps_absent_fields(
    platform: SuitePlatform, admin: ldap3.Connection
) -> None:
    t = Tenant(platform, max_users=10)
    t.add_user("ann")
    t.send(
        "tenant.updated", {"name": "Renamed, Ltd.", "domains": [f"{t.id}.test", f"{t.id}.example"]}
    )
    assert read(admin, t.ou, "description")["description"] == ["Renamed, Ltd."]
    for user in ("admin", "ann"):
        assert read(admin, t.dn(user), "userPrincipalName")["userPrincipalName"] == [
            t.upn(user, "test")
        ]
    assert f"primary_domain={t.id}.test" in settings(admin, t)
    assert "max_users=10" in settings(admin, t)  # absent: stays
    t.send("tenant.updated", {"plan": {"max_users": 3}})
    assert "max_users=3" in settings(admin, t)
    assert f"primary_domain={t.id}.test" in settings(admin, t)


def test_dropping_a_domain_in_use_is_refused_and_changes_nothing(
    platform: SuitePlatform, admin: ldap3.Connection
) -> None:
    t = Tenant(platform)
    t.add_user("mixed")
    # The tenant's admin moved one user to the secondary domain by hand.
    assert admin.modify(
        t.dn("mixed"), {"userPrincipalName": [(ldap3.MODIFY_REPLACE, [t.upn("mixed", "test")])]}
    ), admin.result
    watched = [t.ou]
    before = ldap_oracle.snapshot(admin, watched, ldap_oracle.CHANGE_METADATA)
    with pytest.raises(PermanentError) as info:
        t.send("tenant.updated", {"name": "Should not stick", "domains": [f"{t.id}.example"]})
    assert info.value.code == "domain_in_use"
    # The name was written, then undone: everything but the change metadata is as before.
    assert ldap_oracle.snapshot(admin, watched, ldap_oracle.CHANGE_METADATA) == before


def test_suspend_then_resume_restores_exactly_the_users_it_disabled(
    platform: SuitePlatform, admin: ldap3.Connection
) -> None:
    t = Tenant(platform)
    for name in ("on1", "on2", "off"):
        t.add_user(name)
    t.send("user.disabled", {"username": "off"})
    for _ in range(2):  # a redelivered suspension changes nothing more
        t.send("tenant.suspended", {})
        for name in ("admin", "on1", "on2", "off"):
            assert int(read(admin, t.dn(name), "userAccountControl")["userAccountControl"][0]) & 2
    assert [v for v in settings(admin, t) if v.startswith("suspended:")] == [
        "suspended:admin",
        "suspended:on1",
        "suspended:on2",
    ]
    t.send("tenant.resumed", {})
    for name, disabled in (("admin", 0), ("on1", 0), ("on2", 0), ("off", 2)):
        flags = int(read(admin, t.dn(name), "userAccountControl")["userAccountControl"][0])
        assert flags & 2 == disabled, name
    assert not [v for v in settings(admin, t) if v.startswith("suspended:")]


def test_tenant_deleted_leaves_nothing(platform: SuitePlatform, admin: ldap3.Connection) -> None:
    t = Tenant(platform, max_users=5, password_policy={"min_length": 10})
    t.add_user("u1")
    # An object the fleet did not make (tenant admins make none: an administrator's).
    assert admin.add(f"CN=Own Group,{t.ou}", ["group"], {"sAMAccountName": f"{t.id}-own"}), (
        admin.result
    )
    pso = f"CN={t.id}-PSO,CN=Password Settings Container,CN=System,{BASE}"
    assert ldap_oracle.read(admin, pso, ["cn"]) is not None
    for _ in range(2):
        t.send("tenant.deleted", {})
        assert ldap_oracle.read(admin, t.ou, ["ou"]) is None
        assert ldap_oracle.read(admin, pso, ["cn"]) is None
    admin.search(BASE, f"(sAMAccountName={t.id}-*)", ldap3.SUBTREE)
    assert not [r for r in admin.response if r.get("type") == "searchResEntry"]


def test_the_tenant_password_policy_is_enforced_by_the_directory(
    platform: SuitePlatform, admin: ldap3.Connection
) -> None:
    t = Tenant(
        platform,
        max_users=5,
        password_policy={
            "min_length": 14,
            "complexity": True,
            "history": 3,
            "max_age_days": 90,
            "lockout_threshold": 5,
        },
    )
    pso = read(
        admin,
        f"CN={t.id}-PSO,CN=Password Settings Container,CN=System,{BASE}",
        "msDS-MinimumPasswordLength",
        "msDS-PSOAppliesTo",
        "msDS-PasswordHistoryLength",
        "msDS-LockoutThreshold",
        "msDS-MaximumPasswordAge",
    )
    assert pso["msDS-MinimumPasswordLength"] == ["14"]
    assert pso["msDS-PSOAppliesTo"] == [f"CN=Tenant Users,{t.ou}"]
    assert pso["msDS-MaximumPasswordAge"] == [str(-90 * 864_000_000_000)]
    t.add_user("strict", password="Long-Enough-Passw0rd")
    eleven = "Sh0rt-Pass!"  # fine for the domain's 7, too short for the tenant's 14
    # The directory itself refuses it for a member of the tenant's users group...
    assert not admin.modify(
        t.dn("strict"),
        {"unicodePwd": [(ldap3.MODIFY_REPLACE, [f'"{eleven}"'.encode("utf-16-le")])]},
    )
    assert admin.result["description"] == "constraintViolation"
    assert "0000052D" in admin.result["message"]
    # ...and accepts it for an account outside the tenant (positive control).
    outsider = f"CN=outsider-{t.id},CN=Users,{BASE}"
    assert admin.add(
        outsider,
        ["top", "person", "organizationalPerson", "user"],
        {
            "sAMAccountName": f"o{secrets.token_hex(4)}",
            "unicodePwd": f'"{eleven}"'.encode("utf-16-le"),
        },
    ), admin.result
    with pytest.raises(PermanentError) as info:
        t.send("user.password_reset", {"username": "strict", "password": eleven})
    assert info.value.code == "password_policy"
