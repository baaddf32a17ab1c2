"""tenant.created through RabbitMQ and a worker: the whole tenant, read back independently."""

from __future__ import annotations

import json
import re
import secrets
from pathlib import Path

import ldap3

from messages.results import Outcome, decode_result
from messages.sealing import load_private_key, unseal
from tests.support import broker, ldap_oracle
from tests.support.platform import SuitePlatform, wait_for

BASE = "DC=hosting,DC=test"
USER_CLASS = "bf967aba-0de6-11d0-a285-00aa003049e2"
GROUP_CLASS = "bf967a9c-0de6-11d0-a285-00aa003049e2"


def tenant_event(tenant: str) -> dict[str, object]:
    return {
        "tenant": tenant,
        "name": ' Northwind, Inc. = "NW" #1 ',
        "domains": [f"{tenant}.example", f"{tenant}.test"],
        "admin": {"username": "nan.wind", "given_name": "Nan", "surname": "Wind, Jr."},
        "plan": {"max_users": 10},
    }


# What tenant admins may write, by name, as docs/engine.md lists it; the GUIDs are the DC's.
USER_ATTRIBUTES = [
    "givenName",
    "sn",
    "initials",
    "displayName",
    "description",
    "telephoneNumber",
    "mobile",
    "homePhone",
    "facsimileTelephoneNumber",
    "ipPhone",
    "pager",
    "title",
    "department",
    "company",
    "physicalDeliveryOfficeName",
    "streetAddress",
    "postOfficeBox",
    "l",
    "st",
    "postalCode",
    "c",
    "co",
    "countryCode",
    "employeeID",
    "employeeNumber",
    "info",
    "wWWHomePage",
    "pwdLastSet",
    "lockoutTime",
]
GROUP_ATTRIBUTES = ["member", "description", "info"]
RESET_PASSWORD = "00299570-246d-11d0-a768-00aa006e0529"


def schema_guid(admin: ldap3.Connection, name: str) -> str:
    import uuid  # noqa: PLC0415

    schema = f"CN=Schema,CN=Configuration,{BASE}"
    assert admin.search(
        schema, f"(lDAPDisplayName={name})", ldap3.LEVEL, attributes=["schemaIDGUID"]
    ), name
    return str(uuid.UUID(bytes_le=admin.response[0]["raw_attributes"]["schemaIDGUID"][0]))


def expected_dacl(admin: ldap3.Connection, tenant_ou: str) -> list[str]:
    """The tenant OU's DACL, written out by hand from the design (docs/engine.md)."""
    domain = ldap_oracle.sid(admin, BASE)
    fleet = ldap_oracle.sid(admin, f"CN=svc-provisioner,CN=Users,{BASE}")
    users = ldap_oracle.sid(admin, f"CN=Tenant Users,{tenant_ou}")
    admins = ldap_oracle.sid(admin, f"CN=Tenant Admins,{tenant_ou}")
    return sorted(
        [
            "(A;CI;0xf01ff;;;S-1-5-18)",
            f"(A;CI;0xf01ff;;;{domain}-512)",
            f"(A;CI;0xf01ff;;;{fleet})",
            f"(A;CI;0x20094;;;{users})",
            f"(A;CI;0x20094;;;{admins})",
            f"(OA;CIIO;CR;{RESET_PASSWORD};{USER_CLASS};{admins})",
            *(
                f"(OA;CIIO;WP;{schema_guid(admin, name)};{USER_CLASS};{admins})"
                for name in USER_ATTRIBUTES
            ),
            *(
                f"(OA;CIIO;WP;{schema_guid(admin, name)};{GROUP_CLASS};{admins})"
                for name in GROUP_ATTRIBUTES
            ),
        ]
    )


