"""``python -m bench.drill [--small] [--keep]``: the fault drill on the local platform.

``deploy/local/platform drill`` runs it on a fresh platform of its own.  It needs no
other fleet consuming; it restarts the machine's RabbitMQ once and stops the platform's
Samba for 15 s.  The report is printed and written to ``bench/DRILL.md``
(``bench/out/drill.md`` for ``--small``); the drill's tenants are deleted afterwards
unless ``--keep``.
"""

from __future__ import annotations

import argparse
import os
import secrets
from pathlib import Path

import pika

from bench.common import REPO, account_env, env_file, platform_env
from bench.drill import scenario
from bench.drill.run import Drill, Faults, Target, render
from bench.writes import Bench
from workers.runtime.producers import ProducerPolicy
from workers.runtime.settings import Settings

PRODUCERS = ("order", "billing", "portal")


def local_target(work_dir: Path) -> Target:
    state = env_file().parent
    settings = platform_env()
    accounts = {role: account_env(role) for role in ("worker", "results", *PRODUCERS)}
    policy = ProducerPolicy.parse(settings["PROVISIONER_PRODUCER_POLICY"])
    producer_of = {
        event_type: role
        for role in PRODUCERS
        for event_type in policy.allowed.get(
            str(pika.URLParameters(accounts[role]["PROVISIONER_AMQP_URL"]).credentials.username),
            (),
        )
    }
    return Target(
        settings_env=settings,
        accounts=accounts,
        producer_of=producer_of,
        script_env={**os.environ, "PROVISIONER_STATE_DIR": str(state)},
        administrator_password=(state / "administrator.secret").read_text().strip(),
        work_dir=work_dir,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="the suite's smaller drill")
    parser.add_argument("--keep", action="store_true", help="keep the drill's tenants")
    args = parser.parse_args()
    run = secrets.token_hex(2)
    shape = scenario.SMALL if args.small else scenario.Shape()
    faults = Faults(samba_down=5.0, kill_every=3.0, processes=2) if args.small else Faults()
    target = local_target(REPO / ".state" / "bench" / f"drill-{run}")
    the_scenario = scenario.build(run, shape)
    drill = Drill(target, the_scenario, faults)
    try:
        report = drill.execute()
        text = render(report)
        print(text)
        out = REPO / "bench" / "out" / "drill.md" if args.small else REPO / "bench" / "DRILL.md"
        out.parent.mkdir(exist_ok=True)
        out.write_text(text + "\n", encoding="utf-8")
    finally:
        drill.clean_up()
        if not args.keep:
            bench = Bench(Settings.from_env(target.settings_env))
            for tenant in the_scenario.tenants:
                bench.delete_tenant(tenant)
            bench.directory.close()


if __name__ == "__main__":
    main()
