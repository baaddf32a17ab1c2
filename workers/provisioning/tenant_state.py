"""A tenant's state as the directory holds it, read into plain data for the planner.

The tenant's settings object (``CN=Tenant Settings``, msDS-App-Configuration) holds:

- in ``msDS-Settings``, the tenant's settings as ``key=value``: ``primary_domain``,
  ``domains`` (in order), ``max_users``, ``min_password_length`` and the quota counter
  ``users``.  Every ``user.created`` reads them: they stay a handful of values;
- in ``keywords``, the per-user lists: one ``reserved:<username>`` per counted user and one
  ``suspended:<cn>`` per user a suspension disabled.  They grow with the tenant, so they are
  never read whole on the way of a ``user.created``: a base search with an equality
  filter asks whether one name is listed.

Both attributes are on the one object, so one modify changes the counter and a
reservation together, atomically.  Tenants made before the lists moved to ``keywords``
hold them in ``msDS-Settings`` as ``reserved=<username>`` and ``suspended=<cn>``; every
reader here accepts both places (a fleet of the earlier version may still write there
during a rolling upgrade) and the bootstrap moves them (:func:`moved_lists`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from workers.directory import key_values
from workers.directory.escaping import filter_value
from workers.directory.port import Change, Directory, Entry, Scope
from workers.provisioning import names

SETTINGS_ATTRIBUTE = key_values.ATTRIBUTE
LISTS_ATTRIBUTE = "keywords"
RESERVED = "reserved"
SUSPENDED = "suspended"
LISTS = (RESERVED, SUSPENDED)


@dataclass(frozen=True)
class TenantState:
    tenant: str
    primary_domain: str
    domains: tuple[str, ...]
    max_users: int | None
    min_password_length: int
    users: int
    # Reservations still in msDS-Settings (made before they moved to keywords).
    legacy_reserved: frozenset[str]


def parse(tenant: str, values: Iterable[object]) -> TenantState:
    single: dict[str, str] = {}
    reserved: set[str] = set()
    for key, rest in key_values.pairs(values):
        if key == RESERVED:
            reserved.add(rest)
        elif key not in LISTS:
            single[key] = rest
    return TenantState(
        tenant=tenant,
        primary_domain=single.get("primary_domain", ""),
        domains=tuple(d for d in single.get("domains", "").split(",") if d),
        max_users=int(single["max_users"]) if "max_users" in single else None,
        min_password_length=int(single.get("min_password_length", "0")),
        users=int(single.get("users", "0")),
        legacy_reserved=frozenset(reserved),
    )


def read(directory: Directory, tenant: str, base_dn: str) -> TenantState | None:
    entry = directory.read(names.settings_dn(tenant, base_dn), [SETTINGS_ATTRIBUTE])
    if entry is None:
        return None
    return parse(tenant, entry.values(SETTINGS_ATTRIBUTE))


def tenant_ids(directory: Directory) -> list[str]:
    """Every tenant's id: the OUs directly below ``OU=Tenants``, sorted."""
    tenants = names.tenants_dn(directory.base_dn)
    found = directory.search(tenants, "(objectClass=organizationalUnit)", Scope.ONE_LEVEL, ["ou"])
    return sorted(str(e.first("ou")) for e in found)


# The per-user lists.


def list_value(kind: str, name: str, attribute: str = LISTS_ATTRIBUTE) -> str:
    """How ``name`` is written on the list ``kind`` in ``attribute`` (lower case)."""
    if attribute == SETTINGS_ATTRIBUTE:
        return key_values.item(kind, name.lower())
    return f"{kind}:{name.lower()}"


def listed(entry: Entry, kind: str) -> dict[str, str]:
    """The names on the list ``kind`` of a settings entry read with both attributes, each
    with the attribute that holds it."""
    out = dict.fromkeys(
        key_values.all_of(entry.values(SETTINGS_ATTRIBUTE), kind), SETTINGS_ATTRIBUTE
    )
    for raw in entry.values(LISTS_ATTRIBUTE):
        prefix, colon, name = str(raw).partition(":")
        if colon and prefix == kind:
            out[name] = LISTS_ATTRIBUTE
    return out


def is_listed(directory: Directory, settings_dn: str, kind: str, name: str) -> bool:
    """Whether ``name`` is on the list ``kind`` in ``keywords``: one base search with an
    equality filter, whose cost does not grow with the list."""
    wanted = filter_value(list_value(kind, name))
    return bool(directory.search(settings_dn, f"({LISTS_ATTRIBUTE}={wanted})", Scope.BASE, ["cn"]))


def list_change(
    change: Change, kind: str, where: dict[str, str]
) -> dict[str, list[tuple[Change, list[str]]]]:
    """One modify's worth of ``change`` to the names in ``where`` (name -> attribute)."""
    out: dict[str, list[tuple[Change, list[str]]]] = {}
    for name, attribute in where.items():
        values = out.setdefault(attribute, [(change, [])])[0][1]
        values.append(list_value(kind, name, attribute))
    return out


def moved_lists(entry: Entry) -> dict[str, list[tuple[Change, list[str]]]]:
    """The one modify that moves a settings entry's lists out of ``msDS-Settings`` into
    ``keywords`` (nothing to do: empty).  A name already in both is only deleted."""
    pairs = key_values.pairs(entry.values(SETTINGS_ATTRIBUTE))
    legacy = [(kind, name) for kind, name in pairs if kind in LISTS]
    if not legacy:
        return {}
    present = {str(v).lower() for v in entry.values(LISTS_ATTRIBUTE)}
    added = sorted({list_value(kind, name) for kind, name in legacy} - present)
    changes = {
        SETTINGS_ATTRIBUTE: [
            (Change.DELETE, [key_values.item(kind, name) for kind, name in legacy])
        ]
    }
    if added:
        changes[LISTS_ATTRIBUTE] = [(Change.ADD, added)]
    return changes


def with_legacy_lists(directory: Directory) -> list[Entry]:
    """The tenants' settings entries that still hold a list in ``msDS-Settings``, read
    with both attributes: one search, not a read per tenant."""
    legacy = "".join(f"({SETTINGS_ATTRIBUTE}={kind}=*)" for kind in LISTS)
    return directory.search(
        names.tenants_dn(directory.base_dn),
        f"(&(objectClass=msDS-App-Configuration)(|{legacy}))",
        Scope.SUBTREE,
        [SETTINGS_ATTRIBUTE, LISTS_ATTRIBUTE],
    )
