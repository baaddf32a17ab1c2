"""The pure parts of pinning tenants to DCs: each tenant's order of the DCs, what a DC
lacks given its fences and its up-to-dateness vector, that vector's wire format, and the
settings that name several DCs.  The rule at work on two real DCs is
tests/integration/test_failover.py."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from workers.delivery.fences import Kind, Mark
from workers.delivery.pinning import lagging, tenant_order
from workers.directory.replication import parse_up_to_dateness
from workers.runtime.settings import Settings, SettingsError

DCS = ["dc1.hosting.test", "dc2.hosting.test", "dc3.hosting.test"]
TENANTS = [f"t-{i}" for i in range(3000)]

# DC2's replUpToDateVector as read from the local platform's DC2 (Samba 4.17): one V2
# cursor for DC1, whose NTDS Settings hold invocationId e1b47f91-0205-42f4-bc54-8e93e0bf2356
# (read there on its own), at USN 3969 (what DC1's highestCommittedUSN said that moment).
DC2_VECTOR = bytes.fromhex(
    "020000000000000001000000000000"
    "00917fb4e10502f442bc548e93e0bf2356810f00000000000000803ed5deb19d01"
)
DC1_INVOCATION = "e1b47f91-0205-42f4-bc54-8e93e0bf2356"


def test_every_worker_orders_a_tenants_dcs_the_same_whatever_order_they_are_listed_in() -> None:
    shuffled = DCS[:]
    random.Random(3).shuffle(shuffled)  # noqa: S311 - a repeatable order
    for tenant in TENANTS[:200]:
        assert tenant_order(tenant, DCS) == tenant_order(tenant, shuffled)
        assert sorted(tenant_order(tenant, DCS)) == sorted(DCS)


def test_tenants_spread_over_the_dcs() -> None:
    preferred = Counter(tenant_order(t, DCS)[0] for t in TENANTS)
    for dc in DCS:
        assert 0.28 < preferred[dc] / len(TENANTS) < 0.39, preferred


def test_taking_a_dc_away_moves_only_the_tenants_it_held() -> None:
    moved = stayed = 0
    for tenant in TENANTS:
        before = tenant_order(tenant, DCS)
        after = tenant_order(tenant, DCS[:2])
        if before[0] == DCS[2]:
            assert after[0] == before[1]  # to its next DC
            moved += 1
        else:
            assert after[0] == before[0]
            stayed += 1
    assert moved
    assert stayed


def mark(pending: frozenset[str] = frozenset(), usn: int = 0) -> Mark:
    return Mark(Kind.FENCE, "dc1", "dc2", DC1_INVOCATION, pending, usn)


def test_a_dc_holding_every_settled_change_lacks_nothing() -> None:
    assert lagging([mark(usn=100)], {DC1_INVOCATION: 100}) == []
    assert lagging([mark(usn=100)], {DC1_INVOCATION: 250}) == []
    assert lagging([mark(usn=0)], {}) == []  # staked and released: nothing was written


def test_a_dc_behind_a_settled_change_lacks_it() -> None:
    assert lagging([mark(usn=101)], {DC1_INVOCATION: 100}) == [
        "dc1's changes up to USN 101 (it holds 100)"
    ]
    assert lagging([mark(usn=5)], {"someone-else": 10**6}) == [
        "dc1's changes up to USN 5 (it holds 0)"
    ]


def test_a_job_pending_on_another_dc_blocks_however_far_the_vector_reaches() -> None:
    lacks = lagging([mark(frozenset({"pending:abc"}), usn=1)], {DC1_INVOCATION: 10**9})
    assert lacks == ["1 job(s) on dc1 whose changes are not known (running, or cut short)"]


def test_the_up_to_dateness_vector_as_samba_writes_it() -> None:
    assert parse_up_to_dateness(DC2_VECTOR) == {DC1_INVOCATION: 3969}


@pytest.mark.parametrize("blob", [DC2_VECTOR[:20], b"\x09" + DC2_VECTOR[1:], b""])
def test_a_value_that_is_no_vector_is_an_error(blob: bytes) -> None:
    with pytest.raises(ValueError, match="not an up-to-dateness vector"):
        parse_up_to_dateness(blob)


def test_several_dcs_each_with_the_name_in_its_certificate() -> None:
    settings = Settings(
        ldap_url="ldaps://127.0.0.1:636, ldaps://127.0.0.101",
        ldap_tls_name="DC1.hosting.test,dc2.hosting.test",
    )
    assert [(dc.url, dc.name) for dc in settings.domain_controllers] == [
        ("ldaps://127.0.0.1:636", "dc1.hosting.test"),
        ("ldaps://127.0.0.101", "dc2.hosting.test"),
    ]
    one_name = Settings(ldap_url="ldaps://a.example,ldaps://b.example:1636")
    assert [dc.name for dc in one_name.domain_controllers] == ["a.example", "b.example:1636"]


@pytest.mark.parametrize(
    ("url", "names", "says"),
    [
        ("ldaps://a,ldaps://b", "a,b,c", "3 names for 2 DCs"),
        ("ldaps://a,ldaps://a:636", "", "a DC is named twice"),
        ("ldaps://a,ldap://b", "", "an ldaps:// URL, or several"),
    ],
)
def test_dcs_that_do_not_add_up_are_refused(url: str, names: str, says: str) -> None:
    with pytest.raises(SettingsError, match=says):
        Settings(ldap_url=url, ldap_tls_name=names)
