"""The fault drill, smaller (bench/drill with scenario.SMALL): 276 mixed events over 4
tenants and 8 poison messages on a fleet of two processes, while workers are SIGKILLed,
RabbitMQ restarts and Samba stops for 5 s.  The directory must then equal the model of
the events, object by object and attribute by attribute, and the DLQ the poison.

The oracle is shown able to fail: after the drill, the directory is broken by hand in
four ways, and the comparison reports exactly those.
"""

from __future__ import annotations

import secrets

import ldap3
import pytest

from bench.drill import model, observe, scenario
from bench.drill.run import Drill, Faults, Report, render
from tests.support import broker
from tests.support.drill import suite_target
from tests.support.platform import SuitePlatform

FAULTS = Faults(processes=2, kill_every=3.0, samba_down=5.0, deadline=600.0)


@pytest.fixture(scope="module")
def drilled(platform: SuitePlatform, tmp_path_factory: pytest.TempPathFactory) -> Report:
    """One drill for the module's tests: it takes about half a minute."""
    broker.purge(broker.WORK, broker.DLQ)  # nothing left over from other tests
    target = suite_target(platform, tmp_path_factory.mktemp("drill"))
    drill = Drill(target, scenario.build(secrets.token_hex(2), scenario.SMALL), FAULTS)
    try:
        report = drill.execute()
    finally:
        # Whatever failed, the DC runs again: a broken drill must not fail every later test.
        started = platform.script("samba-start")
        assert started.returncode == 0, started.stderr
        drill.clean_up()
    print(render(report))
    return report


def test_the_drill_loses_nothing_duplicates_nothing_and_leaves_nothing_half_made(
    drilled: Report,
) -> None:
    c = drilled.comparison
    assert c.objects_expected > 100
    assert c.objects_found == c.objects_expected
    assert c.findings == []
    assert c.binds_checked > 0
    assert drilled.dead_letters == drilled.poison_expected  # ids and codes
    assert len(drilled.dead_letters) == scenario.SMALL.poison
    assert drilled.republished_once
    assert len(drilled.republished) == scenario.SMALL.duplicates
    expected_answers = scenario.SMALL.events + scenario.SMALL.poison
    assert sum(drilled.outcomes.values()) == len(drilled.answers) == expected_answers


def test_every_fault_landed_in_flight_and_was_recovered_from(drilled: Report) -> None:
    kinds = {f.kind for f in drilled.faults}
    assert kinds == {"SIGKILL", "broker restart", "Samba stopped"}
    for fault in drilled.faults:
        assert fault.outstanding > 0, fault  # the wave had messages outstanding
        assert fault.progress > 0, fault  # and others had been answered already
        assert fault.recovery() is not None, fault  # answers came after it
    kills = [f for f in drilled.faults if f.kind == "SIGKILL"]
    assert all(f.replaced is not None and "-> new pid" in f.detail for f in kills)
    assert drilled.retries > 0  # the outage showed, as retries
    # Messages were in hand when the faults struck: the broker handed them out again (the
    # workers log it), and they were answered like the others.
    assert drilled.redelivered
    assert set(drilled.redelivered) <= set(drilled.answers)


def test_the_oracle_sees_what_is_broken(
    drilled: Report, platform: SuitePlatform, admin: ldap3.Connection
) -> None:
    """The positive control: four hand-made faults, and exactly those are reported."""
    expected = model.expected(drilled.scenario)
    tenant, state = next((n, t) for n, t in expected.items() if t is not None and len(t.users) > 3)
    ou = f"OU={tenant},OU=Tenants,DC=hosting,DC=test"
    living = [name for name, user in state.users.items() if not user.admin]
    renamed, gone, outcast = (f"CN={u},{ou}" for u in living[:3])
    assert admin.modify(renamed, {"givenName": [(ldap3.MODIFY_REPLACE, ["Tampered"])]})
    assert admin.delete(gone), admin.result
    assert admin.modify(f"CN=Tenant Users,{ou}", {"member": [(ldap3.MODIFY_DELETE, [outcast])]})
    stray = f"CN=stray,{ou}"
    assert admin.add(stray, ["top", "person", "organizationalPerson", "contact"]), admin.result

    reader = observe.Reader(platform.settings_env, platform.administrator_password)
    try:
        found = observe.compare(reader, expected)
    finally:
        reader.close()
    got = {(f.kind, f.dn.lower(), f.detail.split(":")[0]) for f in found.findings}
    assert got == {
        ("wrong", renamed.lower(), "givenName"),
        ("lost", gone.lower(), "no user"),
        ("wrong", f"CN=Tenant Users,{ou}".lower(), "member"),
        ("unexpected", stray.lower(), "not in the model"),
    }
