"""Drift audit: every tenant's real state against the state it should have.

It checks the platform (List Object Mode, ``OU=Tenants`` locked down) and each tenant:
its OU's DACL (protected, exactly the fleet's ACEs, none for Authenticated Users,
Everyone or Pre-Windows 2000), its groups, their members (every user of the tenant in
its users group; no one from outside the tenant in either group) and its settings.
``fix`` converges through the same idempotent steps the engine uses.

SolidCP's lock-down became a silent no-op when ``dSHeuristics`` was wrong, and nothing
noticed an ACL changed by hand: this closes that gap.
"""

from __future__ import annotations

from dataclasses import dataclass

from workers import bootstrap, names, security
from workers.directory import Directory, Scope
from workers.realm import Realm
from workers.steps import Context, EnsureMembers, EnsureNotMembers, ProtectTenantOu, Step

USERS = "(&(objectCategory=person)(objectClass=user))"


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
    found = directory.search(
        names.tenants_dn(directory.base_dn),
        "(objectClass=organizationalUnit)",
        Scope.ONE_LEVEL,
        ["ou"],
    )
    ids = sorted(str(e.first("ou")) for e in found)
    return [t for t in ids if only is None or t == only]


def audit(
    directory: Directory, realm: Realm, ctx: Context, only: str | None = None
) -> list[Finding]:
    findings: list[Finding] = []
    try:
        bootstrap.check(directory, realm)
    except bootstrap.BootstrapError as exc:
        findings.append(Finding(None, "platform", str(exc)))
    listed = tenants(directory, only)
    if only is not None and not listed:
        findings.append(Finding(only, "tenant_missing", "no such tenant OU"))
    for tenant in listed:
        findings += _tenant(directory, realm, ctx, tenant)
    return findings


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
