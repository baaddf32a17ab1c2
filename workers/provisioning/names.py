"""Names of everything the fleet creates; pure.

Every value placed in a DN goes through ldap3's RDN escaping, so a name holding
``,+"\\<>;=#`` or leading and trailing spaces stays one literal RDN value.

The scheme (documented in docs/engine.md):

- tenant OU ``OU=<tenant>,OU=Tenants,<base>``;
- its groups ``CN=Tenant Users`` and ``CN=Tenant Admins`` inside it, with the
  sAMAccountNames ``<tenant>-users`` and ``<tenant>-admins`` (tenant ids are unique, and
  user sAMAccountNames never contain ``-``); the space in the CN keeps them apart from
  users, whose names cannot hold one;
- its settings object ``CN=Tenant Settings`` (msDS-App-Configuration) inside it;
- its password policy ``CN=<tenant>-PSO`` in the Password Settings Container;
- a user ``CN=<username>`` inside it, UPN ``<username>@<primary domain>``, and the
  sAMAccountName ``u`` + D digits of a hash of (tenant, username, n), n = 0, 1, ...
  on collision: stable across retries, unique directory-wide, and telling nothing
  about other tenants.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache

from workers.directory.escaping import rdn_value

TENANTS_OU = "Tenants"
USERS_GROUP_CN = "Tenant Users"
ADMINS_GROUP_CN = "Tenant Admins"
SETTINGS_CN = "Tenant Settings"
SAM_PREFIX = "u"


def rdn(attribute: str, value: str) -> str:
    return f"{attribute}={rdn_value(value)}"


# A job names its tenant's DN several times (its OU, groups, settings, users): each is
# escaped once, not at every use.
@lru_cache(maxsize=16)
def tenants_dn(base_dn: str) -> str:
    return f"{rdn('OU', TENANTS_OU)},{base_dn}"


@lru_cache(maxsize=4096)
def tenant_dn(tenant: str, base_dn: str) -> str:
    return f"{rdn('OU', tenant)},{tenants_dn(base_dn)}"


def users_group_dn(tenant: str, base_dn: str) -> str:
    return f"{rdn('CN', USERS_GROUP_CN)},{tenant_dn(tenant, base_dn)}"


def admins_group_dn(tenant: str, base_dn: str) -> str:
    return f"{rdn('CN', ADMINS_GROUP_CN)},{tenant_dn(tenant, base_dn)}"


def settings_dn(tenant: str, base_dn: str) -> str:
    return f"{rdn('CN', SETTINGS_CN)},{tenant_dn(tenant, base_dn)}"


def user_dn(tenant: str, username: str, base_dn: str) -> str:
    return f"{rdn('CN', username)},{tenant_dn(tenant, base_dn)}"


def password_settings_dn(base_dn: str) -> str:
    return f"CN=Password Settings Container,CN=System,{base_dn}"


def pso_dn(tenant: str, base_dn: str) -> str:
    """The tenant's fine-grained password policy (as SolidCP names it: ``<org>-PSO``)."""
    return f"{rdn('CN', f'{tenant}-PSO')},{password_settings_dn(base_dn)}"


def users_group_sam(tenant: str) -> str:
    return f"{tenant}-users"


def admins_group_sam(tenant: str) -> str:
    return f"{tenant}-admins"


def user_sam_candidate(tenant: str, username: str, attempt: int, digits: int) -> str:
    """The ``attempt``-th sAMAccountName candidate for a user: ``u`` + ``digits`` digits."""
    digest = hashlib.sha256(f"{tenant}\0{username.lower()}\0{attempt}".encode()).digest()
    return SAM_PREFIX + str(int.from_bytes(digest[:8], "big") % 10**digits).zfill(digits)


def upn(username: str, domain: str) -> str:
    return f"{username}@{domain}"


def directory_service_dn(configuration_nc: str) -> str:
    """The object whose ``dSHeuristics`` switches List Object Mode on."""
    return f"CN=Directory Service,CN=Windows NT,CN=Services,{configuration_nc}"
