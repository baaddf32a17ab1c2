"""Idempotency records: one directory object per applied intent (the directory is the
system of record, and the workers stay stateless).

Container ``CN=Idempotency,CN=Provisioner,CN=System,<base>`` (created and locked by the
bootstrap: SYSTEM, Domain Admins, Enterprise Admins and the provisioner only).  A
record is an ``msDS-App-Configuration`` object named by a hash of the idempotency key:

- ``keywords``: ``entity:<entity>``, ``type:<event type>`` (``keywords`` is indexed);
- ``msDS-Settings``: ``payload=<hash>``, ``message_id=<id>``, ``key=<idempotency key>``
  and ``producer=<broker user>`` (who asked: records written before producers were
  recorded have neither of the last two);
- ``msDS-DateTime`` and ``msDS-Integer``: the event's ``occurred_at`` (seconds, then
  microseconds: ``msDS-Integer`` is 32-bit);
- ``msDS-ByteArray``: the result's details (msgpack), so a redelivery is answered with
  the same details;
- ``whenCreated``: when it was applied, for retention.

A record is written only after the effect: workers racing on one key converge on the
same objects (the steps adopt what the job's tag marks), and the loser of the record's
add reads the winner's.  One search answers both questions asked before a job runs:
is this key applied, and has a newer event for the same entity been applied?
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import msgpack

from messages.envelope import Envelope
from messages.events import to_wire
from messages.passwords import replace_passwords
from workers.directory import key_values
from workers.directory.escaping import filter_value
from workers.directory.port import Directory, DirectoryRefused, Entry, Scope
from workers.provisioning import security
from workers.provisioning.names import rdn

CONTAINER_PARENT_CN = "Provisioner"
CONTAINER_CN = "Idempotency"
RECORD_CLASS = "msDS-App-Configuration"
# Every object the fleet adds in its containers: readable by the fleet and the admins only.
RECORD_DESCRIPTOR = security.encode(security.inherits_only())
_ATTRIBUTES = [
    "cn",
    "keywords",
    key_values.ATTRIBUTE,
    "msDS-DateTime",
    "msDS-Integer",
    "msDS-ByteArray",
    "whenCreated",
]
_TIME = "%Y%m%d%H%M%S.0Z"
SEALED = "<sealed>"


def parent_dn(base_dn: str) -> str:
    return f"CN={CONTAINER_PARENT_CN},CN=System,{base_dn}"


def container_dn(base_dn: str) -> str:
    return f"CN={CONTAINER_CN},{parent_dn(base_dn)}"


def key_hash(idempotency_key: str) -> str:
    return hashlib.sha256(idempotency_key.encode()).hexdigest()[:48]


def _without_secrets(value: Any) -> Any:
    """Sealed passwords are random each time they are sealed: they count as present only."""
    return replace_passwords(value, lambda _path, _password: SEALED)


def payload_hash(envelope: Envelope) -> str:
    """The canonical hash of ``type`` and ``data``: what makes two messages the same intent."""
    canonical = msgpack.packb(
        [envelope.type, _canonical(_without_secrets(to_wire(envelope.data)))], use_bin_type=True
    )
    return hashlib.sha256(canonical).hexdigest()


def _canonical(value: Any) -> Any:
    if isinstance(value, dict):
        return [[k, _canonical(value[k])] for k in sorted(value)]
    if isinstance(value, list):
        return [_canonical(v) for v in value]
    return value


def entity_of(envelope: Envelope) -> str:
    """What an event is about: ``tenant:<id>`` or ``user:<tenant>/<username>``."""
    username = getattr(envelope.data, "username", None)
    if username is None:
        return f"tenant:{envelope.tenant}"
    return f"user:{envelope.tenant}/{str(username).lower()}"


@dataclass(frozen=True)
class Record:
    key_hash: str
    payload_hash: str
    message_id: str
    event_type: str
    details: dict[str, Any]
    applied_at: str
    producer: str = ""
    idempotency_key: str = ""
    occurred_at: datetime | None = None


@dataclass(frozen=True)
class Lookup:
    record: Record | None  # this key, applied already
    newer: bool  # a later event for the same entity was applied already


def _split(moment: datetime) -> tuple[str, int]:
    moment = moment.astimezone(UTC)
    return moment.strftime(_TIME), moment.microsecond


class Ledger:
    def __init__(self, directory: Directory, base_dn: str) -> None:
        self._directory = directory
        self._container = container_dn(base_dn)

    def lookup(self, envelope: Envelope) -> Lookup:
        own = key_hash(envelope.idempotency_key)
        seconds, micros = _split(envelope.occurred_at)
        entity = filter_value(f"entity:{entity_of(envelope)}")
        newer = (
            f"(&(keywords={entity})(|(msDS-DateTime>={_next_second(envelope.occurred_at)})"
            f"(&(msDS-DateTime={seconds})(msDS-Integer>={micros + 1}))))"
        )
        found = self._directory.search(
            self._container, f"(|(cn={own}){newer})", Scope.ONE_LEVEL, _ATTRIBUTES
        )
        record = next((_record(e) for e in found if str(e.first("cn")) == own), None)
        return Lookup(record=record, newer=any(str(e.first("cn")) != own for e in found))

    def record(
        self,
        envelope: Envelope,
        details: dict[str, Any],
        payload: str | None = None,
        producer: str = "",
    ) -> Record:
        """Write the record of an applied intent; if another worker wrote it first, theirs.

        ``payload`` is the envelope's :func:`payload_hash`, when the caller has it already;
        ``producer`` the broker user who asked for it.
        """
        payload = payload or payload_hash(envelope)
        own = key_hash(envelope.idempotency_key)
        seconds, micros = _split(envelope.occurred_at)
        dn = f"{rdn('CN', own)},{self._container}"
        try:
            self._directory.add(
                dn,
                [RECORD_CLASS],
                {
                    "keywords": [f"entity:{entity_of(envelope)}", f"type:{envelope.type}"],
                    key_values.ATTRIBUTE: key_values.items(
                        {
                            "payload": payload,
                            "message_id": envelope.id,
                            "key": envelope.idempotency_key,
                            **({"producer": producer} if producer else {}),
                        }
                    ),
                    "msDS-DateTime": seconds,
                    "msDS-Integer": micros,
                    "msDS-ByteArray": msgpack.packb(details, use_bin_type=True),
                    "nTSecurityDescriptor": RECORD_DESCRIPTOR,
                },
            )
        except DirectoryRefused as exc:
            if exc.result != "entryAlreadyExists":
                raise
            existing = self._directory.read(dn, _ATTRIBUTES)
            if existing is not None:
                return _record(existing)
            raise
        return Record(
            own,
            payload,
            envelope.id,
            envelope.type,
            details,
            "",
            producer,
            envelope.idempotency_key,
            envelope.occurred_at,
        )

    def history(self, tenant: str, username: str | None = None) -> list[Record]:
        """The intents applied to a tenant (and to its users), or to one of its users,
        oldest first."""
        user = filter_value(f"entity:user:{tenant}/")
        if username is not None:
            query = f"(keywords={user}{filter_value(username.lower())})"
        else:
            own = filter_value(f"entity:tenant:{tenant}")
            query = f"(|(keywords={own})(keywords={user}*))"
        found = self._directory.search(self._container, query, Scope.ONE_LEVEL, _ATTRIBUTES)
        records = [_record(e) for e in found]
        return sorted(records, key=lambda r: r.occurred_at or datetime.min.replace(tzinfo=UTC))

    def purge(self, older_than: datetime) -> int:
        """Delete the records applied before ``older_than``; return how many."""
        stamp = older_than.astimezone(UTC).strftime(_TIME)
        old = self._directory.search(
            self._container,
            f"(&(objectClass={RECORD_CLASS})(whenCreated<={stamp}))",
            Scope.ONE_LEVEL,
            ["cn"],
        )
        for entry in old:
            self._directory.delete(entry.dn)
        return len(old)


def _next_second(moment: datetime) -> str:
    return (moment.astimezone(UTC).replace(microsecond=0) + timedelta(seconds=1)).strftime(_TIME)


def _record(entry: Entry) -> Record:
    settings = key_values.single(entry.values(key_values.ATTRIBUTE))
    types = [str(k)[5:] for k in entry.values("keywords") if str(k).startswith("type:")]
    raw = entry.first("msDS-ByteArray")
    details = msgpack.unpackb(raw, raw=False) if raw else {}
    return Record(
        key_hash=str(entry.first("cn")),
        payload_hash=settings.get("payload", ""),
        message_id=settings.get("message_id", ""),
        event_type=types[0] if types else "",
        details=details,
        applied_at=str(entry.first("whenCreated") or ""),
        producer=settings.get("producer", ""),
        idempotency_key=settings.get("key", ""),
        occurred_at=_occurred(entry),
    )


def _occurred(entry: Entry) -> datetime | None:
    seconds, micros = entry.first("msDS-DateTime"), entry.first("msDS-Integer")
    if seconds is None:
        return None
    if isinstance(seconds, datetime):
        moment = seconds if seconds.tzinfo else seconds.replace(tzinfo=UTC)
    else:
        moment = datetime.strptime(str(seconds), _TIME).replace(tzinfo=UTC)
    return moment.replace(microsecond=int(micros or 0))
