"""Runs one event: plan it, apply the steps in order, and undo them if it must.

A transient directory failure is raised as it is: the steps done so far stay, and a
redelivery converges.  Any other failure of an all-or-nothing job (``tenant.created``,
``user.created``, the updates) undoes its steps in reverse, unless every step's effect
is in place anyway (a redelivery of a finished job); if an undo fails,
:class:`RollbackIncomplete` names exactly what was left behind.
"""

from __future__ import annotations

import time
from typing import Any, Protocol

from messages.envelope import Envelope
from workers.directory.port import Directory, DirectoryUnavailable
from workers.errors import DependencyNotReady, PermanentError, RollbackIncomplete
from workers.provisioning import planner, tenant_state
from workers.provisioning.realm import Realm
from workers.provisioning.steps import Applied, Context

__all__ = [
    "DependencyNotReady",
    "PermanentError",
    "RollbackIncomplete",
    "execute",
    "handle",
    "plan_for",
]


class Observer(Protocol):
    """Who wants to know how long steps take and when jobs are rolled back (metrics)."""

    def on_step(self, step: object, seconds: float) -> None: ...

    def on_rollback(self, event_type: str, leftovers: list[str]) -> None: ...


class _Unobserved:
    def on_step(self, step: object, seconds: float) -> None:
        """Nobody is listening."""

    def on_rollback(self, event_type: str, leftovers: list[str]) -> None:
        """Nobody is listening."""


UNOBSERVED: Observer = _Unobserved()


def plan_for(envelope: Envelope, directory: Directory, realm: Realm) -> planner.Plan:
    """Read the tenant's state (when the event needs it), then plan: the one way from an
    event to its plan, for the engine, the undo of a job that ran out of retries and the
    dry run alike."""
    state = (
        tenant_state.read(directory, envelope.tenant, realm.base_dn)
        if planner.needs_state(envelope)
        else None
    )
    return planner.plan(envelope, realm, state)


def handle(
    envelope: Envelope, directory: Directory, ctx: Context, observer: Observer = UNOBSERVED
) -> dict[str, Any]:
    """Apply ``envelope`` and return the details of its effect."""
    return execute(plan_for(envelope, directory, ctx.realm), directory, ctx, observer)


def execute(
    plan: planner.Plan, directory: Directory, ctx: Context, observer: Observer = UNOBSERVED
) -> dict[str, Any]:
    journal: list[Applied] = []
    try:
        for step in plan.steps:
            started = time.perf_counter()
            applied = step.apply(directory, ctx)
            observer.on_step(step, time.perf_counter() - started)
            if applied is not None:
                journal.append(applied)
    except (DirectoryUnavailable, DependencyNotReady):
        raise
    except Exception as exc:
        if not plan.all_or_nothing or _goal_holds(plan, directory, ctx):
            raise
        leftovers = rollback(plan, journal, directory, ctx)
        observer.on_rollback(plan.event_type, leftovers)
        if leftovers:
            raise RollbackIncomplete(exc, leftovers) from exc
        raise
    details: dict[str, Any] = dict(plan.details)
    for applied in journal:
        details.update(applied.details)
    return details


def _goal_holds(plan: planner.Plan, directory: Directory, ctx: Context) -> bool:
    """Whether every step's effect is in place although one step failed.

    Then the job was complete before this attempt (a redelivery): undoing it would tear
    down a finished tenant or user, so the failure is reported and nothing is undone.
    """
    try:
        return all(step.is_done(directory, ctx) for step in plan.steps)
    except Exception:  # noqa: BLE001 - if the state cannot be read, it does not hold
        return False


def rollback(
    plan: planner.Plan, journal: list[Applied], directory: Directory, ctx: Context
) -> list[str]:
    """Undo every step in reverse, this attempt's and earlier attempts'; return leftovers."""
    by_step = {id(applied.step): applied for applied in journal}
    leftovers: list[str] = []
    for step in reversed(plan.steps):
        try:
            step.undo(directory, ctx, by_step.get(id(step)))
        except Exception as exc:  # noqa: BLE001 - every failed undo is reported, none hidden
            leftovers.append(f"{step.describe()} ({exc})")
    return leftovers
