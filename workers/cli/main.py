"""``provisioner``: the one command line of the project.

provisioner settings                          every setting, its variable and value
provisioner topology apply | export           declare the broker topology, or print it
provisioner directory bootstrap --admin-bind-dn DN --admin-password-file F
                                              List Object Mode, OU=Tenants, its lock, and
                                              the fleet's delegated rights (as an admin)
provisioner directory check                   all of that in place (the worker's preflight)
provisioner directory tenants [--wait T]      the tenant OUs, read back over LDAPS
provisioner publish --file F | TYPE --data J  confirmed; plaintext passwords sealed here
provisioner plan TYPE --data J                the steps an event would run now (dry run)
provisioner worker [--processes N]            consume and provision until SIGTERM
provisioner dlq list|show|replay|discard|export|import   dead letters (workers/dlq_cli.py)
provisioner audit [--tenant T] [--fix]        drift of tenants from what they should be
                                              (platform drift: --fix with --admin-bind-dn)
provisioner records list --tenant T [--user U] who asked for each change applied to it
provisioner records purge                     idempotency records past their retention
provisioner keys generate                     a key pair (the results consumer's)
provisioner keys init | rotate | retire | list the fleet's key ring (rotation, no downtime)
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import signal
import sys
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

import structlog
from nacl.public import PublicKey

from messages import publisher, sealing
from messages.envelope import Envelope
from messages.errors import ContractError
from messages.json_input import envelope_from_json, read_lines
from messages.publisher import PublishError, PublishReport
from workers.broker import connection, topology
from workers.broker.connection import BrokerError
from workers.broker.consumer import BrokerRefused, Worker
from workers.cli import dlq as dlq_cli
from workers.delivery.idempotency import Ledger
from workers.directory.ldap_directory import LdapDirectory
from workers.directory.port import Scope
from workers.errors import FleetError
from workers.ops import audit, audit_metrics, bootstrap, dry_run
from workers.provisioning import names
from workers.provisioning.keys import KeyRing
from workers.provisioning.realm import read_realm
from workers.runtime import key_ring, logs
from workers.runtime.settings import Settings, SettingsError, flag_fields, value_type
from workers.runtime.supervisor import Supervisor, child_argv

EXIT_FAILURE = 1
EXIT_USAGE = 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="provisioner", description="Provision hosted tenants into Active Directory."
    )
    for f in flag_fields():
        parser.add_argument(
            "--" + f.name.replace("_", "-"),
            dest=f.name,
            type=value_type(type(f.default)),
            help=f.metadata["doc"],
            default=None,
        )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("settings", help="print every setting with its variable and value")

    topo = commands.add_parser("topology", help="broker topology")
    topo_actions = topo.add_subparsers(dest="action", required=True)
    topo_actions.add_parser("apply", help="declare it")
    export = topo_actions.add_parser("export", help="print it as a RabbitMQ definitions file")
    export.add_argument("--vhost", default="/provisioning")

    directory = commands.add_parser("directory", help="one-time directory setup and reads")
    actions = directory.add_subparsers(dest="action", required=True)
    setup = actions.add_parser(
        "bootstrap",
        help="enable List Object Mode, create OU=Tenants, delegate the fleet its rights",
    )
    _admin_options(setup)
    actions.add_parser("check", help="exit non-zero unless the directory is set up")
    tenants = actions.add_parser("tenants", help="list tenant OUs")
    tenants.add_argument(
        "--wait",
        nargs="*",
        default=[],
        metavar="TENANT",
        help="first wait until these tenants' OUs exist",
    )
    tenants.add_argument("--timeout", type=float, default=60.0)

    publish = commands.add_parser("publish", help="publish events (confirmed)")
    publish.add_argument("type", nargs="?", help="event type, with --data")
    publish.add_argument("--data", help="the event's data as a JSON object")
    publish.add_argument("--idempotency-key")
    publish.add_argument("--source")
    publish.add_argument(
        "--file",
        type=argparse.FileType("r", encoding="utf-8"),
        help="JSON Lines, one event per line ('-' for stdin)",
    )

    dry_run = commands.add_parser(
        "plan", help="print the steps an event would run against the directory now (no writes)"
    )
    dry_run.add_argument("type", help="event type")
    dry_run.add_argument("--data", required=True, help="the event's data as a JSON object")
    dry_run.add_argument("--idempotency-key", help="the job whose objects count as its own")

    dlq_cli.add_parser(commands)

    drift = commands.add_parser("audit", help="compare every tenant with what it should be")
    drift.add_argument("--tenant", help="only this tenant")
    drift.add_argument("--fix", action="store_true", help="converge what differs")
    drift.add_argument("--metrics-file", help="write the drift gauge here (Prometheus textfile)")
    _admin_options(drift)

    records = commands.add_parser("records", help="idempotency records: who asked for what")
    record_actions = records.add_subparsers(dest="action", required=True)
    listing = record_actions.add_parser(
        "list", help="the intents applied to a tenant or a user: when, what, who asked"
    )
    listing.add_argument("--tenant", required=True)
    listing.add_argument("--user", help="only this user of the tenant (its username)")
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    purge = record_actions.add_parser("purge", help="delete the records older than the retention")
    purge.add_argument(
        "--older-than-days",
        type=float,
        default=None,
        help="default: PROVISIONER_RECORDS_RETENTION_DAYS",
    )

    _keys_parser(commands)

    worker = commands.add_parser("worker", help="consume and provision until SIGTERM")
    worker.add_argument(
        "--processes", type=int, default=1, help="run N worker processes, restarting any that dies"
    )
    return parser


def _keys_parser(commands: Any) -> None:
    keys = commands.add_parser("keys", help="password-sealing keys")
    key_actions = keys.add_subparsers(dest="action", required=True)
    generate = key_actions.add_parser("generate", help="write a key pair unless both files exist")
    generate.add_argument("--public", required=True, type=Path)
    generate.add_argument("--private", required=True, type=Path)
    ring_help = {
        "init": "make the key ring, with a current key, unless it has one",
        "rotate": "a new current key; the old one stays accepted until retired",
        "retire": "stop accepting previous keys (all of them, or those named)",
        "list": "the keys: current, previous, retired",
    }
    for name, text in ring_help.items():
        action = key_actions.add_parser(name, help=text)
        action.add_argument("--dir", help="the key ring (default: PROVISIONER_FLEET_KEY_DIR)")
        if name == "init":
            action.add_argument(
                "--adopt", metavar="PRIVATE_KEY_FILE", help="make this key the first one"
            )
        if name == "retire":
            action.add_argument("fingerprints", nargs="*", metavar="FINGERPRINT")


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    overrides = {f.name: getattr(args, f.name) for f in flag_fields()}
    try:
        settings = Settings.from_env(os.environ, overrides)
    except SettingsError as exc:
        print(f"provisioner: {exc}", file=sys.stderr)
        return EXIT_USAGE
    logs.configure(settings.log_format, settings.log_level)
    handlers = {
        "settings": _settings,
        "topology": _topology,
        "directory": _directory,
        "publish": _publish,
        "worker": _worker,
        "keys": _keys,
        "plan": _plan,
        "records": _records,
        "dlq": dlq_cli.run,
        "audit": _audit,
    }
    try:
        return handlers[args.command](settings, args)
    except _Refused as exc:
        print(f"provisioner: {exc}", file=sys.stderr)
        return exc.exit_code
    except SettingsError as exc:
        print(f"provisioner: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (FleetError, PublishError) as exc:
        print(f"provisioner: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except BrokerError as exc:
        print(f"provisioner: broker error: {exc!r}", file=sys.stderr)
        return EXIT_FAILURE


def _settings(settings: Settings, _args: argparse.Namespace) -> int:
    for variable, value, doc in settings.describe():
        print(f"{variable}={value}\n    {doc}")
    return 0


def _topology(settings: Settings, args: argparse.Namespace) -> int:
    if args.action == "export":
        document = topology.definitions(args.vhost, settings.retry_policy)
        print(json.dumps(document, indent=2, sort_keys=True))
        return 0
    topology.apply(connection.parameters(settings), settings.retry_policy)
    print("topology applied")
    return 0


def _admin_options(parser: argparse.ArgumentParser) -> None:
    """An administrator's credential for this one command, never stored for the fleet."""
    parser.add_argument(
        "--admin-bind-dn",
        metavar="DN",
        help="bind as this administrator (a DN or UPN) for this command alone",
    )
    parser.add_argument(
        "--admin-password-file",
        type=argparse.FileType("r", encoding="utf-8"),
        metavar="FILE",
        help="the administrator's password, on the first line ('-' for standard input)",
    )


