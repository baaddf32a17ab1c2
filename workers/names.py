"""Distinguished names of everything the fleet touches; pure.

Every value placed in a DN goes through ldap3's RDN escaping, so a name holding
``,+"\\<>;=#`` or leading and trailing spaces stays one literal RDN value.
"""

from __future__ import annotations

from ldap3.utils.dn import escape_rdn

TENANTS_OU = "Tenants"


def rdn(attribute: str, value: str) -> str:
    return f"{attribute}={escape_rdn(value)}"


def tenants_dn(base_dn: str) -> str:
    return f"{rdn('OU', TENANTS_OU)},{base_dn}"


def tenant_dn(tenant: str, base_dn: str) -> str:
    return f"{rdn('OU', tenant)},{tenants_dn(base_dn)}"


def directory_service_dn(configuration_nc: str) -> str:
    """The object whose ``dSHeuristics`` switches List Object Mode on."""
    return f"CN=Directory Service,CN=Windows NT,CN=Services,{configuration_nc}"
