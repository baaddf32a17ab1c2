"""The drill's events, in waves, and the poison messages injected among them.

A wave holds at most one event per entity (plus republished copies of the same intent),
and the next wave is published only once every message of the one before is answered:
events about one entity are ordered by the publisher, as the contract asks when several
workers consume one queue (a later event applied first makes the earlier one
``stale_event``).  Everything is drawn from a seeded random generator.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import msgpack

from messages.fields import format_timestamp

PASSWORD = "Drill-Passw0rd-1!"  # noqa: S105 - the drill's throwaway accounts
RESET_PASSWORD = "Drill-Reset-Passw0rd-2!"  # noqa: S105


@dataclass(frozen=True)
class Shape:
    """How many of each event.  The default is the full drill: 2,000 events."""

    tenants: int = 20
    users_per_tenant: int = 48
    duplicates: int = 40  # republished user.created: same key and data, a new message id
    updated: int = 410
    disabled: int = 150
    resets: int = 100
    enabled: int = 100  # of the disabled
    deleted: int = 200
    renamed: int = 18  # tenant.updated
    tenants_deleted: int = 2
    poison: int = 20

    @property
    def events(self) -> int:
        return (
            self.tenants * (1 + self.users_per_tenant)
            + self.duplicates
            + self.updated
            + self.disabled
            + self.resets
            + self.enabled
            + self.deleted
            + self.renamed
            + self.tenants_deleted
        )


SMALL = Shape(
    tenants=4,
    users_per_tenant=40,
    duplicates=8,
    updated=40,
    disabled=20,
    resets=10,
    enabled=10,
    deleted=20,
    renamed=3,
    tenants_deleted=1,
    poison=8,
)


@dataclass(frozen=True)
class Poison:
    """A message that must end in the dead-letter queue with ``code``."""

    message_id: str
    routing_key: str
    body: bytes
    code: str


@dataclass
class Wave:
    name: str
    events: list[dict[str, Any]] = field(default_factory=list)  # `provisioner publish` lines
    poison: list[Poison] = field(default_factory=list)

    @property
    def message_ids(self) -> list[str]:
        return [e["id"] for e in self.events] + [p.message_id for p in self.poison]


@dataclass
class Scenario:
    run: str
    shape: Shape
    tenants: list[str]
    waves: list[Wave]

    @property
    def poison(self) -> list[Poison]:
        return [p for wave in self.waves for p in wave.poison]

    @property
    def events(self) -> list[dict[str, Any]]:
        return [e for wave in self.waves for e in wave.events]


class _Builder:
    def __init__(self, run: str, shape: Shape, seed: int) -> None:
        self.run, self.shape = run, shape
        self.random = random.Random(seed)  # noqa: S311 - a repeatable drill
        self.started = datetime.now(UTC).replace(microsecond=0)
        self.count = 0
        self.tenants = [f"dr{i:02d}-{run}" for i in range(shape.tenants)]

    def event(self, wave: int, kind: str, data: dict[str, Any]) -> dict[str, Any]:
        self.count += 1
        message_id = f"drill-{self.run}-{self.count:05d}"
        return {
            "type": kind,
            "id": message_id,
            "idempotency_key": message_id,
            # A later wave's events are later: the records order events per entity.
            "occurred_at": format_timestamp(self.started + timedelta(seconds=wave)),
            "data": data,
        }

    def build(self) -> Scenario:
        s = self.shape
        users = [(t, f"u{n:03d}") for t in self.tenants for n in range(s.users_per_tenant)]
        chosen = self.random.sample(users, s.updated + s.disabled + s.resets)
        updated, disabled = chosen[: s.updated], chosen[s.updated : s.updated + s.disabled]
        waves = [
            self._tenants(),
            self._people(users),
            self._changes(updated, disabled, chosen[s.updated + s.disabled :]),
            self._endings(users, disabled),
        ]
        poison = self.poison()
        waves[1].poison = poison[: len(poison) // 2]
        waves[2].poison = poison[len(poison) // 2 :]
        for wave in waves:
            self.random.shuffle(wave.events)
        return Scenario(self.run, s, self.tenants, waves)

    def _tenants(self) -> Wave:
        admin = {"username": "admin", "given_name": "Ada", "surname": "Admin"}
        return Wave(
            "1 tenant.created",
            [
                self.event(
                    1,
                    "tenant.created",
                    {
                        "tenant": t,
                        "name": f"Drill {t}",
                        "domains": [f"{t}.example"],
                        "admin": {**admin, "password": PASSWORD},
                    },
                )
                for t in self.tenants
            ],
        )

    def _people(self, users: list[tuple[str, str]]) -> Wave:
        wave = Wave("2 user.created")
        for i, (t, u) in enumerate(users):
            data: dict[str, Any] = {
                "tenant": t,
                "username": u,
                "given_name": f"Given{i}",
                "surname": f"Sur{i}",
                "password": PASSWORD,
            }
            if i % 3 == 0:
                data["display_name"] = f"Display {i}"
            if i % 25 == 0:
                data["role"] = "admin"
            wave.events.append(self.event(2, "user.created", data))
        for original in self.random.sample(wave.events, self.shape.duplicates):
            self.count += 1  # the same intent published again: a new message id
            wave.events.append({**original, "id": f"drill-{self.run}-{self.count:05d}"})
        return wave

    def _changes(
        self,
        updated: list[tuple[str, str]],
        disabled: list[tuple[str, str]],
        reset: list[tuple[str, str]],
    ) -> Wave:
        wave = Wave("3 user.updated / disabled / password_reset")
        for i, (t, u) in enumerate(updated):
            data: dict[str, Any] = {"tenant": t, "username": u}
            if i % 2 == 0:
                data["given_name"] = f"Renamed{i}"
            if i % 3 == 0:
                data["surname"] = f"Resur{i}"
            if i % 4 == 0 or len(data) == 2:
                data["display_name"] = f"Shown {i}"
            if i % 10 == 0:
                data["role"] = "admin" if i % 20 == 0 else "user"
            wave.events.append(self.event(3, "user.updated", data))
        wave.events += [
            self.event(3, "user.disabled", {"tenant": t, "username": u}) for t, u in disabled
        ]
        wave.events += [
            self.event(
                3, "user.password_reset", {"tenant": t, "username": u, "password": RESET_PASSWORD}
            )
            for t, u in reset
        ]
        return wave

    def _endings(self, users: list[tuple[str, str]], disabled: list[tuple[str, str]]) -> Wave:
        s, pick = self.shape, self.random.sample
        doomed = self.tenants[len(self.tenants) - s.tenants_deleted :]
        enabled = pick([p for p in disabled if p[0] not in doomed], s.enabled)
        rest = [p for p in users if p[0] not in doomed and p not in enabled]
        return Wave(
            "4 user.enabled / deleted, tenant.updated / deleted",
            [self.event(4, "user.enabled", {"tenant": t, "username": u}) for t, u in enabled]
            + [
                self.event(4, "user.deleted", {"tenant": t, "username": u})
                for t, u in pick(rest, s.deleted)
            ]
            + [
                self.event(4, "tenant.updated", {"tenant": t, "name": f"Renamed {t}"})
                for t in pick([t for t in self.tenants if t not in doomed], s.renamed)
            ]
            + [self.event(4, "tenant.deleted", {"tenant": t}) for t in doomed],
        )

    def poison(self) -> list[Poison]:
        """``shape.poison`` messages, cycling through every kind of bad input."""
        tenant = self.tenants[0]
        stamp = format_timestamp(self.started)

        def envelope(kind: str, data: dict[str, Any], **extra: Any) -> bytes:
            body = {"v": 1, "id": "", "type": kind, "idempotency_key": "", "occurred_at": stamp}
            packed: bytes = msgpack.packb({**body, **extra, "data": data})
            return packed

        user = {"tenant": tenant, "username": "u000"}
        kinds: list[tuple[str, str, Any]] = [
            ("malformed_msgpack", "user.created", lambda: b"\xc1\xc1 not msgpack"),
            ("not_a_map", "user.created", lambda: msgpack.packb([1, 2, 3])),
            # Under a routing key its producer may use: the broker refuses any other.
            ("unknown_type", "user.created", lambda: envelope("user.frobnicated", user)),
            ("unknown_field", "user.disabled", lambda: envelope("user.disabled", {**user, "x": 1})),
            (
                "unsafe_identifier",
                "user.disabled",
                lambda: envelope("user.disabled", {"tenant": "Bad*Tenant)", "username": "u"}),
            ),
            (
                "missing_field",
                "user.disabled",
                lambda: envelope("user.disabled", {"tenant": tenant}),
            ),
            ("body_too_large", "user.disabled", lambda: b"\x00" * 70_000),
            (
                "invalid_timestamp",
                "user.disabled",
                lambda: envelope("user.disabled", user, occurred_at="yesterday"),
            ),
            (
                "control_character",
                "user.updated",
                lambda: envelope("user.updated", {**user, "given_name": "a\x00b"}),
            ),
            # Valid messages the directory cannot honour: a user that was never created.
            (
                "user_not_found",
                "user.disabled",
                lambda: envelope("user.disabled", {"tenant": tenant, "username": "nobody"}),
            ),
        ]
        out = []
        for n in range(self.shape.poison):
            code, routing_key, make = kinds[n % len(kinds)]
            message_id = f"drill-{self.run}-poison-{n:02d}"
            body = make()
            if code not in {"malformed_msgpack", "not_a_map", "body_too_large"}:
                wire = msgpack.unpackb(body)
                wire["id"] = wire["idempotency_key"] = message_id
                body = msgpack.packb(wire)
            out.append(Poison(message_id, routing_key, body, code))
        return out


def build(run: str, shape: Shape, seed: int = 7) -> Scenario:
    return _Builder(run, shape, seed).build()
