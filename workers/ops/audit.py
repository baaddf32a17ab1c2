"""Drift audit: every tenant's real state against the state it should have.

It checks the platform (List Object Mode, ``OU=Tenants`` locked down, the fleet's
delegations) and each tenant: its OU's DACL (protected, exactly the fleet's ACEs, none
for Authenticated Users, Everyone or Pre-Windows 2000), its groups, their members (every
user of the tenant in its users group; no one from outside the tenant in either group),
its settings, and every object below its OU: a class the design does not make, a user
the fleet did not make, a UPN outside the tenant's domains, any service principal name,
and any explicit ACE beyond or missing from its class's schema default (or inheritance
turned off).
``fix`` converges through the same idempotent steps the engine uses; it never deletes
anything.

SolidCP's lock-down became a silent no-op when ``dSHeuristics`` was wrong, and nothing
noticed an ACL changed by hand: this closes that gap.
"""

from __future__ import annotations

from dataclasses import dataclass

from workers.directory.port import Directory, Entry, Scope
from workers.ops import bootstrap
from workers.provisioning import names, security, tenant_state
from workers.provisioning.realm import Realm
from workers.provisioning.steps import (
    TAG_ATTRIBUTE,
    Context,
    EnsureMembers,
    EnsureNotMembers,
    ProtectTenantOu,
    ReplaceAttributes,
    SetObjectDacl,
    Step,
)

USERS = "(&(objectCategory=person)(objectClass=user))"
# The structural classes the fleet makes below a tenant OU: its users, its two groups and
# its settings object.
DESIGN_CLASSES = ("user", "group", "msDS-App-Configuration")
OBJECT_ATTRIBUTES = [
    "objectClass",
    "cn",
    "userPrincipalName",
    "servicePrincipalName",
    TAG_ATTRIBUTE,
]


@dataclass(frozen=True)
class Finding:
    tenant: str | None  # None: the platform itself
    kind: str  # a bounded set, fit for a metric label
    detail: str
    repair: Step | None = None  # the engine's step that converges it, when there is one

    def __str__(self) -> str:
        where = f"tenant {self.tenant}" if self.tenant else "platform"
        return f"{where}: {self.kind}: {self.detail}"


def tenants(directory: Directory, only: str | None) -> list[str]:
    return [t for t in tenant_state.tenant_ids(directory) if only is None or t == only]


def audit(
    directory: Directory, realm: Realm, ctx: Context, only: str | None = None
) -> list[Finding]:
    findings: list[Finding] = []
    defaults = schema_defaults(directory, realm)
    try:
        bootstrap.check(directory, realm)
    except bootstrap.BootstrapError as exc:
        findings.append(Finding(None, "platform", str(exc)))
    listed = tenants(directory, only)
    if only is not None and not listed:
        findings.append(Finding(only, "tenant_missing", "no such tenant OU"))
    for tenant in listed:
        findings += _tenant(directory, realm, ctx, tenant)
        findings += _objects(directory, realm, tenant, defaults)
        findings += _pso(directory, realm, tenant)
    return findings


def _pso(directory: Directory, realm: Realm, tenant: str) -> list[Finding]:
    """A tenant's PSO applies to its users group and nothing else: ``msDS-PSOAppliesTo``
    is a forward link on the PSO, so whoever controls the PSO (the fleet) could point it
    at any group, Domain Admins included."""
    pso = names.pso_dn(tenant, realm.base_dn)
    entry = directory.read(pso, ["msDS-PSOAppliesTo"])
    if entry is None:
        return []
    group = names.users_group_dn(tenant, realm.base_dn)
    applies = [str(v) for v in entry.values("msDS-PSOAppliesTo")]
    if {a.lower() for a in applies} == {group.lower()}:
        return []
    detail = f"{pso} applies to {', '.join(applies) or 'nothing'}"
    repair = ReplaceAttributes(pso, {"msDS-PSOAppliesTo": group})
    return [Finding(tenant, "pso_applies_elsewhere", detail, repair)]


