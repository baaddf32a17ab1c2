"""The drill itself: a fleet, the waves of events, the faults while they are in flight,
then the comparison and the report.

Faults, each landing while a wave has messages outstanding (the report shows how many):

- a random worker process SIGKILLed every ``kill_every`` seconds (one that has lived a
  few seconds, so the supervisor restarts it at once), and one while the tenant.created
  wave is in flight, whatever its age; the supervisor's new PID is recorded;
- RabbitMQ stopped and started once (``rabbitmqctl stop_app`` / ``start_app``), once
  ``at_fraction`` of the ``broker_restart_wave`` (user.created) is answered;
- Samba stopped for ``samba_down`` seconds, once ``at_fraction`` of the
  ``samba_stop_wave`` (the updates) is answered.

Recovery is timed from the end of each fault to the first message answered for good
after it (and, for a kill, to the replacement's start).
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pika
import pika.exceptions

from bench.common import REPO, amqp_parameters, restart_broker
from bench.drill import model, observe
from bench.drill.observe import Comparison
from bench.drill.scenario import Poison, Scenario, Wave
from bench.fleet import Fleet
from messages.amqp import user_of
from messages.publisher import EVENTS_EXCHANGE
from messages.results import RESULTS_EXCHANGE, Outcome, decode_result
from workers.broker import topology

PLATFORM_SCRIPT = REPO / "deploy" / "local" / "platform"
FINAL = {Outcome.SUCCEEDED, Outcome.DUPLICATE, Outcome.DEAD_LETTERED}
# Short retries, with a budget (1 + 2 + 4 x 10 s) well past the outage injected.
FLEET_SETTINGS = {
    "PROVISIONER_RETRY_DELAYS": "1,2,4",
    "PROVISIONER_RETRY_ATTEMPTS": "12",
    "PROVISIONER_LOG_FORMAT": "json",
    "PROVISIONER_METRICS_PORT": "0",
}
MIN_AGE_TO_KILL = 6.0  # the supervisor backs off restarts of children that die young


@dataclass(frozen=True)
class Target:
    """Where the drill runs: a platform's settings, and how to stop and start its DC."""

    settings_env: dict[str, str]  # PROVISIONER_* from the platform's env file (the operator)
    # role -> what its broker account adds: "worker", "results", and the producers
    accounts: Mapping[str, dict[str, str]]
    producer_of: Mapping[str, str]  # event type -> the role that publishes it

    def broker(self, account: Mapping[str, str]) -> pika.URLParameters:
        """How an account (its env: PROVISIONER_AMQP_URL) reaches the platform's broker."""
        return amqp_parameters(
            account["PROVISIONER_AMQP_URL"], self.settings_env.get("PROVISIONER_AMQP_CA_FILE", "")
        )

    script_env: dict[str, str]  # the environment for deploy/local/platform samba-stop|start
    administrator_password: str
    work_dir: Path  # wave files, the fleet's log
    provisioner: Path = REPO / ".venv" / "bin" / "provisioner"
    # The settings the oracle reads one DC with, when the fleet's name several.
    oracle_env: dict[str, str] | None = None


@dataclass(frozen=True)
class Faults:
    processes: int = 4
    kill_every: float = 4.0
    broker_restart_wave: int = 2  # during user.created
    samba_stop_wave: int = 3  # during the updates
    at_fraction: float = 0.3  # once this much of that wave is answered
    samba_down: float = 15.0
    deadline: float = 1800.0
    kills: bool = True
    # How the platform stops and starts the DC (a fleet of two DCs: one of them).
    dc_stop: tuple[str, ...] = ("samba-stop",)
    dc_start: tuple[str, ...] = ("samba-start",)


@dataclass
class Fault:
    kind: str
    wave: str
    progress: int  # messages answered for good when it struck
    outstanding: int  # messages of the wave not yet answered then
    began: float
    ended: float
    detail: str = ""
    next_answer: float | None = None  # when the first message was answered after it
    replaced: float | None = None  # kills: when the supervisor's new child started

    def recovery(self) -> float | None:
        return None if self.next_answer is None else self.next_answer - self.ended


