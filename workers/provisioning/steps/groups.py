"""Steps on group membership.

They write first and read only on conflict: a group's ``member`` attribute grows with the
tenant, so reading it before every add would cost as much as the group is large.

Samba's own results for ``member`` conflicts are turned into the standard ones by the
ldap3 edge (``workers.directory.ldap_directory``).
"""

from __future__ import annotations

from dataclasses import dataclass

from workers.directory.port import Change, Directory, DirectoryRefused
from workers.provisioning.steps.base import Applied, Context, Step


def _members(directory: Directory, group_dn: str) -> set[str]:
    entry = directory.read(group_dn, ["member"])
    return {str(v).lower() for v in (entry.values("member") if entry else [])}


_DONE = {Change.ADD: "attributeOrValueExists", Change.DELETE: "noSuchAttribute"}


def _try(directory: Directory, group_dn: str, change: Change, dns: list[str]) -> bool:
    """Apply one membership change; False if the directory says it is (partly) done."""
    try:
        directory.modify(group_dn, {"member": [(change, dns)]})
    except DirectoryRefused as exc:
        if exc.result != _DONE[change]:
            raise
        return False
    return True


@dataclass(frozen=True)
class EnsureMembers(Step):
    group_dn: str
    member_dns: tuple[str, ...]

    def describe(self) -> str:
        return f"add {len(self.member_dns)} member(s) to {self.group_dn}"

    def _missing(self, directory: Directory) -> list[str]:
        present = _members(directory, self.group_dn)
        return [dn for dn in self.member_dns if dn.lower() not in present]

    def is_done(self, directory: Directory, ctx: Context) -> bool:
        del ctx
        return not self._missing(directory)

    def apply(self, directory: Directory, ctx: Context) -> Applied | None:
        del ctx
        if _try(directory, self.group_dn, Change.ADD, list(self.member_dns)):
            return Applied(self, before=self.member_dns)
        missing = self._missing(directory)  # some were members already: add the rest
        if missing and _try(directory, self.group_dn, Change.ADD, missing):
            return Applied(self, before=tuple(missing))
        return None

    def undo(self, directory: Directory, ctx: Context, applied: Applied | None) -> None:
        del ctx
        if applied is None or directory.read(self.group_dn, ["cn"]) is None:
            return
        _try(directory, self.group_dn, Change.DELETE, list(applied.before))


@dataclass(frozen=True)
class EnsureNotMembers(Step):
    group_dn: str
    member_dns: tuple[str, ...]

    def describe(self) -> str:
        return f"remove {len(self.member_dns)} member(s) from {self.group_dn}"

    def _present(self, directory: Directory) -> list[str]:
        present = _members(directory, self.group_dn)
        return [dn for dn in self.member_dns if dn.lower() in present]

    def is_done(self, directory: Directory, ctx: Context) -> bool:
        del ctx
        return not self._present(directory)

    def apply(self, directory: Directory, ctx: Context) -> Applied | None:
        del ctx
        if _try(directory, self.group_dn, Change.DELETE, list(self.member_dns)):
            return Applied(self, before=self.member_dns)
        present = self._present(directory)  # some were not members: remove the rest
        if present and _try(directory, self.group_dn, Change.DELETE, present):
            return Applied(self, before=tuple(present))
        return None

    def undo(self, directory: Directory, ctx: Context, applied: Applied | None) -> None:
        del ctx
        if applied is None or directory.read(self.group_dn, ["cn"]) is None:
            return
        _try(directory, self.group_dn, Change.ADD, list(applied.before))
