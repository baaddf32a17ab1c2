"""The one-time platform setup of the directory (``provisioner directory bootstrap``).

It enables List Object Mode and creates ``OU=Tenants``.  It is idempotent, reads back
what it wrote, and raises :class:`BootstrapError` when the result is not in place: it
is never a silent no-op.
"""

from __future__ import annotations

from workers import names
from workers.directory import Directory, DirectoryRefused

LIST_OBJECT_MODE_POSITION = 2  # the third character of dSHeuristics: fDoListObject


class BootstrapError(Exception):
    """The directory could not be set up as the fleet needs it."""


def with_list_object_mode(current: str | None) -> str:
    """``dSHeuristics`` with fDoListObject set, every other character kept.

    An empty value becomes ``001``; a shorter one is padded with ``0``.
    """
    value = (current or "").ljust(LIST_OBJECT_MODE_POSITION + 1, "0")
    return value[:LIST_OBJECT_MODE_POSITION] + "1" + value[LIST_OBJECT_MODE_POSITION + 1 :]


def list_object_mode_enabled(value: str | None) -> bool:
    return (
        bool(value)
        and len(value or "") > LIST_OBJECT_MODE_POSITION
        and ((value or "")[LIST_OBJECT_MODE_POSITION] == "1")
    )


def bootstrap(directory: Directory) -> list[str]:
    """Bring the directory to the state the fleet needs; return what was changed."""
    changes: list[str] = []
    ds_dn = names.directory_service_dn(directory.configuration_nc)
    entry = directory.read(ds_dn, ["dSHeuristics"])
    if entry is None:
        raise BootstrapError(f"{ds_dn} does not exist: is this an Active Directory domain?")
    current = entry.first("dSHeuristics")
    if not list_object_mode_enabled(current):
        wanted = with_list_object_mode(current)
        try:
            directory.replace(ds_dn, {"dSHeuristics": wanted})
        except DirectoryRefused as exc:
            raise BootstrapError(f"cannot enable List Object Mode on {ds_dn}: {exc}") from exc
        changes.append(f"dSHeuristics {current!r} -> {wanted!r}")
    tenants = names.tenants_dn(directory.base_dn)
    if directory.read(tenants, ["ou"]) is None:
        try:
            directory.add(tenants, "organizationalUnit", {"description": "Hosted tenants"})
        except DirectoryRefused as exc:
            raise BootstrapError(f"cannot create {tenants}: {exc}") from exc
        changes.append(f"created {tenants}")
    check(directory)
    return changes


def check(directory: Directory) -> None:
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