@dataclass
class Report:
    scenario: Scenario
    seconds: float
    outcomes: Counter[str]
    retries: int
    faults: list[Fault]
    comparison: Comparison
    dead_letters: dict[str, str]  # the run's messages in the DLQ: id -> error code
    redelivered: dict[str, str] = field(default_factory=dict)  # id -> type, handed out again
    answers: dict[str, str] = field(default_factory=dict)  # id -> final outcome
    republished: dict[str, list[str]] = field(default_factory=dict)  # key -> outcomes

    @property
    def poison_expected(self) -> dict[str, str]:
        return {p.message_id: p.code for p in self.scenario.poison}

    @property
    def dlq_matches(self) -> bool:
        return self.dead_letters == self.poison_expected

    @property
    def republished_once(self) -> bool:
        return all(sorted(o) == ["duplicate", "succeeded"] for o in self.republished.values())


class Results:
    """The result events of the run, tallied by a thread as they come (so that answers are
    timed even while the drill is busy with a fault), from a queue of the run's own; each
    is acked once tallied, so a broker restart loses none."""

    def __init__(self, broker: pika.ConnectionParameters, run: str) -> None:
        self.broker, self.queue = broker, f"provisioning.results.drill-{run}"
        self._final: dict[str, Outcome] = {}
        self._answered_at: list[float] = []  # monotonic times of final answers, in order
        self.retries = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        connection = pika.BlockingConnection(broker)
        channel = connection.channel()
        channel.queue_declare(self.queue, durable=True)
        channel.queue_bind(self.queue, RESULTS_EXCHANGE, routing_key="#")
        connection.close()
        self._thread = threading.Thread(target=self._loop, name="drill-results", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                connection = pika.BlockingConnection(self.broker)
            except (pika.exceptions.AMQPError, OSError):
                self._stop.wait(0.2)  # the broker is away: try again
                continue
            try:
                self._drain(connection.channel())
            except (pika.exceptions.AMQPError, OSError):
                continue
            finally:
                with contextlib.suppress(pika.exceptions.AMQPError, OSError):
                    connection.close()

    def _drain(self, channel: pika.adapters.blocking_connection.BlockingChannel) -> None:
        while not self._stop.is_set():
            method, _, body = channel.basic_get(self.queue, auto_ack=False)
            if method is None:
                self._stop.wait(0.01)
                continue
            result = decode_result(body)
            with self._lock:
                if result.outcome is Outcome.RETRY_SCHEDULED:
                    self.retries += 1
                elif result.in_reply_to and result.outcome in FINAL:
                    if result.in_reply_to not in self._final:
                        self._answered_at.append(time.monotonic())
                    self._final[result.in_reply_to] = result.outcome
            channel.basic_ack(method.delivery_tag)

    def final(self) -> dict[str, Outcome]:
        with self._lock:
            return dict(self._final)

    def first_after(self, moment: float) -> float | None:
        with self._lock:
            return next((t for t in self._answered_at if t > moment), None)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def delete(self) -> None:
        self.close()
        connection = pika.BlockingConnection(self.broker)
        connection.channel().queue_delete(self.queue)
        connection.close()


def start_fleet(target: Target, processes: int) -> Fleet:
    """``provisioner worker --processes N`` with the drill's settings, once every worker has
    started; the delay queues of the drill's retry delays are applied first (the operator's
    part)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROVISIONER_")}
    _run(
        [str(target.provisioner), "topology", "apply"],
        {**env, **target.settings_env, **FLEET_SETTINGS},
        "applying the topology",
    )
    fleet = Fleet.spawn(
        target.provisioner,
        ["worker", "--processes", str(processes)],
        {**env, **target.settings_env, **target.accounts["worker"], **FLEET_SETTINGS},
        target.work_dir / "fleet.log",
    )
    fleet.wait_started(processes, timeout=60)
    return fleet


class Drill:
    def __init__(self, target: Target, scenario: Scenario, faults: Faults) -> None:
        self.target, self.scenario, self.faults = target, scenario, faults
        self.broker = target.broker(target.settings_env)  # the operator's: the DLQ
        self.random = random.Random(11)  # noqa: S311 - a repeatable drill
        self.log: list[Fault] = []
        self.results = Results(target.broker(target.accounts["results"]), scenario.run)
        self.began = 0.0
        self.dc_stopped_at: float | None = None  # the wall clock's time: the fleet logs it

    # -- faults

    def _strike(self, wave: Wave, fleet: Fleet) -> None:
        final = self.results.final()
        outstanding = sum(1 for m in wave.message_ids if m not in final)
        if not outstanding or not final:
            return  # a fault must land while work is in flight: some answered, some not
        due = 1 - outstanding / len(wave.message_ids) >= self.faults.at_fraction
        began = time.monotonic()
        fault: Fault | None = None
        if due and wave is self._wave(self.faults.broker_restart_wave, "broker restart"):
            restart_broker()
            fault = Fault("broker restart", wave.name, len(final), outstanding, began, 0.0)
        elif due and wave is self._wave(self.faults.samba_stop_wave, "Samba stopped"):
            self._stop_samba()
            fault = Fault("Samba stopped", wave.name, len(final), outstanding, began, 0.0)
            fault.detail = f"{self.faults.samba_down:.0f} s"
        elif self.faults.kills and (self._kill_due() or (due and self._first_kill_in(wave))):
            victims = [p for p in fleet.children() if began - fleet.started[p] >= MIN_AGE_TO_KILL]
            if self._first_kill_in(wave):  # tenant.created: short, and the riskiest to cut
                victims = fleet.children()
            if victims:
                pid = self.random.choice(victims)
                os.kill(pid, signal.SIGKILL)
                fault = Fault("SIGKILL", wave.name, len(final), outstanding, began, 0.0)
                fault.detail = f"pid {pid}"
        if fault is not None:
            fault.ended = time.monotonic()
            self.log.append(fault)

    def _first_kill_in(self, wave: Wave) -> bool:
        """Whether ``wave`` is the first (tenant.created) and no worker was killed in it yet."""
        first = self.scenario.waves[0]
        return wave is first and not any(
            f.kind == "SIGKILL" and f.wave == first.name for f in self.log
        )

    def _answered(self, wave: Wave) -> bool:
        final = self.results.final()
        return all(m in final for m in wave.message_ids)

    def _wave(self, number: int, fault: str) -> Wave | None:
        """The wave a one-off fault is for (0: none), unless it has struck already."""
        if number < 1 or self._struck(fault):
            return None
        return self.scenario.waves[number - 1]

    def _struck(self, kind: str) -> bool:
        return any(f.kind == kind for f in self.log)

    def _kill_due(self) -> bool:
        kills = [f for f in self.log if f.kind == "SIGKILL"]
        last = kills[-1].began if kills else self.began
        return time.monotonic() - last >= self.faults.kill_every

    def _stop_samba(self) -> None:
        script = self.target.script_env
        _run([str(PLATFORM_SCRIPT), *self.faults.dc_stop], script, "stopping Samba")
        self.dc_stopped_at = time.time()
        try:
            time.sleep(self.faults.samba_down)
        finally:
            _run([str(PLATFORM_SCRIPT), *self.faults.dc_start], script, "starting Samba")

    def _recoveries(self, fleet: Fleet) -> None:
        for fault in self.log:
            fault.next_answer = self.results.first_after(fault.ended)
            if fault.kind == "SIGKILL":
                later = sorted((t, p) for p, t in fleet.started.items() if t > fault.ended)
                if later:
                    fault.replaced = later[0][0]
                    fault.detail += f" -> new pid {later[0][1]}"

    # -- the run

    def _publish(self, wave: Wave) -> None:
        """The wave's events, each through the account of the producer of its type; then
        the poison, as the producer of its routing key."""
        by_role: dict[str, list[dict[str, Any]]] = {}
        for event in wave.events:
            by_role.setdefault(self.target.producer_of[str(event["type"])], []).append(event)
        env = {k: v for k, v in os.environ.items() if not k.startswith("PROVISIONER_")}
        for role, events in by_role.items():
            path = self.target.work_dir / f"wave-{wave.name.split()[0]}-{role}.jsonl"
            path.write_text("".join(json.dumps(e) + "\n" for e in events), encoding="utf-8")
            _run(
                [str(self.target.provisioner), "publish", "--file", str(path)],
                {**env, **self.target.settings_env, **self.target.accounts[role]},
                f"publishing {wave.name} as {role}",
            )
        for p in wave.poison:
            account = self.target.accounts[self.target.producer_of[p.routing_key]]
            _publish_raw(self.target.broker(account), [p])

    def execute(self) -> Report:
        self.target.work_dir.mkdir(parents=True, exist_ok=True)
        self.began = time.monotonic()
        deadline = self.began + self.faults.deadline
        fleet = start_fleet(self.target, self.faults.processes)
        try:
            for wave in self.scenario.waves:
                self._publish(wave)
                while not self._answered(wave):
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"{wave.name} not answered in time")
                    fleet.children()  # note new children's start times as they come
                    self._strike(wave, fleet)
                    time.sleep(0.05)
            seconds = time.monotonic() - self.began
            self._recoveries(fleet)
        finally:
            code = fleet.stop()
        if code != 0:
            raise RuntimeError(f"the fleet exited {code}; see {fleet.log_path}")
        fleet.refresh()
        report = self._report(seconds)
        report.redelivered = fleet.redelivered
        return report

    def _report(self, seconds: float) -> Report:
        reader = observe.Reader(
            self.target.oracle_env or self.target.settings_env, self.target.administrator_password
        )
        try:
            comparison = observe.compare(reader, model.expected(self.scenario))
        finally:
            reader.close()
        final = self.results.final()
        outcomes = Counter(o.value for o in final.values())
        by_key: dict[str, list[str]] = {}
        for event in self.scenario.events:
            outcome = final.get(event["id"])
            by_key.setdefault(event["idempotency_key"], []).append(
                outcome.value if outcome else "none"
            )
        republished = {k: v for k, v in by_key.items() if len(v) > 1}
        return Report(
            scenario=self.scenario,
            seconds=seconds,
            outcomes=outcomes,
            retries=self.results.retries,
            faults=self.log,
            comparison=comparison,
            dead_letters=dead_letters(self.broker, f"drill-{self.scenario.run}-"),
            republished=republished,
            answers={m: o.value for m, o in final.items()},
        )

    def clean_up(self) -> None:
        """Take the run's messages out of the DLQ and drop its results queue."""
        dead_letters(self.broker, f"drill-{self.scenario.run}-", remove=True)
        self.results.delete()


def _run(argv: list[str], env: dict[str, str], what: str) -> None:
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{what} failed: {done.stderr}")


def _publish_raw(broker: pika.ConnectionParameters, poison: list[Poison]) -> None:
    connection = pika.BlockingConnection(broker)
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        for p in poison:
            channel.basic_publish(
                EVENTS_EXCHANGE,
                p.routing_key,
                p.body,
                pika.BasicProperties(
                    content_type="application/msgpack",
                    message_id=p.message_id,
                    user_id=user_of(broker),
                    delivery_mode=pika.DeliveryMode.Persistent,
                ),
                mandatory=True,
            )
    finally:
        connection.close()


def dead_letters(
    broker: pika.ConnectionParameters, prefix: str, *, remove: bool = False
) -> dict[str, str]:
    """The DLQ's messages whose id starts with ``prefix``: id -> ``x-error-code``.

    Read with ``basic.get``; the others go back when the channel closes (and these too,
    unless ``remove``).
    """
    found: dict[str, str] = {}
    connection = pika.BlockingConnection(broker)
    try:
        channel = connection.channel()
        while True:
            method, properties, _ = channel.basic_get(topology.DEAD_LETTER_QUEUE, auto_ack=False)
            if method is None:
                break
            message_id = str(properties.message_id or "")
            if message_id.startswith(prefix):
                found[message_id] = str((properties.headers or {}).get("x-error-code"))
                if remove:
                    channel.basic_ack(method.delivery_tag)
    finally:
        connection.close()
    return found


FAULT_HEADER = (
    "| fault | wave | answered then | wave outstanding | lasted "
    "| replaced after | next answer after |"
)


def _fault_row(f: Fault) -> str:
    replaced = f"{f.replaced - f.ended:.2f} s" if f.replaced is not None else "-"
    recovery = f.recovery()
    answered = "never" if recovery is None else f"{recovery:.2f} s"
    return (
        f"| {f'{f.kind} {f.detail}'.strip()} | {f.wave.split()[0]} | {f.progress} "
        f"| {f.outstanding} "
        f"| {f.ended - f.began:.1f} s | {replaced} | {answered} |"
    )


def _dlq_row(report: Report) -> str:
    verdict = "exactly equal, codes included" if report.dlq_matches else "DIFFERENT"
    return (
        f"| DLQ against the injected poison | {len(report.dead_letters)} dead letters, "
        f"{len(report.poison_expected)} poison injected: {verdict} |"
    )


def render(report: Report) -> str:
    """The drill's report, in markdown."""
    s, c = report.scenario, report.comparison
    kinds = Counter(e["type"] for e in s.events)
    outcomes = ", ".join(f"{n} {k}" for k, n in sorted(report.outcomes.items()))
    once = "yes" if report.republished_once else "NO"
    lines = [
        (
            f"## Fault drill `{s.run}`: {len(s.events)} events over {len(s.tenants)} tenants"
            f" + {len(s.poison)} poison, {report.seconds:.0f} s"
        ),
        "",
        "Events: " + ", ".join(f"{n} {k}" for k, n in sorted(kinds.items())) + ".",
        f"Outcomes: {outcomes}; {report.retries} retries scheduled on the way.",
        (
            f"Redelivered (in a killed worker's hands, or unacked when the broker went): "
            f"{len(report.redelivered)}: "
            + (
                ", ".join(
                    f"{n} {k}" for k, n in sorted(Counter(report.redelivered.values()).items())
                )
                or "none"
            )
            + "."
        ),
        "",
        FAULT_HEADER,
        "|---|---|---:|---:|---:|---:|---:|",
        *(_fault_row(f) for f in report.faults),
        "",
        "| check | result |",
        "|---|---|",
        (
            f"| compared | {c.objects_expected} objects expected, {c.objects_found} found; "
            f"{c.attributes_checked} attributes and ACL facts; {c.binds_checked} binds |"
        ),
        f"| lost objects | {c.objects('lost')} |",
        f"| duplicated or left-behind objects | {c.objects('unexpected')} |",
        f"| half-made objects (an attribute, membership or ACL wrong) | {c.objects('wrong')} |",
        _dlq_row(report),
        (
            f"| republished intents | {len(report.republished)}, each answered once "
            f"`succeeded` and once `duplicate`: {once} |"
        ),
    ]
    extra = sorted(report.dead_letters.keys() - report.poison_expected.keys())
    missing = sorted(report.poison_expected.keys() - report.dead_letters.keys())
    if extra or missing:
        lines.append(
            f"\nNot poison but dead-lettered: {extra[:5]}; poison not found: {missing[:5]}"
        )
    lines += [f"- {f.kind}: {f.dn}: {f.detail}" for f in c.findings[:20]]
    return "\n".join(lines)
