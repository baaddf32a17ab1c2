"""A Kerberos (GSSAPI) LDAP logon to the DC, with a ticket from ``kinit`` by a tenant user's
UPN: it needs the DC's ``ldap/`` service principal name, which the platform registers
(``samba_spnupdate``); without it the same logon fails with "Server not found in
Kerberos database", the control.

The client is OpenLDAP's ``ldapsearch -Y GSSAPI``.  It must reach the DC by its name
(``dc1.hosting.test``, the name its service principal carries), and these machines have
no DNS for it: the name is given in an ``/etc/hosts`` of the test's own, bind-mounted in
a mount namespace that only the client sees.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.support import engine
from tests.support.platform import SuitePlatform

DC_NAME = "dc1.hosting.test"
BASE = "DC=hosting,DC=test"
PASSWORD = "Kerberos-Passw0rd!"


def kerberos_env(platform: SuitePlatform, cache: Path) -> dict[str, str]:
    return {
        **os.environ,
        "KRB5_CONFIG": str(platform.state_dir / "krb5.conf"),
        "KRB5CCNAME": f"FILE:{cache}",
    }


def kinit(
    platform: SuitePlatform, upn: str, password: str, cache: Path
) -> subprocess.CompletedProcess[str]:
    """``kinit -E``: the UPN as an enterprise principal, as a user logs on."""
    return subprocess.run(
        ["kinit", "-E", upn],
        input=password + "\n",
        env=kerberos_env(platform, cache),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def gssapi_search(
    platform: SuitePlatform, cache: Path, base: str, tmp_path: Path
) -> subprocess.CompletedProcess[str]:
    hosts = tmp_path / "hosts"
    hosts.write_text(f"127.0.0.1 localhost\n{platform.listen_ip} {DC_NAME} dc1\n")
    search = (
        f"mount --bind {hosts} /etc/hosts && exec ldapsearch -LLL -Y GSSAPI -N "
        f"-H ldap://{DC_NAME} -b '{base}' -s base cn"
    )
    return subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", search],
        env=kerberos_env(platform, cache),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def spns(platform: SuitePlatform) -> list[str]:
    listed = subprocess.run(
        ["samba-tool", "spn", "list", "DC1$", "-s", str(platform.state_dir / "samba/etc/smb.conf")],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return [line.strip() for line in listed.stdout.splitlines()[1:] if line.strip()]


@pytest.fixture
def user(platform: SuitePlatform) -> tuple[str, str]:
    """A tenant's admin, made by the engine: (its UPN, its DN)."""
    tenant = engine.create_tenant(platform, "krb", PASSWORD)
    return f"admin@{tenant}.example", f"CN=admin,OU={tenant},OU=Tenants,{BASE}"


def test_the_dc_has_its_ldap_service_principal_names(platform: SuitePlatform) -> None:
    names = spns(platform)
    assert f"ldap/{DC_NAME}" in names, names
    assert f"ldap/{DC_NAME}/hosting.test" in names, names
    assert any(n.startswith("E3514235-4B06-11D1-AB04-00C04FC2DCD2/") for n in names), names


def test_a_gssapi_bind_with_a_ticket_got_by_upn(
    platform: SuitePlatform, user: tuple[str, str], tmp_path: Path
) -> None:
    upn, dn = user
    cache = tmp_path / "cc"
    wrong = kinit(platform, upn, "not-the-password", cache)
    assert wrong.returncode != 0  # the KDC checks the password: the logon is real
    got = kinit(platform, upn, PASSWORD, cache)
    assert got.returncode == 0, got.stderr
    found = gssapi_search(platform, cache, dn, tmp_path)
    assert found.returncode == 0, found.stderr
    assert f"dn: {dn}" in found.stdout
    tickets = subprocess.run(
        ["klist"], env=kerberos_env(platform, cache), capture_output=True, text=True, check=True
    ).stdout
    assert f"ldap/{DC_NAME}@HOSTING.TEST" in tickets


def test_without_the_spn_the_same_logon_fails_as_it_did(
    platform: SuitePlatform, user: tuple[str, str], tmp_path: Path
) -> None:
    upn, dn = user
    conf = str(platform.state_dir / "samba/etc/smb.conf")
    subprocess.run(
        ["samba-tool", "spn", "delete", f"ldap/{DC_NAME}", "DC1$", "-s", conf],
        capture_output=True,
        check=True,
        timeout=60,
    )
    try:
        cache = tmp_path / "cc"
        assert kinit(platform, upn, PASSWORD, cache).returncode == 0
        refused = gssapi_search(platform, cache, dn, tmp_path)
        assert refused.returncode != 0
        assert "Server not found in Kerberos database" in refused.stderr, refused.stderr
    finally:
        again = platform.script("up")  # the platform puts it back
        assert again.returncode == 0, again.stderr
    assert f"ldap/{DC_NAME}" in spns(platform)