def schema_defaults(directory: Directory, realm: Realm) -> dict[str, frozenset[security.Ace]]:
    """Each design class's default explicit ACEs, from the DC's own schema."""
    schema = f"CN=Schema,{directory.configuration_nc}"
    out = {}
    for kind in DESIGN_CLASSES:
        found = directory.search(
            schema, f"(lDAPDisplayName={kind})", Scope.ONE_LEVEL, ["defaultSecurityDescriptor"]
        )
        sddl = str(found[0].first("defaultSecurityDescriptor") or "") if found else ""
        out[kind.lower()] = security.default_aces(sddl, realm.domain_sid)
    return out


def _objects(
    directory: Directory,
    realm: Realm,
    tenant: str,
    defaults: dict[str, frozenset[security.Ace]],
) -> list[Finding]:
    """Every object below the tenant's OU against the design."""
    ou = names.tenant_dn(tenant, realm.base_dn)
    state = tenant_state.read(directory, tenant, realm.base_dn)
    domains = {d.lower() for d in state.domains} if state else set()
    out: list[Finding] = []
    for entry in directory.search(ou, "(objectClass=*)", Scope.SUBTREE, OBJECT_ATTRIBUTES):
        if entry.dn.lower() == ou.lower():
            continue
        kind = str(entry.values("objectClass")[-1]) if entry.values("objectClass") else "?"
        if kind.lower() not in defaults:
            out.append(Finding(tenant, "unexpected_object", f"{entry.dn} is a {kind}"))
            continue
        if kind.lower() == "user" and not str(entry.first(TAG_ATTRIBUTE) or ""):
            out.append(Finding(tenant, "foreign_user", f"{entry.dn} was not made by the fleet"))
        out += _identities(tenant, entry, domains, state)
        out += _object_acl(directory, tenant, entry.dn, defaults[kind.lower()])
    return out


def _identities(
    tenant: str, entry: Entry, domains: set[str], state: tenant_state.TenantState | None
) -> list[Finding]:
    out = []
    upn = str(entry.first("userPrincipalName") or "")
    if upn and upn.rpartition("@")[2].lower() not in domains:
        fixed = f"{entry.first('cn')}@{state.primary_domain}" if state else None
        repair = ReplaceAttributes(entry.dn, {"userPrincipalName": fixed}) if fixed else None
        detail = f"{entry.dn} has the UPN {upn}, outside the tenant's domains"
        out.append(Finding(tenant, "upn_outside_domains", detail, repair))
    spns = [str(v) for v in entry.values("servicePrincipalName")]
    if spns:
        detail = f"{entry.dn} has the SPN(s) {', '.join(spns)}"
        repair = ReplaceAttributes(entry.dn, {"servicePrincipalName": None})
        out.append(Finding(tenant, "spn", detail, repair))
    return out


def _object_acl(
    directory: Directory, tenant: str, dn: str, default: frozenset[security.Ace]
) -> list[Finding]:
    raw = directory.read_security_descriptor(dn)
    if raw is None:
        return []
    try:
        current = security.decode(raw)
    except security.UnsupportedAce as exc:
        kept = tuple(sorted(default))
        return [Finding(tenant, "foreign_ace", f"{dn}: {exc}", SetObjectDacl(dn, kept))]
    extra = current.explicit_set() - default
    lacking = default - current.explicit_set()
    problems = [f"{len(extra)} ACE(s) beyond its class's default"] if extra else []
    problems.extend(f"{ace.sid} 0x{ace.mask:x}" for ace in sorted(extra))
    if lacking:
        problems.append(f"{len(lacking)} of its class's default ACE(s) missing")
    if current.protected:
        problems.append("inheritance off")
    if not problems:
        return []
    restored = (*(a for a in current.aces if a in default), *sorted(lacking))
    detail = f"{dn}: {'; '.join(problems)}"
    return [Finding(tenant, "foreign_ace", detail, SetObjectDacl(dn, restored))]


