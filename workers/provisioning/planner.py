"""Turns an event into an ordered plan of provisioning steps; pure: nothing is read or written.

The plan depends on the event, the realm and the tenant's state as read before
planning; the steps check the directory again when they run (check, then ensure), so
re-running a plan converges.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from messages.envelope import Envelope
from messages.events import (
    AdminAccount,
    PasswordPolicy,
    Role,
    TenantCreated,
    TenantDeleted,
    TenantResumed,
    TenantSuspended,
    TenantUpdated,
    UserCreated,
    UserDeleted,
    UserDisabled,
    UserEnabled,
    UserPasswordReset,
    UserUpdated,
)
from workers.directory import key_values
from workers.errors import DependencyNotReady
from workers.provisioning import names, security, tenant_state
from workers.provisioning.realm import Realm
from workers.provisioning.steps import (
    GLOBAL_SECURITY_GROUP,
    CreateEntry,
    CreateUser,
    DeleteEntry,
    EnsureMembers,
    EnsureNotMembers,
    ProtectTenantOu,
    ReleaseSlot,
    ReplaceAttributes,
    ReserveSlot,
    SetAccountEnabled,
    SetPassword,
    Step,
)
from workers.provisioning.steps.tenants import (
    DeleteTree,
    RefuseDomainsInUse,
    ResumeUsers,
    RewriteUpns,
    SetTenantSettings,
    SuspendUsers,
)
from workers.provisioning.tenant_state import TenantState

PSO_PRECEDENCE = 10
NEVER = -(2**63)  # an interval that never ends, in AD's negative 100 ns units
DAY = 864_000_000_000  # 100 ns units in a day
LOCKOUT_WINDOW = -18_000_000_000  # 30 minutes


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
    """The plan for ``envelope`` given the tenant's current ``state`` (None: no such tenant).

    Every event but tenant.created and the deletes needs its tenant: before the tenant
    exists, it is a DependencyNotReady (retried later), not a failure.
    """
    event = envelope.data
    stateless = _WITHOUT_STATE.get(type(event))
    if stateless is not None:
        return stateless(event, realm)
    return _WITH_STATE[type(event)](event, realm, _require(state, event.tenant))


def needs_state(envelope: Envelope) -> bool:
    """Whether planning ``envelope`` needs the tenant's state (one read, spared otherwise)."""
    return type(envelope.data) not in _WITHOUT_STATE


def _require(state: TenantState | None, tenant: str) -> TenantState:
    if state is None:
        raise DependencyNotReady("tenant_not_ready", f"tenant {tenant} does not exist (yet)")
    return state


def tenant_settings(event: TenantCreated) -> list[str]:
    """The tenant's ``msDS-Settings`` values: ``key=value`` lines (see tenant_state)."""
    values = [
        key_values.item("primary_domain", event.primary_domain),
        key_values.item("domains", ",".join(event.domains)),
        key_values.item("users", 1),  # the admin counts against the quota
    ]
    if event.plan is not None:
        values.append(key_values.item("max_users", event.plan.max_users))
        if event.plan.password_policy is not None:
            policy = event.plan.password_policy
            values.append(key_values.item("min_password_length", policy.min_length))
    return values


