"""Turns an event into an ordered plan of provisioning steps; pure: nothing is read or written.

The steps check the directory themselves when they run (check, then ensure), so a plan
depends only on the event and the realm, and re-running it converges.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from messages.envelope import Envelope
from messages.events import Role, TenantCreated, UserCreated
from workers import names, security
from workers.errors import DependencyNotReady, PermanentError
from workers.realm import Realm
from workers.steps import (
    GLOBAL_SECURITY_GROUP,
    CreateEntry,
    CreateUser,
    EnsureMembers,
    ProtectTenantOu,
    ReserveSlot,
    Step,
)
from workers.tenant_state import TenantState


@dataclass(frozen=True)
class Plan:
    event_type: str
    steps: tuple[Step, ...]
    # A job that must never be left half-made undoes its steps when it fails for good.
    all_or_nothing: bool = False
    details: Mapping[str, Any] = field(default_factory=dict)  # known before it runs

    def describe(self) -> list[str]:
        return [step.describe() for step in self.steps]


def plan(envelope: Envelope, realm: Realm, state: TenantState | None) -> Plan:
    """The plan for ``envelope`` given the tenant's current ``state`` (None: no such tenant)."""
    match envelope.data:
        case TenantCreated() as event:
            return plan_tenant_created(event, realm)
        case UserCreated() as event:
            return plan_user_created(event, realm, _require(state, event.tenant))
        case _:
            raise PermanentError(
                "unsupported_type", f"{envelope.type} is not implemented by this worker yet"
            )


def _require(state: TenantState | None, tenant: str) -> TenantState:
    if state is None:
        raise DependencyNotReady("tenant_not_ready", f"tenant {tenant} does not exist (yet)")
    return state


def tenant_settings(event: TenantCreated) -> list[str]:
    """The tenant's ``msDS-Settings`` values: ``key=value`` lines (see tenant_state)."""
    values = [
        f"primary_domain={event.primary_domain}",
        f"domains={','.join(event.domains)}",
        "users=1",  # the admin counts against the quota
        f"reserved={event.admin.username.lower()}",
    ]
    if event.plan is not None:
        values.append(f"max_users={event.plan.max_users}")
        if event.plan.password_policy is not None:
            values.append(f"min_password_length={event.plan.password_policy.min_length}")
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


def plan_user_created(event: UserCreated, realm: Realm, state: TenantState) -> Plan:
    base, tenant = realm.base_dn, event.tenant
    dn = names.user_dn(tenant, event.username, base)
    groups = [names.users_group_dn(tenant, base)]
    if event.role is Role.ADMIN:
        groups.append(names.admins_group_dn(tenant, base))
    return Plan(
        event_type=event.TYPE,
        all_or_nothing=True,
        steps=(
            ReserveSlot(names.settings_dn(tenant, base), tenant, event.username, dn),
            CreateUser(
                tenant=tenant,
                username=event.username,
                user_dn=dn,
                upn=names.upn(event.username, state.primary_domain),
                attributes={
                    "givenName": event.given_name,
                    "sn": event.surname,
                    "displayName": event.display_name or f"{event.given_name} {event.surname}",
                },
                sealed_password=event.password,
                min_password_length=state.min_password_length,
            ),
            *(EnsureMembers(group, (dn,)) for group in groups),
        ),
    )