def _as_admin(settings: Settings, args: argparse.Namespace) -> Settings:
    """``settings`` bound as the administrator the command was given, if any.  The realm's
    provisioner stays the fleet's own account (``PROVISIONER_LDAP_BIND_DN``)."""
    if not args.admin_bind_dn:
        return settings
    if args.admin_password_file is None:
        raise SettingsError("--admin-bind-dn needs --admin-password-file")
    with args.admin_password_file as source:
        password = source.readline().rstrip("\r\n")
    return dataclasses.replace(
        settings, ldap_bind_dn=args.admin_bind_dn, ldap_bind_password=password
    )


def _directory(settings: Settings, args: argparse.Namespace) -> int:
    bind = _as_admin(settings, args) if args.action == "bootstrap" else settings
    with LdapDirectory.connect(bind) as directory:
        realm = read_realm(directory, settings.ldap_bind_dn)
        if args.action == "bootstrap":
            changes = bootstrap.bootstrap(directory, realm)
            for change in changes:
                print(f"changed: {change}")
            print("directory bootstrapped" + ("" if changes else " (nothing to change)"))
        elif args.action == "check":
            bootstrap.check(directory, realm)
            print("directory ready: List Object Mode on, OU=Tenants present")
        else:
            return _tenants(directory, args.wait, args.timeout)
    return 0