def pso_attributes(policy: PasswordPolicy, users_group_dn: str) -> dict[str, Any]:
    """A fine-grained password policy (msDS-PasswordSettings) for the tenant's users."""
    lockout = policy.lockout_threshold or 0
    max_age = policy.max_age_days or 0
    return {
        "msDS-PasswordSettingsPrecedence": PSO_PRECEDENCE,
        "msDS-PasswordReversibleEncryptionEnabled": "FALSE",
        "msDS-PasswordHistoryLength": policy.history or 0,
        "msDS-PasswordComplexityEnabled": "TRUE" if policy.complexity else "FALSE",
        "msDS-MinimumPasswordLength": policy.min_length,
        "msDS-MinimumPasswordAge": 0,
        "msDS-MaximumPasswordAge": -max_age * DAY if max_age else NEVER,
        "msDS-LockoutThreshold": lockout,
        "msDS-LockoutDuration": LOCKOUT_WINDOW,
        "msDS-LockoutObservationWindow": LOCKOUT_WINDOW,
        "msDS-PSOAppliesTo": users_group_dn,
    }


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
    pso: tuple[Step, ...] = ()
    if policy is not None:
        pso = (
            CreateEntry(
                names.pso_dn(tenant, base),
                ("msDS-PasswordSettings",),
                pso_attributes(policy, users),
                label="password policy",
            ),
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
                    tenant_state.SETTINGS_ATTRIBUTE: tenant_settings(event),
                    tenant_state.LISTS_ATTRIBUTE: [
                        tenant_state.list_value(tenant_state.RESERVED, event.admin.username)
                    ],
                },
                label="tenant settings",
            ),
            *pso,
            _create_user(
                admin,
                tenant,
                base,
                event.primary_domain,
                policy.min_length if policy else 0,
                sealed_field="data.admin.password",
                result_key="admin",
            ),
            EnsureMembers(users, (admin_dn,)),
            EnsureMembers(admins, (admin_dn,)),
        ),
    )


def plan_tenant_updated(event: TenantUpdated, realm: Realm, state: TenantState) -> Plan:
    """Given fields replace, absent ones stay.  A new primary domain moves every UPN; a
    dropped domain that a user still logs on with is refused (domain_in_use)."""
    base, tenant = realm.base_dn, event.tenant
    ou = names.tenant_dn(tenant, base)
    steps: list[Step] = []
    settings: dict[str, str] = {}
    if event.name is not None:
        steps.append(ReplaceAttributes(ou, {"description": event.name}, what="tenant"))
    if event.domains is not None:
        if event.domains[0] != state.primary_domain:
            steps.append(RewriteUpns(ou, event.domains[0]))
        dropped = tuple(d for d in state.domains if d not in event.domains)
        if dropped:
            steps.append(RefuseDomainsInUse(ou, dropped))
        steps.append(ReplaceAttributes(ou, {"uPNSuffixes": list(event.domains)}, what="tenant"))
        settings |= {"primary_domain": event.domains[0], "domains": ",".join(event.domains)}
    if event.plan is not None:
        settings["max_users"] = str(event.plan.max_users)
        policy = event.plan.password_policy
        if policy is not None:
            settings["min_password_length"] = str(policy.min_length)
            steps.append(_ensure_pso(tenant, base, policy))
    if settings:
        steps.append(SetTenantSettings(names.settings_dn(tenant, base), tenant, settings))
    return Plan(event.TYPE, tuple(steps), all_or_nothing=True, details={"dn": ou})


def _ensure_pso(tenant: str, base: str, policy: PasswordPolicy) -> Step:
    attributes = pso_attributes(policy, names.users_group_dn(tenant, base))
    return ReplaceAttributes(names.pso_dn(tenant, base), attributes, what="password_policy")


def plan_tenant_suspension(
    event: TenantSuspended | TenantResumed, realm: Realm, state: TenantState
) -> Plan:
    del state
    ou = names.tenant_dn(event.tenant, realm.base_dn)
    settings = names.settings_dn(event.tenant, realm.base_dn)
    step: Step = (
        SuspendUsers(ou, settings)
        if isinstance(event, TenantSuspended)
        else ResumeUsers(ou, settings)
    )
    return Plan(event.TYPE, (step,), details={"dn": ou})


def plan_tenant_deleted(event: TenantDeleted, realm: Realm) -> Plan:
    ou = names.tenant_dn(event.tenant, realm.base_dn)
    return Plan(
        event.TYPE,
        (
            DeleteEntry(names.pso_dn(event.tenant, realm.base_dn), label="password policy"),
            DeleteTree(ou),
        ),
        details={"dn": ou},
    )


