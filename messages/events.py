"""The v1 event catalogue: one frozen dataclass per event type.

Each event reads itself from a :class:`~messages.fields.FieldReader` (``parse``) and
writes itself back with :func:`to_wire`.  ``password`` fields hold a sealed box
(bytes) and never plaintext.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, ClassVar, Protocol, Self

from messages import fields
from messages.fields import FieldReader

MAX_DOMAINS = 50
MAX_SEALED_PASSWORD = 512
_name = fields.display_text(64)
_display_name = fields.display_text(256)


class Event(Protocol):
    TYPE: ClassVar[str]

    @property
    def tenant(self) -> str: ...

    @classmethod
    def parse(cls, reader: FieldReader) -> Self: ...


@dataclass(frozen=True)
class PasswordPolicy:
    min_length: int
    complexity: bool = True
    history: int | None = None
    max_age_days: int | None = None
    lockout_threshold: int | None = None

    @classmethod
    def parse(cls, reader: FieldReader) -> Self:
        policy = cls(
            min_length=reader.integer("min_length", 1, 255),
            complexity=bool(reader.optional_boolean("complexity") in (None, True)),
            history=reader.optional_integer("history", 0, 24),
            max_age_days=reader.optional_integer("max_age_days", 0, 999),
            lockout_threshold=reader.optional_integer("lockout_threshold", 0, 999),
        )
        reader.done()
        return policy


@dataclass(frozen=True)
class Plan:
    max_users: int
    password_policy: PasswordPolicy | None = None

    @classmethod
    def parse(cls, reader: FieldReader) -> Self:
        policy = reader.optional_nested("password_policy")
        plan = cls(
            max_users=reader.integer("max_users", 1, 1_000_000),
            password_policy=None if policy is None else PasswordPolicy.parse(policy),
        )
        reader.done()
        return plan


@dataclass(frozen=True)
class AdminAccount:
    username: str
    given_name: str
    surname: str
    display_name: str | None = None
    password: bytes | None = dataclasses.field(default=None, repr=False)

    @classmethod
    def parse(cls, reader: FieldReader) -> Self:
        admin = cls(
            username=reader.string("username", fields.username),
            given_name=reader.string("given_name", _name),
            surname=reader.string("surname", _name),
            display_name=reader.optional_string("display_name", _display_name),
            password=reader.optional_bytes("password", MAX_SEALED_PASSWORD),
        )
        reader.done()
        return admin


@dataclass(frozen=True)
class TenantCreated:
    TYPE: ClassVar[str] = "tenant.created"
    tenant: str
    name: str
    domains: tuple[str, ...]
    admin: AdminAccount
    plan: Plan | None = None

    @property
    def primary_domain(self) -> str:
        return self.domains[0]

    @classmethod
    def parse(cls, reader: FieldReader) -> Self:
        plan = reader.optional_nested("plan")
        event = cls(
            tenant=reader.string("tenant", fields.tenant_id),
            name=reader.string("name", _display_name),
            domains=reader.string_list("domains", fields.domain_name, MAX_DOMAINS),
            admin=AdminAccount.parse(reader.nested("admin")),
            plan=None if plan is None else Plan.parse(plan),
        )
        reader.done()
        return event


CATALOGUE: MappingProxyType[str, type[Event]] = MappingProxyType(
    {cls.TYPE: cls for cls in (TenantCreated,)}
)


def to_wire(value: object) -> Any:
    """The msgpack-ready form of an event or one of its parts; ``None`` fields are left out."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            f.name: to_wire(getattr(value, f.name))
            for f in dataclasses.fields(value)
            if getattr(value, f.name) is not None
        }
    if isinstance(value, tuple):
        return [to_wire(item) for item in value]
    return value
