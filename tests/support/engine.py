"""Run the engine in-process against the suite's DC: for tests that inject faults or need
many objects quickly.  Events are built as producers build them (passwords sealed)."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from messages.envelope import Envelope
from messages.json_input import envelope_from_json
from messages.sealing import load_public_key
from tests.support.platform import SuitePlatform
from workers.directory.ldap_directory import LdapDirectory
from workers.directory.port import Directory
from workers.provisioning import engine
from workers.provisioning.keys import KeyRing
from workers.provisioning.realm import read_realm
from workers.provisioning.steps import Context
from workers.runtime.settings import Settings


def settings(platform: SuitePlatform, **overrides: Any) -> Settings:
    return Settings.from_env(platform.settings_env, overrides)


def event(platform: SuitePlatform, kind: str, data: dict[str, Any], key: str) -> Envelope:
    public = load_public_key(platform.settings_env["PROVISIONER_FLEET_PUBLIC_KEY_FILE"])
    return envelope_from_json(
        {"type": kind, "data": data, "idempotency_key": key}, public_key=public
    )


@contextmanager
def connected(platform: SuitePlatform) -> Iterator[LdapDirectory]:
    directory = LdapDirectory.connect(settings(platform))
    try:
        yield directory
    finally:
        directory.close()


def context(platform: SuitePlatform, directory: Directory, envelope: Envelope) -> Context:
    s = settings(platform)
    realm = read_realm(directory, s.ldap_bind_dn)
    return KeyRing.from_settings(s).context(realm, envelope.idempotency_key, s.sam_digits)


def run(
    platform: SuitePlatform, envelope: Envelope, directory: Directory | None = None
) -> dict[str, Any]:
    """Apply ``envelope`` through the engine; ``directory`` may wrap a real one."""
    with connected(platform) as real:
        target = directory or real
        return engine.handle(envelope, target, context(platform, real, envelope))


def tenant_data(
    tenant: str,
    *,
    admin_password: str | None = None,
    max_users: int | None = None,
    name: str | None = None,
) -> dict[str, Any]:
    admin: dict[str, Any] = {"username": "admin", "given_name": "Ada", "surname": "Admin"}
    if admin_password is not None:
        admin["password"] = admin_password
    data: dict[str, Any] = {
        "tenant": tenant,
        "name": name or f"Tenant {tenant}",
        "domains": [f"{tenant}.example"],
        "admin": admin,
    }
    if max_users is not None:
        data["plan"] = {"max_users": max_users}
    return data


def create_tenant(
    platform: SuitePlatform, prefix: str, password: str, max_users: int | None = None
) -> str:
    """A new tenant (with an admin of that password) through the engine; its id."""
    tenant = f"{prefix}-{secrets.token_hex(3)}"
    run(
        platform,
        event(
            platform,
            "tenant.created",
            tenant_data(tenant, admin_password=password, max_users=max_users),
            f"{tenant}-created",
        ),
    )
    return tenant


def create_user(platform: SuitePlatform, tenant: str, username: str, password: str) -> None:
    """A user of that password in ``tenant``, through the engine."""
    data = {
        "tenant": tenant,
        "username": username,
        "given_name": "Ursula",
        "surname": "User",
        "password": password,
    }
    run(platform, event(platform, "user.created", data, f"{tenant}-{username}-created"))
