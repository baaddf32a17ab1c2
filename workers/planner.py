"""Turns an event into an ordered plan of provisioning steps; pure: nothing is read or written.

The steps check the directory themselves when they run (check, then ensure), so a plan
depends only on the event and the realm, and re-running it converges.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from messages.envelope import Envelope
from messages.events import TenantCreated
from workers import names, security
from workers.errors import PermanentError
from workers.realm import Realm
from workers.steps import (
    GLOBAL_SECURITY_GROUP,
    CreateEntry,
    CreateUser,
    EnsureMembers,
    ProtectTenantOu,
    Step,
)


@dataclass(frozen=True)
class Plan:
    event_type: str
    steps: tuple[Step, ...]
    # A job that must never be left half-made undoes its steps when it fails for good.
    all_or_nothing: bool = False
    details: Mapping[str, Any] = field(default_factory=dict)  # known before it runs

    def describe(self) -> list[str]:
        return [step.describe() for step in self.steps]


def plan(envelope: Envelope, realm: Realm) -> Plan:
    match envelope.data:
        case TenantCreated() as event:
            return plan_tenant_created(event, realm)
        case _:
            raise PermanentError(
                "unsupported_type", f"{envelope.type} is not implemented by this worker yet"
            )


def tenant_settings(event: TenantCreated) -> list[str]:
    """The tenant's ``msDS-Settings`` values: ``key=value`` lines."""
    values = [
        f"primary_domain={event.primary_domain}",
        f"domains={','.join(event.domains)}",
        "users=1",  # the admin counts against the quota
    ]
    if event.plan is not None:
        values.append(f"max_users={event.plan.max_users}")
    return values


def plan_tenant_created(event: TenantCreated, realm: Realm) -> Plan:
    base, tenant, admin = realm.base_dn, event.tenant, event.admin
    ou = names.tenant_dn(tenant, base)
    users = names.users_group_dn(tenant, base)
    admins = names.admins_group_dn(tenant, base)
    admin_dn = names.user_dn(tenant, admin.username, base)
    policy = event.plan.password_policy if event.plan else None
    # Until its groups exist, the OU is born protected with no one but the fleet on it.
    born_locked = security.encode(
        security.initial_tenant_ou_dacl(realm.domain_sid, realm.provisioner_sid)
    )
    return Plan(
        event_type=event.TYPE,
        all_or_nothing=True,
        details={"dn": ou, "users_group": users, "admins_group": admins},
        steps=(
            CreateEntry(
                ou,
                ("organizationalUnit",),
                {
                    "description": event.name,
                    "uPNSuffixes": list(event.domains),
                    "nTSecurityDescriptor": born_locked,
                },
                conflict_code="tenant_exists",
                label="tenant OU",
            ),
            CreateEntry(
                users,
                ("group",),
                {
                    "sAMAccountName": names.users_group_sam(tenant),
                    "groupType": GLOBAL_SECURITY_GROUP,
                    "description": f"All users of {event.name}",
                },
                label="users group",
            ),
            CreateEntry(
                admins,
                ("group",),
                {
                    "sAMAccountName": names.admins_group_sam(tenant),
                    "groupType": GLOBAL_SECURITY_GROUP,
                    "description": f"Administrators of {event.name}",
                },
                label="admins group",
            ),
            ProtectTenantOu(tenant, ou, users, admins),
            CreateEntry(
                names.settings_dn(tenant, base),
                ("msDS-App-Configuration",),
                {
                    "msDS-Settings": tenant_settings(event),
                },
                label="tenant settings",
            ),
            CreateUser(
                tenant=tenant,
                username=admin.username,
                user_dn=admin_dn,
                upn=names.upn(admin.username, event.primary_domain),
                attributes={
                    "givenName": admin.given_name,
                    "sn": admin.surname,
                    "displayName": admin.display_name or f"{admin.given_name} {admin.surname}",
                },
                sealed_password=admin.password,
                sealed_field="data.admin.password",
                result_key="admin",
                min_password_length=policy.min_length if policy else 0,
            ),
            EnsureMembers(users, (admin_dn,)),
            EnsureMembers(admins, (admin_dn,)),
        ),
    )