def _create_user(
    person: AdminAccount | UserCreated,
    tenant: str,
    base: str,
    domain: str,
    min_password_length: int,
    *,
    sealed_field: str = "data.password",
    result_key: str = "user",
) -> CreateUser:
    """The one add of a user: names (the display name only in displayName), the UPN in the
    tenant's primary domain, the sealed password or a generated one."""
    return CreateUser(
        tenant=tenant,
        username=person.username,
        user_dn=names.user_dn(tenant, person.username, base),
        upn=names.upn(person.username, domain),
        attributes={
            "givenName": person.given_name,
            "sn": person.surname,
            "displayName": person.display_name or f"{person.given_name} {person.surname}",
        },
        sealed_password=person.password,
        sealed_field=sealed_field,
        result_key=result_key,
        min_password_length=min_password_length,
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
            ReserveSlot(
                names.settings_dn(tenant, base),
                tenant,
                event.username,
                dn,
                expected_users=_room(state, event.username),
            ),
            _create_user(event, tenant, base, state.primary_domain, state.min_password_length),
            *(EnsureMembers(group, (dn,)) for group in groups),
        ),
    )


def _room(state: TenantState, username: str) -> int | None:
    """The counter to swap from without reading, when the state read had room for one more.

    The swap only succeeds if the counter is still that value, so the room is still there,
    and if the user holds no reservation yet (a redelivery reads and finds it).
    """
    full = state.max_users is not None and state.users >= state.max_users
    if full or username.lower() in state.legacy_reserved:
        return None
    return state.users


def plan_user_updated(event: UserUpdated, realm: Realm, state: TenantState) -> Plan:
    del state
    dn = names.user_dn(event.tenant, event.username, realm.base_dn)
    admins = names.admins_group_dn(event.tenant, realm.base_dn)
    values = {
        attribute: value
        for attribute, value in (
            ("givenName", event.given_name),
            ("sn", event.surname),
            ("displayName", event.display_name),
        )
        if value is not None
    }
    # An empty change still checks that the user exists: a typo is not a success.
    steps: list[Step] = [ReplaceAttributes(dn, values, what="user")]
    if event.role is Role.ADMIN:
        steps.append(EnsureMembers(admins, (dn,)))
    elif event.role is Role.USER:
        steps.append(EnsureNotMembers(admins, (dn,)))
    return Plan(event.TYPE, tuple(steps), all_or_nothing=True, details={"dn": dn})


def plan_user_enabled(event: UserDisabled | UserEnabled, realm: Realm, state: TenantState) -> Plan:
    del state
    dn = names.user_dn(event.tenant, event.username, realm.base_dn)
    enabled = isinstance(event, UserEnabled)
    return Plan(event.TYPE, (SetAccountEnabled(dn, enabled),), details={"dn": dn})


def plan_user_deleted(event: UserDeleted, realm: Realm) -> Plan:
    """Deleting a user that is gone already succeeds: the intent holds."""
    base, tenant = realm.base_dn, event.tenant
    dn = names.user_dn(tenant, event.username, base)
    slot = ReserveSlot(names.settings_dn(tenant, base), tenant, event.username, dn)
    return Plan(event.TYPE, (DeleteEntry(dn, label="user"), ReleaseSlot(slot)), details={"dn": dn})


def plan_password_reset(event: UserPasswordReset, realm: Realm, state: TenantState) -> Plan:
    dn = names.user_dn(event.tenant, event.username, realm.base_dn)
    return Plan(
        event.TYPE,
        (SetPassword(dn, event.password, "data.password", state.min_password_length),),
        details={"dn": dn},
    )


_WITHOUT_STATE: Mapping[type, Callable[[Any, Realm], Plan]] = MappingProxyType(
    {
        TenantCreated: plan_tenant_created,
        TenantDeleted: plan_tenant_deleted,
        UserDeleted: plan_user_deleted,
    }
)
_WITH_STATE: Mapping[type, Callable[[Any, Realm, TenantState], Plan]] = MappingProxyType(
    {
        TenantUpdated: plan_tenant_updated,
        TenantSuspended: plan_tenant_suspension,
        TenantResumed: plan_tenant_suspension,
        UserCreated: plan_user_created,
        UserUpdated: plan_user_updated,
        UserDisabled: plan_user_enabled,
        UserEnabled: plan_user_enabled,
        UserPasswordReset: plan_password_reset,
    }
)
