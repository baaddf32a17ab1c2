"""What the directory holds for a scenario's tenants, read with plain ldap3 as
Administrator, and its differences from the model, object by object and attribute by
attribute.  Nothing here uses the fleet's directory code.
"""

from __future__ import annotations

import ssl
from collections import Counter
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

import ldap3
from ldap3.protocol.microsoft import security_descriptor_control
from ldap3.utils.dn import escape_rdn
from winacl.dtyp.security_descriptor import SECURITY_DESCRIPTOR

from bench.drill.model import Tenant, User

ATTRIBUTES = [
    "objectClass",
    "description",
    "givenName",
    "sn",
    "displayName",
    "userPrincipalName",
    "userAccountControl",
    "sAMAccountName",
    "member",
    "objectSid",
]
ACCOUNTDISABLE = 0x2
AUTHENTICATED_USERS = "AU"


@dataclass
class Finding:
    kind: str  # lost | unexpected | wrong
    dn: str
    detail: str


@dataclass
class Comparison:
    tenants: int = 0
    objects_expected: int = 0
    objects_found: int = 0
    attributes_checked: int = 0
    binds_checked: int = 0
    findings: list[Finding] = field(default_factory=list)

    def objects(self, kind: str) -> int:
        """How many objects have findings of this kind."""
        return len({f.dn for f in self.findings if f.kind == kind})


class Reader:
    def __init__(self, env: dict[str, str], administrator_password: str) -> None:
        self.env = env
        self.base = env["PROVISIONER_LDAP_BASE_DN"]
        self.server = ldap3.Server(
            urlparse(env["PROVISIONER_LDAP_URL"]).hostname,
            port=636,
            use_ssl=True,
            tls=ldap3.Tls(
                validate=ssl.CERT_REQUIRED,
                ca_certs_file=env["PROVISIONER_LDAP_CA_FILE"],
                valid_names=[env["PROVISIONER_LDAP_TLS_NAME"]],
            ),
        )
        realm = ".".join(part[3:] for part in self.base.split(",")).lower()
        self.conn = ldap3.Connection(
            self.server,
            user=f"Administrator@{realm}",
            password=administrator_password,
            auto_bind=ldap3.AUTO_BIND_NO_TLS,
            raise_exceptions=False,
        )

    def tenant_dn(self, tenant: str) -> str:
        return f"OU={escape_rdn(tenant)},OU=Tenants,{self.base}"

    def subtree(self, tenant: str) -> dict[str, dict[str, list[Any]]]:
        """DN (lower case) -> attributes of everything under the tenant's OU."""
        entries = self.conn.extend.standard.paged_search(
            self.tenant_dn(tenant),
            "(objectClass=*)",
            ldap3.SUBTREE,
            attributes=ATTRIBUTES,
            paged_size=500,
            generator=False,
        )
        if self.conn.result["description"] == "noSuchObject":
            return {}
        assert self.conn.result["description"] == "success", self.conn.result
        return {e["dn"].lower(): e["attributes"] for e in entries if e["type"] == "searchResEntry"}

    def dacl(self, dn: str) -> str:
        assert self.conn.search(
            dn,
            "(objectClass=*)",
            ldap3.BASE,
            attributes=["nTSecurityDescriptor"],
            controls=security_descriptor_control(sdflags=0x04),
        ), self.conn.result
        raw = self.conn.response[0]["raw_attributes"]["nTSecurityDescriptor"][0]
        return str(SECURITY_DESCRIPTOR.from_bytes(raw).to_sddl())

    def binds(self, upn: str, password: str) -> bool:
        conn = ldap3.Connection(self.server, user=upn, password=password, raise_exceptions=False)
        try:
            return bool(conn.bind())
        finally:
            conn.unbind()

    def close(self) -> None:
        self.conn.unbind()


def _one(attributes: dict[str, list[Any]], name: str) -> Any:
    value = attributes.get(name)
    if isinstance(value, list):
        return value[0] if value else None
    return value


