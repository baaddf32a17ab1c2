"""A second domain controller (``deploy/local/platform dc2 up``): joined to the suite's
domain on its own loopback address, and replicating both ways.  Each DC is read on its
own, over LDAPS with its own certificate checked: a change made on either reaches the
other, and a tenant the engine made on DC1 (its OU, groups, admin and protected DACL)
is the same on DC2.

This is the ground the fleet's per-tenant pinning stands on (tests/integration/
test_failover.py).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator

import ldap3
import pytest

from tests.support import engine, ldap_oracle
from tests.support.dcs import TwoDcs
from tests.support.platform import SuitePlatform

BASE = "DC=hosting,DC=test"


@pytest.fixture(scope="module")
def dcs(platform: SuitePlatform) -> Iterator[tuple[ldap3.Connection, ldap3.Connection]]:
    """(DC1, DC2), each as Administrator, each its own certificate and name checked."""
    with TwoDcs.running(platform) as two:
        dc1, dc2 = two.administrator(1), two.administrator(2)
        yield dc1, dc2
        dc1.unbind()
        dc2.unbind()


def appears(connection: ldap3.Connection, dn: str, timeout: float = 30) -> float:
    """Seconds until ``dn`` can be read on ``connection``; fails after ``timeout``."""
    started = time.monotonic()
    while not ldap_oracle.read_raw(connection, dn, ["objectGUID"]):
        assert time.monotonic() - started < timeout, f"{dn} not replicated in {timeout} s"
        time.sleep(0.25)
    return time.monotonic() - started


def test_the_second_dc_is_a_dc_of_the_same_domain(
    dcs: tuple[ldap3.Connection, ldap3.Connection],
) -> None:
    dc1, dc2 = dcs
    for connection in (dc1, dc2):
        assert connection.bound, connection.result
    assert ldap_oracle.sid(dc1, BASE) == ldap_oracle.sid(dc2, BASE)
    servers = ldap_oracle.read(
        dc1,
        f"CN=DC2,CN=Servers,CN=Default-First-Site-Name,CN=Sites,CN=Configuration,{BASE}",
        ["cn"],
    )
    assert servers is not None


@pytest.mark.parametrize("origin", ["DC1", "DC2"])
def test_a_change_on_either_dc_reaches_the_other(
    dcs: tuple[ldap3.Connection, ldap3.Connection], origin: str
) -> None:
    dc1, dc2 = dcs
    source, target = (dc1, dc2) if origin == "DC1" else (dc2, dc1)
    dn = f"OU=repl-{origin.lower()}-{secrets.token_hex(3)},{BASE}"
    assert ldap_oracle.read(target, dn, ["ou"]) is None  # not there before
    assert source.add(dn, ["organizationalUnit"], {"description": f"made on {origin}"})
    seconds = appears(target, dn)
    copy = ldap_oracle.read(target, dn, ["description"])
    assert copy == {"description": [f"made on {origin}"]}
    print(f"{origin} -> the other DC: {seconds:.1f} s")
    assert source.delete(dn)


def test_a_tenant_made_on_dc1_is_the_same_on_dc2(
    platform: SuitePlatform, dcs: tuple[ldap3.Connection, ldap3.Connection]
) -> None:
    dc1, dc2 = dcs
    tenant = engine.create_tenant(platform, "two", "TwoDcs-Passw0rd!")
    ou = f"OU={tenant},OU=Tenants,{BASE}"
    appears(dc2, f"CN=admin,{ou}")
    appears(dc2, f"CN=Tenant Admins,{ou}")
    for dn in (ou, f"CN=Tenant Users,{ou}", f"CN=Tenant Admins,{ou}", f"CN=admin,{ou}"):
        attributes = ["objectGUID", "objectSid", "member", "userPrincipalName", "description"]
        deadline = time.monotonic() + 30
        while ldap_oracle.read_raw(dc2, dn, attributes) != ldap_oracle.read_raw(
            dc1, dn, attributes
        ) or not ldap_oracle.read_raw(dc1, dn, attributes):
            assert time.monotonic() < deadline, dn
            time.sleep(0.25)
    assert ldap_oracle.dacl_sddl(dc2, ou) == ldap_oracle.dacl_sddl(dc1, ou)
    assert ldap_oracle.dacl_sddl(dc2, ou).startswith("D:P(")  # protected on DC2 as well