def _tenants(directory: LdapDirectory, wait_for: list[str], timeout: float) -> int:
    tenants_dn = names.tenants_dn(directory.base_dn)
    deadline = time.monotonic() + timeout
    while True:
        entries = directory.search(
            tenants_dn, "(objectClass=organizationalUnit)", Scope.ONE_LEVEL, ["ou", "description"]
        )
        present = {str(e.first("ou")) for e in entries}
        missing = sorted(set(wait_for) - present)
        if not missing:
            break
        if time.monotonic() > deadline:
            print(
                f"provisioner: tenants not provisioned after {timeout:.0f} s: {', '.join(missing)}",
                file=sys.stderr,
            )
            return EXIT_FAILURE
        time.sleep(0.5)
    for entry in sorted(entries, key=lambda e: e.dn):
        print(f"{entry.dn}\t{entry.first('description') or ''}")
    return 0


def _publish(settings: Settings, args: argparse.Namespace) -> int:
    if args.file is not None:
        if args.type or args.data:
            print("provisioner: give either --file or TYPE --data", file=sys.stderr)
            return EXIT_USAGE
        return _publish_lines(settings, args.file)
    if not args.type or args.data is None:
        print("provisioner: publish needs TYPE --data JSON, or --file", file=sys.stderr)
        return EXIT_USAGE
    envelope = _event_from_args(settings, args, ("idempotency_key", "source"))
    publisher.publish(connection.parameters(settings), envelope)
    print(f"confirmed {envelope.type} id={envelope.id}")
    return 0


def _publish_lines(settings: Settings, stream: IO[str]) -> int:
    """Publish a JSON Lines stream; invalid lines are reported and never sent."""
    invalid: list[tuple[int, str]] = []

    def valid_lines() -> Iterator[tuple[int, Envelope]]:
        for number, item in read_lines(stream, _public_key(settings)):
            if isinstance(item, ContractError):
                invalid.append((number, f"invalid: {item}"))
            else:
                yield number, item

    progress = _Progress(sys.stderr)
    report = publisher.publish_all(
        connection.parameters(settings), valid_lines(), on_progress=progress.show
    )
    progress.clear()
    failures = sorted(invalid + report.failed)
    for number, reason in failures:
        print(f"line {number}: {reason}", file=sys.stderr)
    print(f"sent {report.sent}, confirmed {len(report.confirmed)}, failed {len(failures)}")
    return EXIT_FAILURE if failures else 0