class _Diff:
    def __init__(self, reader: Reader, out: Comparison) -> None:
        self.reader, self.out = reader, out

    def wrong(self, dn: str, what: str, *, want: object, got: object) -> None:
        self.out.attributes_checked += 1
        if want != got:
            self.out.findings.append(Finding("wrong", dn, f"{what}: want {want!r}, got {got!r}"))

    def tenant(self, name: str, want: Tenant | None) -> dict[str, dict[str, list[Any]]]:
        """Compare one tenant; return what was found under its OU."""
        self.out.tenants += 1
        ou = self.reader.tenant_dn(name)
        found = self.reader.subtree(name)
        self.out.objects_found += len(found)
        if want is None:
            for dn in found:
                self.out.findings.append(Finding("unexpected", dn, "left after tenant.deleted"))
            return found
        users_group, admins_group = f"CN=Tenant Users,{ou}", f"CN=Tenant Admins,{ou}"
        expected = {
            ou.lower(): "organizationalUnit",
            f"CN=Tenant Settings,{ou}".lower(): "msDS-App-Configuration",
            users_group.lower(): "group",
            admins_group.lower(): "group",
        }
        user_dns = {f"CN={escape_rdn(u)},{ou}".lower(): u for u in want.users}
        expected |= dict.fromkeys(user_dns, "user")
        self.out.objects_expected += len(expected)
        for dn, object_class in expected.items():
            if dn not in found:
                self.out.findings.append(Finding("lost", dn, f"no {object_class}"))
            elif object_class not in found[dn].get("objectClass", []):
                self.out.findings.append(Finding("wrong", dn, f"not a {object_class}"))
        for dn in found.keys() - expected.keys():
            self.out.findings.append(Finding("unexpected", dn, "not in the model"))
        if ou.lower() not in found:
            return found
        self.wrong(ou, "description", want=want.name, got=_one(found[ou.lower()], "description"))
        self._lockdown(ou, found)
        for dn, username in user_dns.items():
            if dn in found:
                self.user(dn, want.users[username], found[dn])
        admins = {dn for dn, u in user_dns.items() if want.users[u].admin}
        self._members(users_group, set(user_dns), found)
        self._members(admins_group, admins, found)
        return found

    def _members(
        self, group: str, members: set[str], found: dict[str, dict[str, list[Any]]]
    ) -> None:
        if group.lower() in found:
            got = {str(m).lower() for m in found[group.lower()].get("member", [])}
            self.wrong(group, "member", want=sorted(members), got=sorted(got))

    def _lockdown(self, ou: str, found: dict[str, dict[str, list[Any]]]) -> None:
        sddl = self.reader.dacl(ou)
        dacl = sddl[sddl.index("D:") :]
        self.wrong(ou, "DACL protected", want=True, got=dacl.startswith("D:P"))
        au = f";{AUTHENTICATED_USERS})" in dacl
        self.wrong(ou, "Authenticated Users in the DACL", want=False, got=au)
        for group in ("Tenant Users", "Tenant Admins"):
            sid = _one(found.get(f"cn={group},{ou}".lower(), {}), "objectSid")
            granted = bool(sid) and f";{sid})" in dacl
            self.wrong(ou, f"{group} granted in the DACL", want=True, got=granted)

    def user(self, dn: str, want: User, got: dict[str, list[Any]]) -> None:
        for attribute, value in (
            ("givenName", want.given_name),
            ("sn", want.surname),
            ("displayName", want.display_name),
            ("userPrincipalName", want.upn),
        ):
            self.wrong(dn, attribute, want=value, got=_one(got, attribute))
        uac = int(_one(got, "userAccountControl") or 0)
        self.wrong(dn, "enabled", want=want.enabled, got=not uac & ACCOUNTDISABLE)
        if want.reset and want.enabled:
            self.out.binds_checked += 1
            binds = self.reader.binds(want.upn, want.password)
            self.wrong(dn, "binds with the reset password", want=True, got=binds)


def compare(reader: Reader, model: dict[str, Tenant | None]) -> Comparison:
    out = Comparison()
    diff = _Diff(reader, out)
    sams: Counter[str] = Counter()
    for name, want in model.items():
        for attributes in diff.tenant(name, want).values():
            if "user" in attributes.get("objectClass", []):
                sams[str(_one(attributes, "sAMAccountName")).lower()] += 1
    for sam, n in sams.items():
        if n > 1:
            out.findings.append(Finding("unexpected", sam, f"sAMAccountName held {n} times"))
    return out
