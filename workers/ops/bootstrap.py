"""The one-time platform setup of the directory (``provisioner directory bootstrap``).

It runs with an administrator's credential, given for that command alone, and sets up
what the fleet's own account (a member of no admin group) may then do by delegation:

- List Object Mode on;
- ``OU=Tenants``, locked down: its DACL is protected, Authenticated Users keep only
  read-control, list-object and read-property, and the fleet may read it and create
  tenant OUs in it (measured on Samba 4.17, isolation needs both the mode and the lock:
  without the lock, Pre-Windows 2000 Compatible Access lists every tenant's OU name);
- the Password Settings Container: the fleet creates PSOs there and controls the ones it
  made; the PSOs of tenants made before the fleet was delegated are granted to it;
- the fleet's own containers for idempotency records and for the fences of several DCs
  (``CN=Idempotency`` and ``CN=Fences`` under ``CN=Provisioner,CN=System``), readable by
  the fleet and the domain's administrators only.

It refuses to delegate to a privileged account.  It is idempotent, reads back what it
wrote, and raises :class:`BootstrapError` when the result is not in place: it is never
a silent no-op.  :func:`check` is the worker's preflight, run as the fleet itself.
"""

from __future__ import annotations

from workers.delivery import fences, idempotency
from workers.directory.port import Change, Directory, DirectoryRefused, Entry, Scope
from workers.errors import PermanentError
from workers.provisioning import names, security, tenant_state
from workers.provisioning.realm import Realm
from workers.provisioning.steps import Context, ProtectTenantOu

LIST_OBJECT_MODE_POSITION = 2  # the third character of dSHeuristics: fDoListObject


class BootstrapError(PermanentError):
    """The directory could not be set up as the fleet needs it."""

    def __init__(self, message: str) -> None:
        super().__init__("bootstrap", message)


def with_list_object_mode(current: str | None) -> str:
    """``dSHeuristics`` with fDoListObject set, every other character kept.

    An empty value becomes ``001``; a shorter one is padded with ``0``.
    """
    value = (current or "").ljust(LIST_OBJECT_MODE_POSITION + 1, "0")
    return value[:LIST_OBJECT_MODE_POSITION] + "1" + value[LIST_OBJECT_MODE_POSITION + 1 :]


def list_object_mode_enabled(value: str | None) -> bool:
    return (
        value is not None
        and len(value) > LIST_OBJECT_MODE_POSITION
        and (value[LIST_OBJECT_MODE_POSITION] == "1")
    )


def bootstrap(directory: Directory, realm: Realm) -> list[str]:
    """Bring the directory to the state the fleet needs; return what was changed."""
    check_not_privileged(directory, realm)
    changes: list[str] = []
    ds_dn = names.directory_service_dn(directory.configuration_nc)
    entry = directory.read(ds_dn, ["dSHeuristics"])
    if entry is None:
        raise BootstrapError(f"{ds_dn} does not exist: is this an Active Directory domain?")
    current = entry.first("dSHeuristics")
    if not list_object_mode_enabled(current):
        wanted = with_list_object_mode(current)
        try:
            directory.modify(ds_dn, {"dSHeuristics": [(Change.REPLACE, [wanted])]})
        except DirectoryRefused as exc:
            raise BootstrapError(f"cannot enable List Object Mode on {ds_dn}: {exc}") from exc
        changes.append(f"dSHeuristics {current!r} -> {wanted!r}")
    tenants = names.tenants_dn(directory.base_dn)
    changes += _ensure_entry(
        directory, tenants, ["organizationalUnit"], {"description": "Hosted tenants"}
    )
    changes += _ensure_dacl(
        directory, tenants, security.tenants_container_dacl(realm.domain_sid, realm.provisioner_sid)
    )
    parent = idempotency.parent_dn(directory.base_dn)
    changes += _ensure_entry(directory, parent, ["container"], {})
    changes += _ensure_dacl(
        directory, parent, security.fleet_only_dacl(realm.domain_sid, realm.provisioner_sid)
    )
    for dn in _fleet_containers(directory.base_dn):
        changes += _ensure_entry(
            directory, dn, ["container"], {"nTSecurityDescriptor": idempotency.RECORD_DESCRIPTOR}
        )
        changes += _ensure_dacl(directory, dn, security.inherits_only())
        changes += _lock_records(directory, dn)
    psc = names.password_settings_dn(directory.base_dn)
    changes += _ensure_aces(
        directory, psc, security.password_settings_delegation(realm.provisioner_sid)
    )
    for pso in _tenant_psos_not_granted(directory, realm):
        changes += _ensure_aces(directory, pso, (security.fleet_pso_grant(realm.provisioner_sid),))
    changes += migrate_tenant_dacls(directory, realm)
    changes += migrate_tenant_lists(directory)
    check(directory, realm)
    return changes


