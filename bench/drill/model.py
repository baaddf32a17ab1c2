"""What the directory must hold after a scenario: a small model of the events.

It reads only the events' own fields and the contract's documented rules (the UPN is the
username at the primary domain; the display name defaults to "given surname" and only a
``display_name`` changes it; a tenant's admin account is ``admin``, member of both
groups; ``role`` adds to or removes from the admins group; a deleted tenant leaves
nothing).  It shares no code with the engine's planner.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bench.drill.scenario import Scenario


@dataclass
class User:
    given_name: str
    surname: str
    display_name: str
    upn: str
    enabled: bool = True
    admin: bool = False
    password: str = ""
    reset: bool = False  # its password was reset: the drill binds with the new one


@dataclass
class Tenant:
    name: str
    domain: str
    users: dict[str, User] = field(default_factory=dict)


def expected(scenario: Scenario) -> dict[str, Tenant | None]:
    """Each of the scenario's tenants: its expected state, or None if it must be gone."""
    tenants: dict[str, Tenant | None] = dict.fromkeys(scenario.tenants)
    applied: set[str] = set()
    for event in scenario.events:
        if event["idempotency_key"] in applied:
            continue  # a republished intent changes nothing twice
        applied.add(event["idempotency_key"])
        _apply(tenants, event["type"], event["data"])
    return tenants


def _apply(tenants: dict[str, Tenant | None], kind: str, data: dict[str, Any]) -> None:
    tenant = tenants.get(data["tenant"])
    if kind == "tenant.created":
        domain = data["domains"][0]
        admin = data["admin"]
        made = Tenant(data["name"], domain)
        made.users[admin["username"]] = _person(admin, domain, admin=True)
        tenants[data["tenant"]] = made
        return
    assert tenant is not None, f"{kind} for a tenant the scenario never made"
    if kind == "tenant.updated":
        tenant.name = data.get("name", tenant.name)
    elif kind == "tenant.deleted":
        tenants[data["tenant"]] = None
    elif kind == "user.created":
        tenant.users[data["username"]] = _person(
            data, tenant.domain, admin=data.get("role") == "admin"
        )
    else:
        _change_user(tenant.users, kind, data)


def _change_user(users: dict[str, User], kind: str, data: dict[str, Any]) -> None:
    user = users[data["username"]]
    if kind == "user.updated":
        user.given_name = data.get("given_name", user.given_name)
        user.surname = data.get("surname", user.surname)
        user.display_name = data.get("display_name", user.display_name)
        if "role" in data:
            user.admin = data["role"] == "admin"
    elif kind in {"user.disabled", "user.enabled"}:
        user.enabled = kind == "user.enabled"
    elif kind == "user.password_reset":
        user.password, user.reset = data["password"], True
    elif kind == "user.deleted":
        del users[data["username"]]
    else:
        raise AssertionError(f"the model does not know {kind}")


def _person(data: dict[str, Any], domain: str, *, admin: bool) -> User:
    given, surname = data["given_name"], data["surname"]
    return User(
        given_name=given,
        surname=surname,
        display_name=data.get("display_name", f"{given} {surname}"),
        upn=f"{data['username']}@{domain}",
        admin=admin,
        password=data.get("password", ""),
    )
