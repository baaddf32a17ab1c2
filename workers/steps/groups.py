"""Steps on group membership."""

from __future__ import annotations

from dataclasses import dataclass

from workers.directory import Change, Directory, DirectoryRefused
from workers.steps.base import Applied, Context, Step


@dataclass(frozen=True)
class EnsureMembers(Step):
    group_dn: str
    member_dns: tuple[str, ...]

    def describe(self) -> str:
        return f"add {len(self.member_dns)} member(s) to {self.group_dn}"

    def _missing(self, directory: Directory) -> list[str]:
        entry = directory.read(self.group_dn, ["member"])
        present = {str(v).lower() for v in (entry.values("member") if entry else [])}
        return [dn for dn in self.member_dns if dn.lower() not in present]

    def is_done(self, directory: Directory, ctx: Context) -> bool:
        del ctx
        return not self._missing(directory)

    def apply(self, directory: Directory, ctx: Context) -> Applied | None:
        missing = self._missing(directory)
        if not missing:
            return None
        try:
            directory.modify(self.group_dn, {"member": [(Change.ADD, missing)]})
        except DirectoryRefused as exc:
            if exc.result != "attributeOrValueExists":
                raise
            return self.apply(directory, ctx)  # another worker added some: add the rest
        return Applied(self, before=tuple(missing))

    def undo(self, directory: Directory, ctx: Context, applied: Applied | None) -> None:
        del ctx
        if applied is None or directory.read(self.group_dn, ["cn"]) is None:
            return
        try:
            directory.modify(self.group_dn, {"member": [(Change.DELETE, list(applied.before))]})
        except DirectoryRefused as exc:
            if exc.result != "noSuchAttribute":
                raise


@dataclass(frozen=True)
class EnsureNotMembers(Step):
    group_dn: str
    member_dns: tuple[str, ...]

    def describe(self) -> str:
        return f"remove {len(self.member_dns)} member(s) from {self.group_dn}"

    def _present(self, directory: Directory) -> list[str]:
        entry = directory.read(self.group_dn, ["member"])
        present = {str(v).lower() for v in (entry.values("member") if entry else [])}
        return [dn for dn in self.member_dns if dn.lower() in present]

    def is_done(self, directory: Directory, ctx: Context) -> bool:
        del ctx
        return not self._present(directory)

    def apply(self, directory: Directory, ctx: Context) -> Applied | None:
        present = self._present(directory)
        if not present:
            return None
        try:
            directory.modify(self.group_dn, {"member": [(Change.DELETE, present)]})
        except DirectoryRefused as exc:
            if exc.result != "noSuchAttribute":
                raise
            return self.apply(directory, ctx)
        return Applied(self, before=tuple(present))

    def undo(self, directory: Directory, ctx: Context, applied: Applied | None) -> None:
        del ctx
        if applied is None or directory.read(self.group_dn, ["cn"]) is None:
            return
        try:
            directory.modify(self.group_dn, {"member": [(Change.ADD, list(applied.before))]})
        except DirectoryRefused as exc:
            if exc.result != "attributeOrValueExists":
                raise