def migrate_tenant_dacls(directory: Directory, realm: Realm) -> list[str]:
    """Give every tenant OU the DACL of today's design (a tenant made before tenant admins
    were scoped gave them full control of users and groups)."""
    ctx = Context(realm=realm, tag="bootstrap", unseal=_no_unsealing, seal_for_results=None)
    changes = []
    for tenant in tenant_state.tenant_ids(directory):
        base = directory.base_dn
        step = ProtectTenantOu(
            tenant,
            names.tenant_dn(tenant, base),
            names.users_group_dn(tenant, base),
            names.admins_group_dn(tenant, base),
        )
        if directory.read(step.admins_group_dn, ["cn"]) is None:
            continue  # half-made: the audit reports it
        if step.apply(directory, ctx) is not None:
            changes.append(f"migrated the DACL of {step.ou_dn} to the current design")
    return changes


MAX_LIST_MOVES = 10


def migrate_tenant_lists(directory: Directory) -> list[str]:
    """Move every tenant's per-user lists (reservations, suspensions) out of
    ``msDS-Settings`` into ``keywords``, one modify per tenant (see tenant_state).

    A worker that changes the settings meanwhile makes the modify fail on a value it
    expected: the tenant is read again."""
    attributes = [tenant_state.SETTINGS_ATTRIBUTE, tenant_state.LISTS_ATTRIBUTE]
    changes = []
    for found in tenant_state.with_legacy_lists(directory):
        entry: Entry | None = found
        for _ in range(MAX_LIST_MOVES):
            moves = tenant_state.moved_lists(entry) if entry is not None else {}
            if not moves:
                break
            try:
                directory.modify(found.dn, moves)
            except DirectoryRefused as exc:
                if exc.result in ("noSuchAttribute", "attributeOrValueExists"):
                    entry = directory.read(found.dn, attributes)  # changed meanwhile: again
                    continue
                raise BootstrapError(f"cannot move the lists of {found.dn}: {exc}") from exc
            moved = len(moves[tenant_state.SETTINGS_ATTRIBUTE][0][1])
            changes.append(f"moved {moved} per-user value(s) of {found.dn} into keywords")
            break
        else:
            raise BootstrapError(
                f"the settings of {found.dn} kept changing while their lists moved"
            )
    return changes


def _no_unsealing(sealed: bytes, path: str) -> str:
    del sealed
    raise BootstrapError(f"the bootstrap opens no sealed value ({path})")


def check_not_privileged(directory: Directory, realm: Realm) -> None:
    """Raise :class:`BootstrapError` when the fleet's account is in a privileged group."""
    entry = directory.read(realm.provisioner_dn, ["tokenGroups"])
    sids = [security.sid_from_bytes(v) for v in entry.values("tokenGroups")] if entry else []
    groups = security.privileged_groups(realm.domain_sid, sids)
    if groups:
        raise BootstrapError(
            f"the fleet's account {realm.provisioner_dn} is a member of {', '.join(groups)}: "
            "the fleet runs with delegated rights only; take it out of those groups "
            "(docs/engine.md#the-fleets-own-rights)"
        )


def _ensure_aces(directory: Directory, dn: str, wanted: tuple[security.Ace, ...]) -> list[str]:
    """Add the ACEs of ``wanted`` that ``dn``'s DACL lacks; keep every other ACE of it."""
    raw = directory.read_security_descriptor(dn)
    if raw is None:
        raise BootstrapError(f"{dn} does not exist or cannot be read")
    try:
        current = security.decode(raw)
    except security.UnsupportedAce as exc:
        raise BootstrapError(f"{dn} holds an ACE the fleet cannot rewrite ({exc})") from exc
    lacking = [ace for ace in wanted if ace not in current.explicit_set()]
    if not lacking:
        return []
    merged = security.Dacl(current.protected, (*current.aces, *lacking))
    try:
        directory.write_dacl(dn, security.encode(merged))
    except DirectoryRefused as exc:
        raise BootstrapError(f"cannot delegate on {dn}: {exc}") from exc
    return [f"delegated {len(lacking)} right(s) on {dn}"]


def _tenant_psos_not_granted(directory: Directory, realm: Realm) -> list[str]:
    """The PSOs of existing tenants that the fleet neither owns nor has been granted."""
    out = []
    grant = security.fleet_pso_grant(realm.provisioner_sid)
    for tenant in tenant_state.tenant_ids(directory):
        pso = names.pso_dn(tenant, directory.base_dn)
        raw = directory.read_security_descriptor(pso)
        if raw is None:
            continue
        try:
            aces = security.decode_all(raw)
        except security.UnsupportedAce:
            continue  # a deny or audit ACE we never write: left to an administrator
        if not any(a.sid == realm.provisioner_sid and a.mask == grant.mask for a in aces):
            out.append(pso)
    return out


