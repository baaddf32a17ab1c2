"""Escaping for LDAP, in one place: every filter value and every RDN value the fleet
writes goes through here.  ldap3 does the escaping (RFC 4515 for filters, RFC 4514 for
DNs); this module is the only door to it outside the ldap3 edge."""

from __future__ import annotations

from ldap3.utils.conv import escape_filter_chars
from ldap3.utils.dn import escape_rdn


def filter_value(value: str) -> str:
    """``value`` as it may stand in a filter's assertion: ``*()\\`` and NUL escaped."""
    return str(escape_filter_chars(value))


def rdn_value(value: str) -> str:
    """``value`` as it may stand in an RDN: ``,+"\\<>;=#`` and edge spaces escaped."""
    return str(escape_rdn(value))
