"""An independent view of the directory for assertions: plain ldap3, bound as Administrator.

It shares no code with ``workers.directory``, so a bug there cannot hide itself.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from contextlib import contextmanager

import ldap3

from tests.support.platform import SuitePlatform


def administrator(
    platform: SuitePlatform,
    ip: str | None = None,
    ca_file: str | None = None,
    tls_name: str | None = None,
) -> ldap3.Connection:
    """Administrator on the suite's DC, or on another DC of its domain (its address, the CA
    of its certificate and the name it carries)."""
    env = platform.settings_env
    tls = ldap3.Tls(
        validate=ssl.CERT_REQUIRED,
        ca_certs_file=ca_file or env["PROVISIONER_LDAP_CA_FILE"],
        valid_names=[tls_name or env["PROVISIONER_LDAP_TLS_NAME"]],
    )
    server = ldap3.Server(
        ip or platform.listen_ip, port=636, use_ssl=True, tls=tls, get_info=ldap3.DSA
    )
    return ldap3.Connection(
        server,
        user=f"Administrator@{'hosting.test'}",
        password=platform.administrator_password,
        auto_bind=ldap3.AUTO_BIND_NO_TLS,
        raise_exceptions=False,
    )


def read(
    connection: ldap3.Connection, dn: str, attributes: list[str]
) -> dict[str, list[str]] | None:
    """The entry's attributes as lists of UTF-8 strings, or None when ``dn`` does not exist."""
    if not connection.search(dn, "(objectClass=*)", ldap3.BASE, attributes=attributes):
        assert connection.result["description"] == "noSuchObject", connection.result
        return None
    raw: dict[str, list[bytes]] = connection.response[0]["raw_attributes"]
    return {name: [v.decode("utf-8") for v in values] for name, values in raw.items()}


def read_raw(
    connection: ldap3.Connection, dn: str, attributes: list[str]
) -> dict[str, list[bytes]]:
    """The entry's values as the DC holds them, binary ones included, names in lower case
    and values sorted; ``{}`` when ``dn`` does not exist."""
    if not connection.search(dn, "(objectClass=*)", ldap3.BASE, attributes=attributes):
        return {}
    found: dict[str, list[bytes]] = connection.response[0]["raw_attributes"]
    return {name.lower(): sorted(values) for name, values in found.items()}


def dacl_sddl(connection: ldap3.Connection, dn: str) -> str:
    """The DACL of ``dn`` in SDDL, as winacl (not the fleet's code) renders it."""
    from ldap3.protocol.microsoft import security_descriptor_control  # noqa: PLC0415
    from winacl.dtyp.security_descriptor import SECURITY_DESCRIPTOR  # noqa: PLC0415

    assert connection.search(
        dn,
        "(objectClass=*)",
        ldap3.BASE,
        attributes=["nTSecurityDescriptor"],
        controls=security_descriptor_control(sdflags=0x04),
    )
    raw = connection.response[0]["raw_attributes"]["nTSecurityDescriptor"][0]
    return str(SECURITY_DESCRIPTOR.from_bytes(raw).to_sddl())


def sid(connection: ldap3.Connection, dn: str) -> str:
    from winacl.dtyp.sid import SID  # noqa: PLC0415

    assert connection.search(dn, "(objectClass=*)", ldap3.BASE, attributes=["objectSid"])
    return str(SID.from_bytes(connection.response[0]["raw_attributes"]["objectSid"][0]))


@contextmanager
def bind(platform: SuitePlatform, user: str, password: str) -> Iterator[ldap3.Connection]:
    """A connection that tried to bind as ``user`` (a UPN or DN): see ``.bound``, ``.result``."""
    env = platform.settings_env
    tls = ldap3.Tls(
        validate=ssl.CERT_REQUIRED,
        ca_certs_file=env["PROVISIONER_LDAP_CA_FILE"],
        valid_names=[env["PROVISIONER_LDAP_TLS_NAME"]],
    )
    server = ldap3.Server(platform.listen_ip, port=636, use_ssl=True, tls=tls)
    connection = ldap3.Connection(server, user=user, password=password, raise_exceptions=False)
    connection.open()
    connection.bind()
    try:
        yield connection
    finally:
        connection.unbind()


@contextmanager
def as_fleet(platform: SuitePlatform) -> Iterator[ldap3.Connection]:
    """A connection bound as the fleet's own account (the env file's credential)."""
    env = platform.settings_env
    dn, secret = env["PROVISIONER_LDAP_BIND_DN"], env["PROVISIONER_LDAP_BIND_PASSWORD"]
    with bind(platform, dn, secret) as connection:
        assert connection.bound, connection.result
        yield connection


# Change metadata that any modify advances, even one undone later.
CHANGE_METADATA = frozenset({"usnchanged", "whenchanged"})


def snapshot(
    connection: ldap3.Connection, bases: list[str], ignore: frozenset[str] = frozenset()
) -> dict[str, dict[str, list[bytes]]]:
    """Every entry under ``bases`` with every attribute (but ``ignore``) and its DACL."""
    from ldap3.protocol.microsoft import security_descriptor_control  # noqa: PLC0415

    out: dict[str, dict[str, list[bytes]]] = {}
    for base in bases:
        assert connection.search(
            base,
            "(objectClass=*)",
            ldap3.SUBTREE,
            attributes=["*", "nTSecurityDescriptor"],
            controls=security_descriptor_control(sdflags=0x04),
        ), base
        for r in connection.response:
            if r.get("type") == "searchResEntry":
                out[r["dn"].lower()] = {
                    k.lower(): sorted(v)
                    for k, v in r["raw_attributes"].items()
                    if k.lower() not in ignore
                }
    return out