class _Refused(Exception):
    """A command's input that cannot be used: a message for the user, and the exit code."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def _event_from_args(
    settings: Settings, args: argparse.Namespace, keys: tuple[str, ...]
) -> Envelope:
    """The envelope of ``TYPE --data JSON`` and the options ``keys``, passwords sealed."""
    line: dict[str, Any] = {"type": args.type}
    try:
        line["data"] = json.loads(args.data)
    except json.JSONDecodeError as exc:
        raise _Refused(f"--data is not JSON: {exc}", EXIT_USAGE) from None
    line.update({key: getattr(args, key) for key in keys if getattr(args, key)})
    try:
        return envelope_from_json(line, public_key=_public_key(settings))
    except ContractError as exc:
        raise _Refused(f"invalid event: {exc}", EXIT_FAILURE) from None


def _plan(settings: Settings, args: argparse.Namespace) -> int:
    envelope = _event_from_args(settings, args, ("idempotency_key",))
    with LdapDirectory.connect(settings) as directory:
        realm = read_realm(directory, settings.ldap_bind_dn)
        for text in dry_run.describe(envelope, directory, realm, settings):
            print(text)
    return 0


def _audit(settings: Settings, args: argparse.Namespace) -> int:
    with LdapDirectory.connect(_as_admin(settings, args)) as directory:
        realm = read_realm(directory, settings.ldap_bind_dn)
        ctx = KeyRing.from_settings(settings).context(realm, "audit", settings.sam_digits)
        findings = audit.audit(directory, realm, ctx, args.tenant)
        for finding in findings:
            print(f"drift: {finding}")
        if findings and args.fix:
            for change in audit.fix(directory, realm, ctx, findings):
                print(f"fixed: {change}")
            findings = audit.audit(directory, realm, ctx, args.tenant)
            for finding in findings:
                print(f"still: {finding}")
    if args.metrics_file:
        audit_metrics.write(args.metrics_file, findings)
    print(f"{len(findings)} difference(s)" if findings else "no drift")
    return EXIT_FAILURE if findings else 0


def _records(settings: Settings, args: argparse.Namespace) -> int:
    if args.action == "list":
        return _records_list(settings, args.tenant, args.user, as_json=args.json)
    days = args.older_than_days
    if days is None:
        days = settings.records_retention_days
    cutoff = datetime.now(UTC) - timedelta(days=days)
    with LdapDirectory.connect(settings) as directory:
        purged = Ledger(directory, directory.base_dn).purge(cutoff)
    print(f"purged {purged} idempotency record(s) applied before {cutoff:%Y-%m-%d %H:%M:%S}Z")
    return 0


def _records_list(settings: Settings, tenant: str, user: str | None, *, as_json: bool) -> int:
    """One row per applied intent, oldest first: the answer to "which order made this?"."""
    with LdapDirectory.connect(settings) as directory:
        records = Ledger(directory, directory.base_dn).history(tenant, user)
    rows = [
        {
            "occurred_at": r.occurred_at.isoformat().replace("+00:00", "Z")
            if r.occurred_at
            else None,
            "type": r.event_type,
            "producer": r.producer or None,
            "idempotency_key": r.idempotency_key or None,
            "message_id": r.message_id,
            "outcome": "succeeded",
        }
        for r in records
    ]
    if as_json:
        for row in rows:
            print(json.dumps(row, ensure_ascii=False))
        return 0
    print("OCCURRED AT\tTYPE\tPRODUCER\tIDEMPOTENCY KEY\tMESSAGE ID\tOUTCOME")
    for row in rows:
        print("\t".join(str(row[k] or "-") for k in row))
    who = f"{tenant}/{user}" if user else tenant
    print(f"{len(rows)} intent(s) applied to {who}", file=sys.stderr)
    return 0


def _public_key(settings: Settings) -> PublicKey | None:
    path = settings.fleet_public_key_file
    return sealing.load_public_key(path) if path else None


def _keys(settings: Settings, args: argparse.Namespace) -> int:
    if args.action == "generate":
        if sealing.generate_key_pair(args.public, args.private):
            print(f"wrote {args.public} and {args.private} (mode 0600)")
        else:
            print("key pair exists; nothing written")
        return 0
    directory = args.dir or settings.fleet_key_dir
    if not directory:
        raise SettingsError("give --dir or set PROVISIONER_FLEET_KEY_DIR")
    if args.action == "init":
        made = key_ring.init(directory, args.adopt)
        print(f"key ring {directory}: " + (f"current key {made}" if made else "exists"))
    elif args.action == "rotate":
        new, old = key_ring.rotate(directory)
        print(f"current key {new}; {old or 'no key'} stays accepted until retired")
    elif args.action == "retire":
        retired = key_ring.retire(directory, args.fingerprints or None)
        for fp in retired:
            print(f"retired {fp}")
        print(f"{len(retired)} key(s) retired")
    else:
        for info in key_ring.KeyRing.load(directory).listing():
            print(f"{info.fingerprint}\t{info.state}\tsince {info.since:%Y-%m-%d %H:%M:%S}Z")
    return 0


class _Progress:
    """A one-line counter on a terminal; silent otherwise."""

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream
        self._tty = stream.isatty()
        self._last = 0.0

    def show(self, report: PublishReport[int]) -> None:
        now = time.monotonic()
        if self._tty and now - self._last > 0.1:
            self._last = now
            self._stream.write(f"\rconfirmed {len(report.confirmed)}, failed {len(report.failed)}")
            self._stream.flush()

    def clear(self) -> None:
        if self._tty:
            self._stream.write("\r\033[K")
            self._stream.flush()


def _worker(settings: Settings, args: argparse.Namespace) -> int:
    if args.processes > 1:
        supervisor = Supervisor(
            child_argv(sys.argv[1:]), args.processes, metrics_port=settings.metrics_port
        )
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: supervisor.request_stop())
        return supervisor.run()
    worker = Worker(settings, lambda: LdapDirectory.connect(settings))
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: worker.request_stop())
    log = structlog.get_logger("worker")
    try:
        worker.run()
    except (bootstrap.BootstrapError, BrokerRefused) as exc:
        log.exception("worker.preflight_failed", error=str(exc))
        raise
    return 0


if __name__ == "__main__":
    sys.exit(main())
