"""Security descriptors as data: the DACLs of ``OU=Tenants`` and of each tenant's OU.

A DACL is a :class:`Dacl` of :class:`Ace` values, compared and planned as plain data;
:func:`encode` and :func:`decode` convert through ``winacl`` (a maintained library, so
that no descriptor bytes are packed by hand).  Only the DACL is ever written (SD flags
0x04): owner, group and SACL stay as the directory has them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from winacl.dtyp.ace import (
    ACCESS_ALLOWED_ACE,
    ACCESS_ALLOWED_OBJECT_ACE,
    ACE_OBJECT_PRESENCE,
    ADS_ACCESS_MASK,
    AceFlags,
)
from winacl.dtyp.acl import ACL, ACL_REVISION
from winacl.dtyp.guid import GUID
from winacl.dtyp.security_descriptor import SE_SACL, SECURITY_DESCRIPTOR
from winacl.dtyp.sid import SID

# schemaIDGUIDs of the classes the fleet and tenant admins manage: the same in every AD
# forest (MS-ADSC).
USER_CLASS = "bf967aba-0de6-11d0-a285-00aa003049e2"
GROUP_CLASS = "bf967a9c-0de6-11d0-a285-00aa003049e2"
OU_CLASS = "bf967aa5-0de6-11d0-a285-00aa003049e2"
PSO_CLASS = "3bcd9db8-f84b-451c-952f-6c52b81f9ec6"  # msDS-PasswordSettings

# schemaIDGUIDs of the attributes tenant admins may write, one ACE each: the property sets
# that hold them also hold identities (Public-Information: userPrincipalName,
# servicePrincipalName, altSecurityIdentities; General-Information: sAMAccountName), so
# none is granted whole.  tests/integration checks these against the DC's own schema.
USER_DETAILS = {
    "givenName": "f0f8ff8e-1191-11d0-a060-00aa006c33ed",
    "sn": "bf967a41-0de6-11d0-a285-00aa003049e2",
    "initials": "f0f8ff90-1191-11d0-a060-00aa006c33ed",
    "displayName": "bf967953-0de6-11d0-a285-00aa003049e2",
    "description": "bf967950-0de6-11d0-a285-00aa003049e2",
    "telephoneNumber": "bf967a49-0de6-11d0-a285-00aa003049e2",
    "mobile": "f0f8ffa3-1191-11d0-a060-00aa006c33ed",
    "homePhone": "f0f8ffa1-1191-11d0-a060-00aa006c33ed",
    "facsimileTelephoneNumber": "bf967974-0de6-11d0-a285-00aa003049e2",
    "ipPhone": "4d146e4a-48d4-11d1-a9c3-0000f80367c1",
    "pager": "f0f8ffa6-1191-11d0-a060-00aa006c33ed",
    "title": "bf967a55-0de6-11d0-a285-00aa003049e2",
    "department": "bf96794f-0de6-11d0-a285-00aa003049e2",
    "company": "f0f8ff88-1191-11d0-a060-00aa006c33ed",
    "physicalDeliveryOfficeName": "bf9679f7-0de6-11d0-a285-00aa003049e2",
    "streetAddress": "f0f8ff84-1191-11d0-a060-00aa006c33ed",
    "postOfficeBox": "bf9679fb-0de6-11d0-a285-00aa003049e2",
    "l": "bf9679a2-0de6-11d0-a285-00aa003049e2",
    "st": "bf967a39-0de6-11d0-a285-00aa003049e2",
    "postalCode": "bf9679fd-0de6-11d0-a285-00aa003049e2",
    "c": "bf967945-0de6-11d0-a285-00aa003049e2",
    "co": "f0f8ffa7-1191-11d0-a060-00aa006c33ed",
    "countryCode": "5fd42471-1262-11d0-a060-00aa006c33ed",
    "employeeID": "bf967962-0de6-11d0-a285-00aa003049e2",
    "employeeNumber": "a8df73ef-c5ea-11d1-bbcb-0080c76670c0",
    "info": "bf96793e-0de6-11d0-a285-00aa003049e2",
    "wWWHomePage": "bf967a7a-0de6-11d0-a285-00aa003049e2",
    "pwdLastSet": "bf967a0a-0de6-11d0-a285-00aa003049e2",  # must change at next logon
    "lockoutTime": "28630ebf-41d5-11d1-a9c1-0000f80367c1",  # unlock (the DC takes only 0)
}
GROUP_DETAILS = {
    "member": "bf9679c0-0de6-11d0-a285-00aa003049e2",
    "description": "bf967950-0de6-11d0-a285-00aa003049e2",
    "info": "bf96793e-0de6-11d0-a285-00aa003049e2",
}
RESET_PASSWORD = "00299570-246d-11d0-a768-00aa006e0529"  # noqa: S105 - User-Force-Change-Password

SYSTEM = "S-1-5-18"
CREATOR_OWNER = "S-1-3-0"  # replaced, in an inherited ACE, by the new object's creator
AUTHENTICATED_USERS = "S-1-5-11"
EVERYONE = "S-1-1-0"
PRE_WINDOWS_2000 = "S-1-5-32-554"
# Principals that must have nothing on a tenant's OU.
FORBIDDEN_ON_TENANT_OU = frozenset({AUTHENTICATED_USERS, EVERYONE, PRE_WINDOWS_2000})

FULL_CONTROL = int(ADS_ACCESS_MASK.GENERIC_ALL)
READ = int(ADS_ACCESS_MASK.GENERIC_READ)  # read control, list contents, read props, list object
# What Authenticated Users keep on OU=Tenants: see it and read it, never list its contents.
LIST_OBJECT_ONLY = int(
    ADS_ACCESS_MASK.READ_CONTROL | ADS_ACCESS_MASK.LIST_OBJECT | ADS_ACCESS_MASK.READ_PROP
)
CREATE_CHILD = int(ADS_ACCESS_MASK.CREATE_CHILD)
WRITE_PROP = int(ADS_ACCESS_MASK.WRITE_PROP)
CONTROL_ACCESS = int(ADS_ACCESS_MASK.CONTROL_ACCESS)
DOMAIN_ADMINS_RID = 512
ENTERPRISE_ADMINS_RID = 519
# Groups whose members hold rights over the whole domain or forest, directly or through
# the DCs: the fleet's account must be in none of them.
PRIVILEGED_RIDS = {
    512: "Domain Admins",
    516: "Domain Controllers",
    518: "Schema Admins",
    519: "Enterprise Admins",
    520: "Group Policy Creator Owners",
    526: "Key Admins",
    527: "Enterprise Key Admins",
}
PRIVILEGED_BUILTIN = {
    "S-1-5-32-544": "Administrators",
    "S-1-5-32-548": "Account Operators",
    "S-1-5-32-549": "Server Operators",
    "S-1-5-32-550": "Print Operators",
    "S-1-5-32-551": "Backup Operators",
}


def privileged_groups(domain_sid: str, sids: list[str]) -> list[str]:
    """The names of the privileged groups among ``sids`` (an account's tokenGroups)."""
    named = dict(PRIVILEGED_BUILTIN)
    named.update({f"{domain_sid}-{rid}": name for rid, name in PRIVILEGED_RIDS.items()})
    return sorted(named[s] for s in set(sids) if s in named)


@dataclass(frozen=True, order=True)
class Ace:
    """One allow ACE.  ``inherit``: children inherit it; ``inherit_only``: not on this object."""

    sid: str
    mask: int
    inherit: bool = False
    inherit_only: bool = False
    object_type: str | None = None
    inherited_object_type: str | None = None


@dataclass(frozen=True)
class Dacl:
    protected: bool
    aces: tuple[Ace, ...]  # explicit ACEs, in order
    inherited: int = 0  # how many inherited ACEs the directory holds besides

    def explicit_set(self) -> frozenset[Ace]:
        return frozenset(self.aces)


@dataclass(frozen=True)
class TenantPrincipals:
    domain_sid: str
    provisioner_sid: str
    users_sid: str
    admins_sid: str


def _admins(domain_sid: str, *, enterprise: bool) -> tuple[Ace, ...]:
    """Full control, inherited, for SYSTEM, Domain Admins [and Enterprise Admins]."""
    admins = [f"{domain_sid}-{DOMAIN_ADMINS_RID}"]
    if enterprise:
        admins.append(f"{domain_sid}-{ENTERPRISE_ADMINS_RID}")
    return tuple(Ace(sid, FULL_CONTROL, inherit=True) for sid in (SYSTEM, *admins))


def _fleet(domain_sid: str, provisioner_sid: str, *, enterprise: bool = False) -> tuple[Ace, ...]:
    """:func:`_admins` and the provisioner: on every object the fleet locks down and
    manages inside."""
    return (
        *_admins(domain_sid, enterprise=enterprise),
        Ace(provisioner_sid, FULL_CONTROL, inherit=True),
    )


def tenant_ou_dacl(p: TenantPrincipals) -> Dacl:
    """Protected; SYSTEM, Domain Admins and the provisioner keep full control; the tenant's
    users read and list; its admins reset passwords, write users' details and manage the
    members of the tenant's groups, and nothing more (docs/engine.md, "The tenant OU's
    DACL").  They create nothing: on Samba 4.17 an object's creator is its owner and keeps
    write-DAC on it whatever the DACL says (OWNER RIGHTS and deny ACEs are ignored), so a
    group a tenant admin made would be one it fully controls."""
    admins = p.admins_sid

    def on(kind: str, mask: int, right: str) -> Ace:
        return Ace(admins, mask, inherit=True, inherit_only=True, object_type=right,
                   inherited_object_type=kind)  # fmt: skip

    return Dacl(
        protected=True,
        aces=(
            *_fleet(p.domain_sid, p.provisioner_sid),
            Ace(p.users_sid, READ, inherit=True),
            Ace(admins, READ, inherit=True),
            on(USER_CLASS, CONTROL_ACCESS, RESET_PASSWORD),
            *(on(USER_CLASS, WRITE_PROP, guid) for guid in USER_DETAILS.values()),
            *(on(GROUP_CLASS, WRITE_PROP, guid) for guid in GROUP_DETAILS.values()),
        ),
    )


def initial_tenant_ou_dacl(domain_sid: str, provisioner_sid: str) -> Dacl:
    """What a tenant's OU is born with, before its groups exist: the fleet alone."""
    return Dacl(
        protected=True,
        aces=(*_fleet(domain_sid, provisioner_sid),),
    )


def tenants_container_delegation(provisioner_sid: str) -> tuple[Ace, ...]:
    """What the fleet holds on ``OU=Tenants`` itself: read and list it, and create tenant
    OUs in it.  Nothing is inherited from here (every tenant OU is protected): inside a
    tenant OU, the fleet's rights are the ones that OU's own DACL gives it.  No delete
    child: the fleet deletes a tenant OU through its own rights on that OU, so an OU it
    did not make is out of its reach."""
    return (
        Ace(provisioner_sid, READ),
        Ace(provisioner_sid, CREATE_CHILD, object_type=OU_CLASS),
    )


def tenants_container_dacl(domain_sid: str, provisioner_sid: str) -> Dacl:
    """``OU=Tenants``: protected, so that nothing inherited from the domain (Pre-Windows 2000
    Compatible Access's List Contents) lets a user enumerate the tenants; the fleet
    delegated only what :func:`tenants_container_delegation` names."""
    return Dacl(
        protected=True,
        aces=(
            *_admins(domain_sid, enterprise=True),
            *tenants_container_delegation(provisioner_sid),
            Ace(AUTHENTICATED_USERS, LIST_OBJECT_ONLY),
        ),
    )


def password_settings_delegation(provisioner_sid: str) -> tuple[Ace, ...]:
    """Added to the Password Settings Container's own ACEs: the fleet reads it and creates
    PSOs in it, and the creator of a PSO (through CREATOR OWNER) fully controls that PSO.
    So the fleet can change and delete the tenants' PSOs it made, and no other PSO."""
    return (
        Ace(provisioner_sid, READ),
        Ace(provisioner_sid, CREATE_CHILD, object_type=PSO_CLASS),
        Ace(
            CREATOR_OWNER,
            FULL_CONTROL,
            inherit=True,
            inherit_only=True,
            inherited_object_type=PSO_CLASS,
        ),
    )


def fleet_pso_grant(provisioner_sid: str) -> Ace:
    """Full control of one PSO, written by the bootstrap on the PSOs of tenants made
    before the fleet was delegated (their owner is Domain Admins, not the fleet)."""
    return Ace(provisioner_sid, FULL_CONTROL)


def fleet_only_dacl(domain_sid: str, provisioner_sid: str) -> Dacl:
    """The fleet's own containers (idempotency records): no one else may read them."""
    return Dacl(
        protected=True,
        aces=(*_fleet(domain_sid, provisioner_sid, enterprise=True),),
    )


def inherits_only() -> Dacl:
    """An object in the fleet's own containers (a record, a fence): no ACE of its own, only
    those of :func:`fleet_only_dacl` passed down from ``CN=Provisioner``.

    Given at add, it stands in for the class's default descriptor, which on
    ``msDS-App-Configuration`` grants Authenticated Users read (measured on Samba 4.17: a
    tenant admin read every fence and record)."""
    return Dacl(protected=False, aces=())


def encode(dacl: Dacl) -> bytes:
    """A self-relative security descriptor carrying only ``dacl``."""
    descriptor = SECURITY_DESCRIPTOR()
    descriptor.Control = SE_SACL.SE_DACL_PRESENT | SE_SACL.SE_SELF_RELATIVE
    if dacl.protected:
        descriptor.Control |= SE_SACL.SE_DACL_PROTECTED
    acl = ACL()
    acl.AclRevision = ACL_REVISION.DS.value
    acl.aces = [_to_winacl(ace) for ace in dacl.aces]
    descriptor.Dacl = acl
    return bytes(descriptor.to_bytes())


def decode(raw: bytes) -> Dacl:
    descriptor = SECURITY_DESCRIPTOR.from_bytes(raw)
    protected = bool(descriptor.Control & SE_SACL.SE_DACL_PROTECTED)
    explicit: list[Ace] = []
    inherited = 0
    for ace in descriptor.Dacl.aces if descriptor.Dacl is not None else []:
        if ace.AceFlags & AceFlags.INHERITED_ACE:
            inherited += 1
        else:
            explicit.append(_from_winacl(ace))
    return Dacl(protected=protected, aces=tuple(explicit), inherited=inherited)


def decode_all(raw: bytes) -> list[Ace]:
    """Every ACE of the DACL, inherited ones included, in order."""
    descriptor = SECURITY_DESCRIPTOR.from_bytes(raw)
    return [_from_winacl(ace) for ace in (descriptor.Dacl.aces if descriptor.Dacl else [])]


def _flags(ace: Ace) -> AceFlags:
    flags = AceFlags(0)
    if ace.inherit:
        flags |= AceFlags.CONTAINER_INHERIT_ACE
    if ace.inherit_only:
        flags |= AceFlags.INHERIT_ONLY_ACE
    return flags


def _to_winacl(ace: Ace) -> ACCESS_ALLOWED_ACE | ACCESS_ALLOWED_OBJECT_ACE:
    if ace.object_type is None and ace.inherited_object_type is None:
        plain = ACCESS_ALLOWED_ACE()
        plain.AceFlags = _flags(ace)
        plain.Mask = ace.mask
        plain.Sid = SID.from_string(ace.sid)
        return plain
    typed = ACCESS_ALLOWED_OBJECT_ACE()
    typed.AceFlags = _flags(ace)
    typed.Mask = ace.mask
    typed.Flags = ACE_OBJECT_PRESENCE.NONE
    typed.ObjectType = GUID.from_string(ace.object_type) if ace.object_type else None
    typed.InheritedObjectType = (
        GUID.from_string(ace.inherited_object_type) if ace.inherited_object_type else None
    )
    typed.Sid = SID.from_string(ace.sid)
    return typed


class UnsupportedAce(ValueError):
    """A DACL holds an ACE kind the fleet never writes (deny, audit, callback)."""


def _from_winacl(ace: object) -> Ace:
    if not isinstance(ace, ACCESS_ALLOWED_ACE | ACCESS_ALLOWED_OBJECT_ACE):
        raise UnsupportedAce(f"unsupported ACE {type(ace).__name__}")
    object_type = inherited_type = None
    if isinstance(ace, ACCESS_ALLOWED_OBJECT_ACE):
        object_type = str(ace.ObjectType).lower() if ace.ObjectType is not None else None
        if ace.InheritedObjectType is not None:
            inherited_type = str(ace.InheritedObjectType).lower()
    return Ace(
        sid=str(ace.Sid),
        mask=int(ace.Mask),
        inherit=bool(ace.AceFlags & AceFlags.CONTAINER_INHERIT_ACE),
        inherit_only=bool(ace.AceFlags & AceFlags.INHERIT_ONLY_ACE),
        object_type=object_type,
        inherited_object_type=inherited_type,
    )


# SDDL's two-letter rights and trustees (MS-DTYP 2.4.2.4 and 2.5.1.1), for the schema's
# defaultSecurityDescriptor: winacl's SDDL parser takes only hexadecimal rights
# ("RPWPCRCC…" is refused), and it maps AO to a domain SID instead of BUILTIN.
_SDDL_RIGHTS = {
    "CC": 0x1, "DC": 0x2, "LC": 0x4, "SW": 0x8, "RP": 0x10, "WP": 0x20, "DT": 0x40,
    "LO": 0x80, "CR": 0x100, "SD": 0x10000, "RC": 0x20000, "WD": 0x40000, "WO": 0x80000,
    "GA": 0x10000000, "GX": 0x20000000, "GW": 0x40000000, "GR": 0x80000000,
}  # fmt: skip
_SDDL_BUILTIN = {
    "AO": "S-1-5-32-548", "AU": "S-1-5-11", "BA": "S-1-5-32-544", "BG": "S-1-5-32-546",
    "BO": "S-1-5-32-551", "BU": "S-1-5-32-545", "CG": "S-1-3-1", "CO": "S-1-3-0",
    "ED": "S-1-5-9", "IU": "S-1-5-4", "LS": "S-1-5-19", "NS": "S-1-5-20", "NU": "S-1-5-2",
    "OW": "S-1-3-4", "PO": "S-1-5-32-550", "PS": "S-1-5-10", "PU": "S-1-5-32-547",
    "RC": "S-1-5-12", "RD": "S-1-5-32-555", "RE": "S-1-5-32-552", "RU": "S-1-5-32-554",
    "SO": "S-1-5-32-549", "SU": "S-1-5-6", "SY": "S-1-5-18", "WD": "S-1-1-0",
}  # fmt: skip
_SDDL_DOMAIN = {"CA": 517, "DA": 512, "DC": 515, "DD": 516, "DG": 514, "DU": 513,
                "EA": 519, "LA": 500, "LG": 501, "PA": 520, "RS": 553, "SA": 518}  # fmt: skip
_SDDL_ACE = re.compile(r"\(([^)]*)\)")


def default_aces(sddl: str, domain_sid: str) -> frozenset[Ace]:
    """The allow ACEs of the DACL part of a class's ``defaultSecurityDescriptor``: what the
    DC gives every new object of that class as explicit ACEs."""
    dacl = sddl.partition("D:")[2].partition("S:")[0]
    aces = set()
    for body in _SDDL_ACE.findall(dacl):
        kind, flags, rights, object_type, inherited_type, trustee = body.split(";")
        if kind not in {"A", "OA"}:
            continue
        if rights.lower().startswith("0x"):
            mask = int(rights, 16)
        else:
            mask = sum(_SDDL_RIGHTS[rights[i : i + 2]] for i in range(0, len(rights), 2))
        if trustee in _SDDL_BUILTIN:
            sid = _SDDL_BUILTIN[trustee]
        elif trustee in _SDDL_DOMAIN:
            sid = f"{domain_sid}-{_SDDL_DOMAIN[trustee]}"
        else:
            sid = trustee
        aces.add(
            Ace(
                sid=sid,
                mask=mask,
                inherit="CI" in flags,
                inherit_only="IO" in flags,
                object_type=object_type.lower() or None,
                inherited_object_type=inherited_type.lower() or None,
            )
        )
    return frozenset(aces)


def sid_from_bytes(raw: bytes) -> str:
    return str(SID.from_bytes(raw))