def test_a_whole_tenant_with_its_acl(
    platform: SuitePlatform, admin: ldap3.Connection, results: str, tmp_path: Path
) -> None:
    tenant = f"nw-{secrets.token_hex(3)}"
    ou = f"OU={tenant},OU=Tenants,{BASE}"
    data = tenant_event(tenant)
    with platform.worker(tmp_path / "worker.log"):
        published = platform.provisioner(
            "publish",
            "tenant.created",
            "--data",
            json.dumps(data),
            "--idempotency-key",
            f"{tenant}-order-1",
        )
        assert published.returncode == 0, published.stderr
        wait_for(lambda: broker.depth(results) == 1, 30)
    ((message),) = broker.drain(results)
    result = decode_result(message.body)
    assert (message.routing_key, result.outcome) == ("tenant.created.succeeded", Outcome.SUCCEEDED)

    entry = ldap_oracle.read(admin, ou, ["description", "uPNSuffixes"])
    assert entry is not None
    assert entry["description"] == [data["name"]]
    assert sorted(entry["uPNSuffixes"]) == sorted([f"{tenant}.example", f"{tenant}.test"])

    admin_dn = f"CN=nan.wind,{ou}"
    user = ldap_oracle.read(
        admin,
        admin_dn,
        [
            "sAMAccountName",
            "userPrincipalName",
            "givenName",
            "sn",
            "displayName",
            "userAccountControl",
            "pwdLastSet",
            "memberOf",
        ],
    )
    assert user is not None
    assert re.fullmatch(r"u\d{10}", user["sAMAccountName"][0])
    assert user["userPrincipalName"] == [f"nan.wind@{tenant}.example"]
    assert (user["givenName"], user["sn"], user["displayName"]) == (
        ["Nan"],
        ["Wind, Jr."],
        ["Nan Wind, Jr."],
    )
    assert user["userAccountControl"] == ["512"]
    assert user["pwdLastSet"] == ["0"]  # generated: change required at next logon
    assert sorted(user["memberOf"]) == sorted([f"CN=Tenant Users,{ou}", f"CN=Tenant Admins,{ou}"])
    assert result.details["admin"]["sAMAccountName"] == user["sAMAccountName"][0]

    for cn, sam in (("Tenant Users", f"{tenant}-users"), ("Tenant Admins", f"{tenant}-admins")):
        group = ldap_oracle.read(admin, f"CN={cn},{ou}", ["sAMAccountName", "groupType", "member"])
        assert group is not None
        assert group["sAMAccountName"] == [sam]
        assert group["groupType"] == ["-2147483646"]
        assert group["member"] == [admin_dn]

    settings = ldap_oracle.read(admin, f"CN=Tenant Settings,{ou}", ["msDS-Settings", "keywords"])
    assert settings is not None
    assert sorted(settings["msDS-Settings"]) == sorted(
        [
            f"primary_domain={tenant}.example",
            f"domains={tenant}.example,{tenant}.test",
            "users=1",
            "max_users=10",
        ]
    )
    assert settings["keywords"] == ["reserved:nan.wind"]  # the per-user lists

    sddl = ldap_oracle.dacl_sddl(admin, ou)
    assert sddl.startswith("D:P(")  # protected: nothing inherited
    aces = sorted("(" + ace for ace in sddl[len("D:P(") :].split("("))
    assert aces == expected_dacl(admin, ou)
    for forbidden in ("S-1-5-11", "S-1-1-0", "S-1-5-32-554"):
        assert forbidden not in sddl

    # The generated password travels only sealed to the results consumer; it is the real one.
    sealed = result.details["admin"]["initial_password"]
    key = load_private_key(platform.settings_env["PROVISIONER_RESULTS_PRIVATE_KEY_FILE"])
    password = unseal(sealed, key, "details.admin.initial_password")
    assert len(password) >= 24
    with ldap_oracle.bind(platform, f"nan.wind@{tenant}.example", password + "x") as wrong:
        assert wrong.result["description"] == "invalidCredentials"
        assert "data 52e" in wrong.result["message"]  # wrong password
    with ldap_oracle.bind(platform, f"nan.wind@{tenant}.example", password) as right:
        assert right.result["description"] == "invalidCredentials"
        assert "data 773" in right.result["message"]  # right password, must change it first


def test_the_same_message_twice_converges(
    platform: SuitePlatform, admin: ldap3.Connection, results: str, tmp_path: Path
) -> None:
    tenant = f"nw-{secrets.token_hex(3)}"
    data = tenant_event(tenant)
    data["admin"] = {**data["admin"], "password": "Given-Passw0rd-for-the-admin"}  # type: ignore[dict-item]
    path = tmp_path / "twice.jsonl"
    line = json.dumps(
        {
            "type": "tenant.created",
            "id": f"{tenant}-m1",
            "idempotency_key": f"{tenant}-k",
            "data": data,
        }
    )
    path.write_text(f"{line}\n{line}\n")
    with platform.worker(tmp_path / "worker.log"):
        assert platform.provisioner("publish", "--file", str(path)).returncode == 0
        wait_for(lambda: broker.depth(results) == 2, 30)
    answers = [decode_result(m.body) for m in broker.drain(results)]
    assert [r.outcome for r in answers] == [Outcome.SUCCEEDED, Outcome.SUCCEEDED]
    assert answers[0].details == answers[1].details
    admin.search(f"OU={tenant},OU=Tenants,{BASE}", "(objectClass=user)", ldap3.SUBTREE)
    assert len(admin.response) == 1
    with ldap_oracle.bind(
        platform, f"nan.wind@{tenant}.example", "Given-Passw0rd-for-the-admin"
    ) as given:
        assert given.bound, given.result


def test_plan_is_a_dry_run_that_shows_what_is_left(
    platform: SuitePlatform, admin: ldap3.Connection
) -> None:
    tenant = f"pl-{secrets.token_hex(3)}"
    data = json.dumps(tenant_event(tenant))
    before = platform.provisioner(
        "plan", "tenant.created", "--data", data, "--idempotency-key", f"{tenant}-k"
    )
    assert before.returncode == 0, before.stderr
    lines = before.stdout.splitlines()
    assert lines[0] == "tenant.created (all or nothing):"
    assert len(lines) == 9
    assert all("[to do]" in line for line in lines[1:])
    assert f"create tenant OU OU={tenant},OU=Tenants,{BASE}" in lines[1]
    assert ldap_oracle.read(admin, f"OU={tenant},OU=Tenants,{BASE}", ["ou"]) is None  # no write
    from tests.support import engine  # noqa: PLC0415

    engine.run(
        platform, engine.event(platform, "tenant.created", tenant_event(tenant), f"{tenant}-k")
    )
    after = platform.provisioner(
        "plan", "tenant.created", "--data", data, "--idempotency-key", f"{tenant}-k"
    )
    assert all("[done ]" in line for line in after.stdout.splitlines()[1:]), after.stdout
    other_job = platform.provisioner(
        "plan", "tenant.created", "--data", data, "--idempotency-key", f"{tenant}-other"
    )
    assert "[to do] create tenant OU" in other_job.stdout  # not this job's objects