def _fleet_containers(base_dn: str) -> tuple[str, str]:
    return idempotency.container_dn(base_dn), fences.container_dn(base_dn)


def _lock_records(directory: Directory, container: str) -> list[str]:
    """Take the ACEs of their own off the records and fences made before they were born
    locked (their class's default descriptor let Authenticated Users read them)."""
    wanted = security.inherits_only()
    loose = [
        entry.dn
        for entry in directory.search(container, "(objectClass=*)", Scope.ONE_LEVEL, ["cn"])
        if not _same(_dacl_of(directory, entry.dn), wanted)
    ]
    for dn in loose:
        try:
            directory.write_dacl(dn, idempotency.RECORD_DESCRIPTOR)
        except DirectoryRefused as exc:
            raise BootstrapError(f"cannot lock down {dn}: {exc}") from exc
    return [f"locked down {len(loose)} object(s) in {container}"] if loose else []


def _ensure_entry(
    directory: Directory, dn: str, classes: list[str], attributes: dict[str, str | bytes]
) -> list[str]:
    if directory.read(dn, ["cn"]) is not None:
        return []
    try:
        directory.add(dn, classes, attributes)
    except DirectoryRefused as exc:
        raise BootstrapError(f"cannot create {dn}: {exc}") from exc
    return [f"created {dn}"]


def _ensure_dacl(directory: Directory, dn: str, wanted: security.Dacl) -> list[str]:
    if _same(_dacl_of(directory, dn), wanted):
        return []
    try:
        directory.write_dacl(dn, security.encode(wanted))
    except DirectoryRefused as exc:
        raise BootstrapError(f"cannot lock down {dn}: {exc}") from exc
    return [f"locked down {dn}"]


def check(directory: Directory, realm: Realm) -> None:
    """Raise :class:`BootstrapError` unless the directory is set up (the worker's preflight)."""
    ds_dn = names.directory_service_dn(directory.configuration_nc)
    entry = directory.read(ds_dn, ["dSHeuristics"])
    value = entry.first("dSHeuristics") if entry else None
    if not list_object_mode_enabled(value):
        raise BootstrapError(
            f"List Object Mode is off (dSHeuristics={value!r} on {ds_dn}); "
            "run `provisioner directory bootstrap`"
        )
    tenants = names.tenants_dn(directory.base_dn)
    if directory.read(tenants, ["ou"]) is None:
        raise BootstrapError(f"{tenants} is missing; run `provisioner directory bootstrap`")
    wanted = security.tenants_container_dacl(realm.domain_sid, realm.provisioner_sid)
    parent = idempotency.parent_dn(directory.base_dn)
    locked = security.fleet_only_dacl(realm.domain_sid, realm.provisioner_sid)
    for dn, dacl in (
        (tenants, wanted),
        (parent, locked),
        *((dn, security.inherits_only()) for dn in _fleet_containers(directory.base_dn)),
    ):
        if directory.read(dn, ["cn"]) is None:
            raise BootstrapError(f"{dn} is missing; run `provisioner directory bootstrap`")
        if not _same(_dacl_of(directory, dn), dacl):
            raise BootstrapError(
                f"{dn} is not locked down (its DACL differs from the fleet's); "
                "run `provisioner directory bootstrap`"
            )
    psc = names.password_settings_dn(directory.base_dn)
    raw = directory.read_security_descriptor(psc)
    delegated = security.decode(raw).explicit_set() if raw is not None else frozenset()
    if not set(security.password_settings_delegation(realm.provisioner_sid)) <= delegated:
        raise BootstrapError(
            f"the fleet is not delegated its rights on {psc}; run `provisioner directory bootstrap`"
        )
    check_not_privileged(directory, realm)


def _comparable(dacl: security.Dacl) -> tuple[bool, frozenset[security.Ace], int]:
    return dacl.protected, dacl.explicit_set(), dacl.inherited


def _same(current: tuple[bool, frozenset[security.Ace], int] | None, wanted: security.Dacl) -> bool:
    """``current`` is ``wanted``; what a DACL that is not protected inherits is its parent's."""
    if current is None:
        return False
    if wanted.protected:
        return current == _comparable(wanted)
    return current[:2] == _comparable(wanted)[:2]


def _dacl_of(directory: Directory, dn: str) -> tuple[bool, frozenset[security.Ace], int] | None:
    raw = directory.read_security_descriptor(dn)
    if raw is None:
        return None
    try:
        return _comparable(security.decode(raw))
    except security.UnsupportedAce:
        return None  # a deny or audit ACE we never write: not our DACL
