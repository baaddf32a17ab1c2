"""The fault drill (bench/drill) aimed at the suite's platform: its accounts, its producer
of every event type, and guest to read the results."""

from __future__ import annotations

from pathlib import Path

from bench.drill.run import Target
from messages.events import CATALOGUE
from tests.support import broker
from tests.support.platform import PROVISIONER, SuitePlatform


def suite_target(
    platform: SuitePlatform,
    work_dir: Path,
    settings_env: dict[str, str] | None = None,
    oracle_env: dict[str, str] | None = None,
) -> Target:
    """Where a drill runs in the suite; ``settings_env`` replaces the platform's settings
    (a fleet of several DCs), ``oracle_env`` names the DC the report reads."""
    worker = {**platform.role_env("worker"), "PROVISIONER_PRODUCER_POLICY": platform.suite_policy}
    return Target(
        settings_env=settings_env or platform.settings_env,
        accounts={
            "worker": worker,
            "suite": platform.role_env("suite"),
            "results": {"PROVISIONER_AMQP_URL": broker.AMQP_URL},
        },
        producer_of=dict.fromkeys(CATALOGUE, "suite"),
        script_env=platform.script_env,
        administrator_password=platform.administrator_password,
        work_dir=work_dir,
        provisioner=PROVISIONER,
        oracle_env=oracle_env,
    )
