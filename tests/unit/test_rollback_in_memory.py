"""``tenant.created`` and ``user.created`` are all or nothing: a failure at any of their
steps leaves the in-memory directory exactly as it was (every entry, attribute, password
and descriptor), and an undo that fails names what it left.  The same holds on Samba:
``tests/integration/test_rollback.py``."""

from __future__ import annotations

from pathlib import Path

import pytest

from messages.envelope import Envelope
from tests.support.faults import FaultyDirectory, InjectedFault
from tests.support.memory import MemoryFleet, tenant_data, user_data
from workers.directory.port import Directory
from workers.errors import RollbackIncomplete
from workers.provisioning import engine


class StepCounter:
    """An observer that counts the steps finished."""

    def __init__(self) -> None:
        self.finished = 0
        self.rollbacks: list[list[str]] = []

    def on_step(self, step: object, seconds: float) -> None:
        del step, seconds
        self.finished += 1

    def on_rollback(self, event_type: str, leftovers: list[str]) -> None:
        del event_type
        self.rollbacks.append(leftovers)


def tenant_created(fleet: MemoryFleet) -> Envelope:
    return fleet.event(
        "tenant.created", tenant_data("contoso", max_users=5, policy=True), "contoso-created"
    )


def user_created(fleet: MemoryFleet) -> Envelope:
    return fleet.event("user.created", user_data("contoso", "j.doe", role="admin"), "j.doe-created")


def fresh(tmp_path: Path, kind: str) -> tuple[MemoryFleet, Envelope]:
    """A domain and the event to fail: a user.created's tenant exists first."""
    fleet = MemoryFleet.make(tmp_path / kind)
    if kind == "tenant.created":
        return fleet, tenant_created(fleet)
    engine.handle(tenant_created(fleet), fleet.directory, fleet.context(tenant_created(fleet)))
    return fleet, user_created(fleet)


def run(
    fleet: MemoryFleet, envelope: Envelope, directory: Directory, observer: StepCounter
) -> None:
    engine.handle(envelope, directory, fleet.context(envelope), observer)


@pytest.mark.parametrize("kind", ["tenant.created", "user.created"])
def test_a_failure_at_every_step_leaves_the_directory_as_it_was(tmp_path: Path, kind: str) -> None:
    fleet, envelope = fresh(tmp_path, kind)
    plan = engine.plan_for(envelope, fleet.directory, fleet.realm)
    probe, probe_event = fresh(tmp_path / "probe", kind)
    counted = FaultyDirectory(probe.directory)
    run(probe, probe_event, counted, StepCounter())
    writes = len(counted.writes)
    assert writes >= len(plan.steps)  # every step writes at least once

    failed_steps = set()
    for fail_at in range(1, writes + 1):
        fleet, envelope = fresh(tmp_path / f"at-{fail_at}", kind)
        before = fleet.directory.dump()
        faulty = FaultyDirectory(fleet.directory, fail_at)
        counter = StepCounter()
        with pytest.raises(InjectedFault):
            run(fleet, envelope, faulty, counter)
        assert faulty.faulted == faulty.writes[fail_at - 1]  # the fault landed as aimed
        assert counter.rollbacks == [[]]  # rolled back, nothing left
        assert fleet.directory.dump() == before, f"after a failure at write {fail_at}"
        failed_steps.add(counter.finished)  # the step that was running when it failed
    assert failed_steps == set(range(len(plan.steps))), plan.describe()


@pytest.mark.parametrize("kind", ["tenant.created", "user.created"])
def test_an_undo_that_fails_names_what_it_left(tmp_path: Path, kind: str) -> None:
    fleet, envelope = fresh(tmp_path, kind)
    probe, probe_event = fresh(tmp_path / "probe", kind)
    counted = FaultyDirectory(probe.directory)
    run(probe, probe_event, counted, StepCounter())
    faulty = FaultyDirectory(fleet.directory, len(counted.writes), fail_deletes=True)
    with pytest.raises(RollbackIncomplete) as info:
        run(fleet, envelope, faulty, StepCounter())
    leftovers = "\n".join(info.value.leftovers)
    made = [w.split(" ", 1)[1] for w in counted.writes if w.startswith("add ")]
    assert made
    for dn in made:
        if "CN=Idempotency" not in dn:
            assert dn in leftovers, dn
    # A later rollback of the same job (a fresh journal, as the last retry makes) removes
    # what the job made, and the directory is as it was before the job.
    plan = engine.plan_for(envelope, fleet.directory, fleet.realm)
    assert engine.rollback(plan, [], fleet.directory, fleet.context(envelope)) == []
    clean, _ = fresh(tmp_path / "clean", kind)
    assert set(fleet.directory.dump()) == set(clean.directory.dump())
