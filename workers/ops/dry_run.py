"""What an event would do to the directory now: its plan, and which steps are done."""

from __future__ import annotations

from messages.envelope import Envelope
from workers.directory.port import Directory
from workers.provisioning import engine
from workers.provisioning.keys import KeyRing
from workers.provisioning.realm import Realm
from workers.runtime.settings import Settings


def describe(
    envelope: Envelope, directory: Directory, realm: Realm, settings: Settings
) -> list[str]:
    """A heading line, then one line per step: ``[to do]`` or ``[done ]``."""
    plan = engine.plan_for(envelope, directory, realm)
    ctx = KeyRing.from_settings(settings).context(
        realm, envelope.idempotency_key, settings.sam_digits
    )
    lines = [f"{envelope.type} ({'all or nothing' if plan.all_or_nothing else 'stepwise'}):"]
    for number, step in enumerate(plan.steps, start=1):
        done = "done " if step.is_done(directory, ctx) else "to do"
        lines.append(f"  {number}. [{done}] {step.describe()}")
    return lines
