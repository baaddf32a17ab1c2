"""A tenant's state as the directory holds it, read into plain data for the planner.

The tenant's settings object (``CN=Tenant Settings``, msDS-App-Configuration) holds
``msDS-Settings`` values ``key=value``: ``primary_domain``, ``domains`` (in order),
``max_users``, ``min_password_length``, the quota counter ``users`` and one
``reserved=<username>`` per counted user.
"""

from __future__ import annotations

from dataclasses import dataclass

from workers.directory import key_values
from workers.directory.port import Directory, Scope
from workers.provisioning import names

SETTINGS_ATTRIBUTE = key_values.ATTRIBUTE


@dataclass(frozen=True)
class TenantState:
    tenant: str
    primary_domain: str
    domains: tuple[str, ...]
    max_users: int | None
    min_password_length: int
    users: int
    reserved: frozenset[str]


def parse(tenant: str, values: list[str]) -> TenantState:
    single: dict[str, str] = {}
    reserved: set[str] = set()
    for key, rest in key_values.pairs(values):
        if key == "reserved":
            reserved.add(rest)
        else:
            single[key] = rest
    return TenantState(
        tenant=tenant,
        primary_domain=single.get("primary_domain", ""),
        domains=tuple(d for d in single.get("domains", "").split(",") if d),
        max_users=int(single["max_users"]) if "max_users" in single else None,
        min_password_length=int(single.get("min_password_length", "0")),
        users=int(single.get("users", "0")),
        reserved=frozenset(reserved),
    )


def read(directory: Directory, tenant: str, base_dn: str) -> TenantState | None:
    entry = directory.read(names.settings_dn(tenant, base_dn), [SETTINGS_ATTRIBUTE])
    if entry is None:
        return None
    return parse(tenant, [str(v) for v in entry.values(SETTINGS_ATTRIBUTE)])


def tenant_ids(directory: Directory) -> list[str]:
    """Every tenant's id: the OUs directly below ``OU=Tenants``, sorted."""
    tenants = names.tenants_dn(directory.base_dn)
    found = directory.search(tenants, "(objectClass=organizationalUnit)", Scope.ONE_LEVEL, ["ou"])
    return sorted(str(e.first("ou")) for e in found)
