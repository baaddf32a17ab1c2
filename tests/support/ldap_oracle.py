"""An independent view of the directory for assertions: plain ldap3, bound as Administrator.

It shares no code with ``workers.directory``, so a bug there cannot hide itself.
"""

from __future__ import annotations

import ssl

import ldap3

from tests.support.platform import SuitePlatform


def administrator(platform: SuitePlatform) -> ldap3.Connection:
    env = platform.settings_env
    tls = ldap3.Tls(
        validate=ssl.CERT_REQUIRED,
        ca_certs_file=env["PROVISIONER_LDAP_CA_FILE"],
        valid_names=[env["PROVISIONER_LDAP_TLS_NAME"]],
    )
    server = ldap3.Server(platform.listen_ip, port=636, use_ssl=True, tls=tls, get_info=ldap3.DSA)
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
