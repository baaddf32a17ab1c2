"""The v1 event catalogue: one frozen dataclass per event type.

Each event reads itself from a :class:`~messages.fields.FieldReader` (``parse``) and
writes itself back with :func:`to_wire`.  ``password`` fields hold a sealed box
(bytes) and never plaintext.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType
from typing import Any, ClassVar, Protocol, Self

from messages import fields
from messages.errors import ContractError
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
            complexity=reader.optional_boolean("complexity") is not False,
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


@dataclass(frozen=True)
class TenantUpdated:
    """Given fields replace the tenant's; absent ones stay.  At least one is given."""

    TYPE: ClassVar[str] = "tenant.updated"
    tenant: str
    name: str | None = None
    domains: tuple[str, ...] | None = None
    plan: Plan | None = None

    @classmethod
    def parse(cls, reader: FieldReader) -> Self:
        plan = reader.optional_nested("plan")
        event = cls(
            tenant=reader.string("tenant", fields.tenant_id),
            name=reader.optional_string("name", _display_name),
            domains=reader.optional_string_list("domains", fields.domain_name, MAX_DOMAINS),
            plan=None if plan is None else Plan.parse(plan),
        )
        reader.done()
        _require_a_change(reader, event, ("name", "domains", "plan"))
        return event


@dataclass(frozen=True)
class _TenantEvent:
    """An event about a whole tenant that carries nothing but its id."""

    TYPE: ClassVar[str]
    tenant: str

    @classmethod
    def parse(cls, reader: FieldReader) -> Self:
        event = cls(tenant=reader.string("tenant", fields.tenant_id))
        reader.done()
        return event


@dataclass(frozen=True)
class TenantSuspended(_TenantEvent):
    TYPE: ClassVar[str] = "tenant.suspended"


@dataclass(frozen=True)
class TenantResumed(_TenantEvent):
    TYPE: ClassVar[str] = "tenant.resumed"


@dataclass(frozen=True)
class TenantDeleted(_TenantEvent):
    TYPE: ClassVar[str] = "tenant.deleted"


class Role(StrEnum):
    USER = "user"
    ADMIN = "admin"


def _role(value: str, path: str) -> Role:
    try:
        return Role(value)
    except ValueError:
        raise ContractError("invalid_value", "role is 'user' or 'admin'", path) from None


@dataclass(frozen=True)
class UserCreated:
    """The UPN becomes ``username@<the tenant's primary domain>``."""

    TYPE: ClassVar[str] = "user.created"
    tenant: str
    username: str
    given_name: str
    surname: str
    display_name: str | None = None
    password: bytes | None = dataclasses.field(default=None, repr=False)
    role: Role = Role.USER

    @classmethod
    def parse(cls, reader: FieldReader) -> Self:
        event = cls(
            tenant=reader.string("tenant", fields.tenant_id),
            username=reader.string("username", fields.username),
            given_name=reader.string("given_name", _name),
            surname=reader.string("surname", _name),
            display_name=reader.optional_string("display_name", _display_name),
            password=reader.optional_bytes("password", MAX_SEALED_PASSWORD),
            role=reader.optional_string("role", _role) or Role.USER,
        )
        reader.done()
        return event


@dataclass(frozen=True)
class UserUpdated:
    """Given fields replace the user's; absent ones stay.  At least one is given."""

    TYPE: ClassVar[str] = "user.updated"
    tenant: str
    username: str
    given_name: str | None = None
    surname: str | None = None
    display_name: str | None = None
    role: Role | None = None

    @classmethod
    def parse(cls, reader: FieldReader) -> Self:
        event = cls(
            tenant=reader.string("tenant", fields.tenant_id),
            username=reader.string("username", fields.username),
            given_name=reader.optional_string("given_name", _name),
            surname=reader.optional_string("surname", _name),
            display_name=reader.optional_string("display_name", _display_name),
            role=reader.optional_string("role", _role),
        )
        reader.done()
        _require_a_change(reader, event, ("given_name", "surname", "display_name", "role"))
        return event


@dataclass(frozen=True)
class _UserEvent:
    """An event about one user that carries nothing but who it is."""

    TYPE: ClassVar[str]
    tenant: str
    username: str

    @classmethod
    def parse(cls, reader: FieldReader) -> Self:
        event = cls(
            tenant=reader.string("tenant", fields.tenant_id),
            username=reader.string("username", fields.username),
        )
        reader.done()
        return event


@dataclass(frozen=True)
class UserDisabled(_UserEvent):
    TYPE: ClassVar[str] = "user.disabled"


@dataclass(frozen=True)
class UserEnabled(_UserEvent):
    TYPE: ClassVar[str] = "user.enabled"


@dataclass(frozen=True)
class UserDeleted(_UserEvent):
    TYPE: ClassVar[str] = "user.deleted"


@dataclass(frozen=True)
class UserPasswordReset:
    """Without ``password`` the fleet generates one and delivers it sealed."""

    TYPE: ClassVar[str] = "user.password_reset"
    tenant: str
    username: str
    password: bytes | None = dataclasses.field(default=None, repr=False)

    @classmethod
    def parse(cls, reader: FieldReader) -> Self:
        event = cls(
            tenant=reader.string("tenant", fields.tenant_id),
            username=reader.string("username", fields.username),
            password=reader.optional_bytes("password", MAX_SEALED_PASSWORD),
        )
        reader.done()
        return event


def _require_a_change(reader: FieldReader, event: object, names: tuple[str, ...]) -> None:
    if all(getattr(event, name) is None for name in names):
        raise ContractError("empty_update", f"give at least one of {', '.join(names)}", reader.here)


CATALOGUE: MappingProxyType[str, type[Event]] = MappingProxyType(
    {
        cls.TYPE: cls
        for cls in (
            TenantCreated,
            TenantUpdated,
            TenantSuspended,
            TenantResumed,
            TenantDeleted,
            UserCreated,
            UserUpdated,
            UserDisabled,
            UserEnabled,
            UserDeleted,
            UserPasswordReset,
        )
    }
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
    if isinstance(value, StrEnum):
        return value.value
    return value
