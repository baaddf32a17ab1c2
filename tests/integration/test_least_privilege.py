"""The fleet's own account: delegated rights only, proven by what it cannot do.

Every attempt is made with plain ldap3 on one connection bound as the fleet's account
(the env file's credential), and each refusal stands beside a positive control on the
same connection: the same kind of write, inside the fleet's scope, succeeding.  The
whole lifecycle suite runs with the workers bound as this same account.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import ldap3
import pytest
from ldap3.protocol.microsoft import security_descriptor_control
from winacl.dtyp.ace import ACCESS_ALLOWED_OBJECT_ACE
from winacl.dtyp.security_descriptor import SECURITY_DESCRIPTOR

from tests.support import ldap_oracle
from tests.support.platform import SuitePlatform

BASE = "DC=hosting,DC=test"
TENANTS = f"OU=Tenants,{BASE}"
PSC = f"CN=Password Settings Container,CN=System,{BASE}"
DS_DN = f"CN=Directory Service,CN=Windows NT,CN=Services,CN=Configuration,{BASE}"
DOMAIN_ADMINS = f"CN=Domain Admins,CN=Users,{BASE}"
ADMINISTRATOR = f"CN=Administrator,CN=Users,{BASE}"
USER_CLASSES = ["top", "person", "organizationalPerson", "user"]
# Rights on the domain head that let a principal read every password hash (DCSync).
GET_CHANGES = "1131f6aa-9c07-11d1-f79f-00c04fc2dcd2"
GET_CHANGES_ALL = "1131f6ad-9c07-11d1-f79f-00c04fc2dcd2"
SD_DACL = security_descriptor_control(sdflags=0x04)
REFUSED = "insufficientAccessRights"


def password(value: str) -> bytes:
    return f'"{value}"'.encode("utf-16-le")


@pytest.fixture
def fleet(platform: SuitePlatform) -> Iterator[ldap3.Connection]:
    with ldap_oracle.as_fleet(platform) as connection:
        yield connection


def descriptor(connection: ldap3.Connection, dn: str, flags: int = 0x04) -> SECURITY_DESCRIPTOR:
    """The security descriptor's parts that ``flags`` ask for (0x04: the DACL, 0x01: the
    owner)."""
    controls = security_descriptor_control(sdflags=flags)
    assert connection.search(
        dn, "(objectClass=*)", ldap3.BASE, attributes=["nTSecurityDescriptor"], controls=controls
    ), connection.result
    return SECURITY_DESCRIPTOR.from_bytes(
        connection.response[0]["raw_attributes"]["nTSecurityDescriptor"][0]
    )


def write_descriptor(connection: ldap3.Connection, dn: str, sd: SECURITY_DESCRIPTOR) -> str:
    connection.modify(
        dn, {"nTSecurityDescriptor": [(ldap3.MODIFY_REPLACE, [sd.to_bytes()])]}, controls=SD_DACL
    )
    return str(connection.result["description"])


@pytest.fixture
def own_ou(
    platform: SuitePlatform, fleet: ldap3.Connection, admin: ldap3.Connection
) -> Iterator[tuple[str, str]]:
    """A tenant-like OU that the fleet's connection makes itself, born locked as the
    engine makes tenant OUs, with a user inside that has a password: the ground of the
    positive controls.  Yields (OU, user)."""
    del platform
    name = f"lp-{secrets.token_hex(3)}"
    ou = f"OU={name},{TENANTS}"
    fleet_sid = ldap_oracle.sid(admin, str(fleet.user))
    domain = ldap_oracle.sid(admin, BASE)
    born = SECURITY_DESCRIPTOR.from_sddl(
        f"D:P(A;CI;0xf01ff;;;S-1-5-18)(A;CI;0xf01ff;;;{domain}-512)(A;CI;0xf01ff;;;{fleet_sid})"
    )
    assert fleet.add(ou, ["organizationalUnit"], {"nTSecurityDescriptor": born.to_bytes()}), (
        fleet.result
    )
    user = f"CN=u1,{ou}"
    assert fleet.add(
        user,
        USER_CLASSES,
        {
            "sAMAccountName": f"{name}u1".replace("-", ""),
            "userPrincipalName": f"u1@{name}.example",
            "unicodePwd": password("Least-Priv-Passw0rd-1"),
            "userAccountControl": 512,
        },
    ), fleet.result
    try:
        yield ou, user
    finally:
        for dn in _subtree(admin, ou):
            admin.delete(dn)


def _subtree(connection: ldap3.Connection, base: str) -> list[str]:
    connection.search(base, "(objectClass=*)", ldap3.SUBTREE, attributes=["cn"])
    dns = [str(e["dn"]) for e in connection.response if e.get("type") == "searchResEntry"]
    return sorted(dns, key=lambda dn: dn.count(","), reverse=True)


def test_the_fleets_account_is_in_no_privileged_group(
    platform: SuitePlatform, admin: ldap3.Connection
) -> None:
    env = platform.settings_env
    assert env["PROVISIONER_LDAP_BIND_DN"] == f"CN=svc-provisioner,CN=Users,{BASE}"
    assert admin.search(
        env["PROVISIONER_LDAP_BIND_DN"], "(objectClass=*)", ldap3.BASE, attributes=["tokenGroups"]
    )
    from winacl.dtyp.sid import SID  # noqa: PLC0415

    token = {str(SID.from_bytes(v)) for v in admin.response[0]["raw_attributes"]["tokenGroups"]}
    domain = ldap_oracle.sid(admin, BASE)
    assert f"{domain}-513" in token  # positive control: Domain Users is read
    for privileged in ("512", "518", "519", "516"):
        assert f"{domain}-{privileged}" not in token
    assert "S-1-5-32-544" not in token  # Administrators
    # The administrator's password lives in its own file, not in the env file.
    assert platform.administrator_password not in platform.env_file.read_text()


def test_the_fleet_cannot_add_anyone_to_domain_admins(
    fleet: ldap3.Connection, own_ou: tuple[str, str]
) -> None:
    ou, user = own_ou
    group = f"CN=g1,{ou}"
    assert fleet.add(group, ["group"], {"sAMAccountName": f"g{secrets.token_hex(4)}"})
    assert fleet.modify(group, {"member": [(ldap3.MODIFY_ADD, [user])]}), fleet.result
    assert not fleet.modify(DOMAIN_ADMINS, {"member": [(ldap3.MODIFY_ADD, [user])]})
    assert fleet.result["description"] == REFUSED


def test_the_fleet_cannot_create_a_user_outside_tenant_ous(
    fleet: ldap3.Connection, own_ou: tuple[str, str]
) -> None:
    ou, _ = own_ou
    name = f"lp{secrets.token_hex(4)}"
    attrs = {"sAMAccountName": name}
    assert fleet.add(f"CN={name},{ou}", USER_CLASSES, attrs), fleet.result
    assert not fleet.add(
        f"CN={name}x,CN=Users,{BASE}", USER_CLASSES, {"sAMAccountName": "x" + name}
    )
    assert fleet.result["description"] == REFUSED
    # Nor anything but an OU directly in OU=Tenants.
    assert not fleet.add(f"CN={name},{TENANTS}", ["container"], {})
    assert fleet.result["description"] == REFUSED


def test_the_fleet_cannot_write_dsheuristics(fleet: ldap3.Connection) -> None:
    assert fleet.search(DS_DN, "(objectClass=*)", ldap3.BASE, attributes=["dSHeuristics"])
    assert fleet.response[0]["attributes"]["dSHeuristics"] == "001"  # it reads it
    assert not fleet.modify(DS_DN, {"dSHeuristics": [(ldap3.MODIFY_REPLACE, ["000"])]})
    assert fleet.result["description"] == REFUSED


def test_the_fleet_cannot_change_the_dacl_of_ou_tenants(
    fleet: ldap3.Connection, own_ou: tuple[str, str]
) -> None:
    ou, _ = own_ou
    assert write_descriptor(fleet, ou, descriptor(fleet, ou)) == "success"
    tenants = descriptor(fleet, TENANTS)  # it reads that DACL too
    assert write_descriptor(fleet, TENANTS, tenants) == REFUSED
    assert not fleet.modify(TENANTS, {"description": [(ldap3.MODIFY_REPLACE, ["taken"])]})
    assert fleet.result["description"] == REFUSED
    assert not fleet.delete(TENANTS)
    assert fleet.result["description"] == REFUSED


def test_the_fleet_cannot_reset_or_read_a_password_outside_ou_tenants(
    platform: SuitePlatform,
    fleet: ldap3.Connection,
    admin: ldap3.Connection,
    own_ou: tuple[str, str],
) -> None:
    _, user = own_ou
    assert fleet.modify(
        user, {"unicodePwd": [(ldap3.MODIFY_REPLACE, [password("Least-Priv-Passw0rd-2")])]}
    ), fleet.result
    with ldap_oracle.bind(platform, user, "Least-Priv-Passw0rd-2") as as_user:
        assert as_user.bound  # the reset took
    assert not fleet.modify(
        ADMINISTRATOR, {"unicodePwd": [(ldap3.MODIFY_REPLACE, [password("Taken-Passw0rd-9")])]}
    )
    assert fleet.result["description"] == REFUSED
    # Hashes leave the DC only by replication (DRSUAPI GetNCChanges): no SID in the
    # fleet's token holds either replication right on the domain head.
    assert admin.search(
        str(fleet.user), "(objectClass=*)", ldap3.BASE, attributes=["tokenGroups", "objectSid"]
    )
    from winacl.dtyp.sid import SID  # noqa: PLC0415

    raw = admin.response[0]["raw_attributes"]
    token = {str(SID.from_bytes(v)) for v in [*raw["tokenGroups"], *raw["objectSid"]]}
    token |= {"S-1-1-0", "S-1-5-11"}  # Everyone and Authenticated Users
    holders = {
        str(ace.Sid)
        for ace in descriptor(admin, BASE).Dacl.aces
        if isinstance(ace, ACCESS_ALLOWED_OBJECT_ACE)
        and ace.ObjectType is not None
        and str(ace.ObjectType).lower() in {GET_CHANGES, GET_CHANGES_ALL}
    }
    assert "S-1-5-32-544" in holders  # positive control: Administrators hold them
    assert holders & token == set()


def test_the_fleet_controls_only_the_psos_and_tenant_ous_it_made(
    fleet: ldap3.Connection, admin: ldap3.Connection, own_ou: tuple[str, str]
) -> None:
    ou, _ = own_ou
    group = f"CN=g2,{ou}"
    assert fleet.add(group, ["group"], {"sAMAccountName": f"g{secrets.token_hex(4)}"})
    pso = {
        "msDS-PasswordSettingsPrecedence": "30",
        "msDS-PasswordReversibleEncryptionEnabled": "FALSE",
        "msDS-PasswordHistoryLength": "0",
        "msDS-PasswordComplexityEnabled": "TRUE",
        "msDS-MinimumPasswordLength": "8",
        "msDS-MinimumPasswordAge": "0",
        "msDS-MaximumPasswordAge": "-9223372036854775808",
        "msDS-LockoutThreshold": "0",
        "msDS-LockoutDuration": "-18000000000",
        "msDS-LockoutObservationWindow": "-18000000000",
        "msDS-PSOAppliesTo": group,
    }
    tag = secrets.token_hex(3)
    own, theirs = f"CN=lp-{tag}-own,{PSC}", f"CN=lp-{tag}-admins,{PSC}"
    theirs_ou = f"OU=lp-{tag}-admin-made,{TENANTS}"
    assert admin.add(theirs, ["msDS-PasswordSettings"], {**pso, "msDS-PSOAppliesTo": DOMAIN_ADMINS})
    assert admin.add(theirs_ou, ["organizationalUnit"], {})
    try:
        assert fleet.add(own, ["msDS-PasswordSettings"], pso), fleet.result
        change = {"msDS-MinimumPasswordLength": [(ldap3.MODIFY_REPLACE, ["9"])]}
        assert fleet.modify(own, change), fleet.result
        assert not fleet.modify(theirs, change)
        assert fleet.result["description"] == REFUSED
        assert not fleet.delete(theirs)
        assert fleet.result["description"] == REFUSED
        assert fleet.delete(own), fleet.result
        assert not fleet.delete(theirs_ou)
        assert fleet.result["description"] == REFUSED
    finally:
        admin.delete(theirs)
        admin.delete(theirs_ou)
        admin.delete(own)


def test_the_fleet_cannot_write_its_own_account(fleet: ldap3.Connection) -> None:
    me = str(fleet.user)
    assert fleet.search(me, "(objectClass=*)", ldap3.BASE, attributes=["sAMAccountName"])
    for change in (
        {"servicePrincipalName": [(ldap3.MODIFY_ADD, ["HTTP/www.taken.example"])]},
        {"description": [(ldap3.MODIFY_REPLACE, ["taken"])]},
    ):
        assert not fleet.modify(me, change)
        assert fleet.result["description"] == REFUSED


@pytest.fixture
def fleet_made_domain_admin(platform: SuitePlatform, admin: ldap3.Connection) -> Iterator[None]:
    fleet_dn = platform.settings_env["PROVISIONER_LDAP_BIND_DN"]
    assert admin.modify(DOMAIN_ADMINS, {"member": [(ldap3.MODIFY_ADD, [fleet_dn])]})
    try:
        yield
    finally:
        assert admin.modify(DOMAIN_ADMINS, {"member": [(ldap3.MODIFY_DELETE, [fleet_dn])]})


def test_a_fleet_account_made_privileged_is_refused_by_the_worker_and_the_bootstrap(
    platform: SuitePlatform, request: pytest.FixtureRequest
) -> None:
    assert platform.provisioner("directory", "check").returncode == 0  # positive control
    request.getfixturevalue("fleet_made_domain_admin")
    refusal = "is a member of Administrators, Domain Admins: the fleet runs with delegated"
    check = platform.provisioner("directory", "check")
    assert check.returncode == 1
    assert refusal in check.stderr
    worker = platform.provisioner("worker")
    assert worker.returncode == 1
    assert refusal in worker.stderr
    assert "worker.started" not in worker.stderr
    setup = platform.bootstrap()
    assert setup.returncode == 1
    assert refusal in setup.stderr


def test_samba_gives_an_owner_write_dac_whatever_the_dacl(
    fleet: ldap3.Connection, admin: ldap3.Connection, own_ou: tuple[str, str]
) -> None:
    """Why tenant admins create nothing (docs/engine.md): measured here, the creator of an
    object is its owner, and keeps write-DAC on it through an OWNER RIGHTS ACE and an
    explicit deny alike.  The fleet is that creator here; Administrator adds both."""
    from winacl.dtyp.ace import ACCESS_ALLOWED_ACE, ACCESS_DENIED_ACE, AceFlags  # noqa: PLC0415
    from winacl.dtyp.sid import SID  # noqa: PLC0415

    ou, _ = own_ou
    group = f"CN=owned,{ou}"
    assert fleet.add(group, ["group"], {"sAMAccountName": f"o{secrets.token_hex(5)}"})
    full = descriptor(admin, group, 0x01)
    assert str(full.Owner) == ldap_oracle.sid(admin, str(fleet.user))  # the creator owns it
    sd = descriptor(admin, group)
    deny = ACCESS_DENIED_ACE()
    deny.AceFlags = AceFlags(0)
    deny.Mask = 0x40000 | 0x80000  # write-DAC, write-owner
    deny.Sid = SID.from_string(ldap_oracle.sid(admin, str(fleet.user)))
    owner_rights = ACCESS_ALLOWED_ACE()
    owner_rights.AceFlags = AceFlags(0)
    owner_rights.Mask = 0x20000  # read control only
    owner_rights.Sid = SID.from_string("S-1-3-4")
    sd.Dacl.aces = [deny, owner_rights, *sd.Dacl.aces]
    assert write_descriptor(admin, group, sd) == "success"
    now = descriptor(admin, group)
    assert isinstance(now.Dacl.aces[0], ACCESS_DENIED_ACE)  # both in place
    assert write_descriptor(fleet, group, descriptor(fleet, group)) == "success"
    # Beside it, an object it does not own, with no ACE of its: refused (the control).
    assert write_descriptor(fleet, DOMAIN_ADMINS, descriptor(fleet, DOMAIN_ADMINS)) == REFUSED