def _tenant(directory: Directory, realm: Realm, ctx: Context, tenant: str) -> list[Finding]:
    base = realm.base_dn
    ou = names.tenant_dn(tenant, base)
    users_group, admins_group = (
        names.users_group_dn(tenant, base),
        names.admins_group_dn(tenant, base),
    )
    out: list[Finding] = []
    missing = [
        dn
        for dn in (users_group, admins_group, names.settings_dn(tenant, base))
        if directory.read(dn, ["cn"]) is None
    ]
    out += [Finding(tenant, "object_missing", dn) for dn in missing]
    if users_group in missing or admins_group in missing:
        return out  # without its groups, neither its DACL nor its members can be judged
    lockdown = ProtectTenantOu(tenant, ou, users_group, admins_group)
    out += _dacl(directory, realm, ctx, tenant, lockdown)
    users = [e.dn for e in directory.search(ou, USERS, Scope.ONE_LEVEL, ["cn"])]
    inside = {dn.lower() for dn in users}
    members = _members(directory, users_group)
    absent = tuple(dn for dn in users if dn.lower() not in members)
    if absent:
        out.append(
            Finding(
                tenant,
                "not_member",
                f"{len(absent)} user(s) not in {users_group}: {', '.join(absent)}",
                EnsureMembers(users_group, absent),
            )
        )
    for group in (users_group, admins_group):
        outsiders = tuple(dn for dn in _member_dns(directory, group) if dn.lower() not in inside)
        if outsiders:
            out.append(
                Finding(
                    tenant,
                    "outsider",
                    f"{group} holds {', '.join(outsiders)}",
                    EnsureNotMembers(group, outsiders),
                )
            )
    return out


def _dacl(
    directory: Directory, realm: Realm, ctx: Context, tenant: str, lockdown: ProtectTenantOu
) -> list[Finding]:
    raw = directory.read_security_descriptor(lockdown.ou_dn)
    if raw is None:
        return [Finding(tenant, "object_missing", lockdown.ou_dn)]
    if lockdown.is_done(directory, ctx):
        return []
    wanted = lockdown.wanted(directory, realm)
    try:
        current = security.decode(raw)
    except security.UnsupportedAce as exc:
        return [Finding(tenant, "dacl", f"holds an ACE the fleet never writes ({exc})", lockdown)]
    problems = []
    if not current.protected:
        problems.append("not protected")
    if current.inherited:
        problems.append(f"{current.inherited} inherited ACE(s)")
    forbidden = sorted({a.sid for a in current.aces} & security.FORBIDDEN_ON_TENANT_OU)
    if forbidden:
        problems.append(f"ACEs for {', '.join(forbidden)}")
    extra = current.explicit_set() - wanted.explicit_set()
    lacking = wanted.explicit_set() - current.explicit_set()
    if extra:
        problems.append(f"{len(extra)} ACE(s) too many")
    if lacking:
        problems.append(f"{len(lacking)} ACE(s) missing")
    return [Finding(tenant, "dacl", "; ".join(problems) or "differs", lockdown)]


def _member_dns(directory: Directory, group: str) -> list[str]:
    entry = directory.read(group, ["member"])
    return [str(v) for v in (entry.values("member") if entry else [])]


def _members(directory: Directory, group: str) -> set[str]:
    return {dn.lower() for dn in _member_dns(directory, group)}


def fix(directory: Directory, realm: Realm, ctx: Context, findings: list[Finding]) -> list[str]:
    """Converge what can be converged; return what was done."""
    done: list[str] = []
    if any(f.kind == "platform" for f in findings):
        done += bootstrap.bootstrap(directory, realm)
    for finding in findings:
        if finding.repair is not None and finding.repair.apply(directory, ctx) is not None:
            done.append(finding.repair.describe())
    return done
