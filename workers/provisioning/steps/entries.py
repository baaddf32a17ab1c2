"""Steps on whole entries: create (tagged with the job), change attributes, delete."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from workers.directory.port import Change, Directory, DirectoryRefused
from workers.errors import PermanentError
from workers.provisioning.steps.base import TAG_ATTRIBUTE, Applied, Context, Step, require, tag_of


@dataclass(frozen=True)
class CreateEntry(Step):
    """Create an object, tagged with the job; adopt it if this job created it already."""

    dn: str
    object_classes: tuple[str, ...]
    attributes: Mapping[str, Any]
    conflict_code: str = "object_exists"
    label: str = "object"

    def describe(self) -> str:
        return f"create {self.label} {self.dn}"

    def is_done(self, directory: Directory, ctx: Context) -> bool:
        return tag_of(directory, self.dn) == ctx.tag

    def apply(self, directory: Directory, ctx: Context) -> Applied | None:
        if self._adopt(directory, ctx):
            return Applied(self)
        try:
            directory.add(self.dn, self.object_classes, {**self.attributes, TAG_ATTRIBUTE: ctx.tag})
        except DirectoryRefused as exc:
            if exc.result == "entryAlreadyExists" and self._adopt(directory, ctx):
                return Applied(self)  # another worker on the same job was first
            raise
        return Applied(self)

    def _adopt(self, directory: Directory, ctx: Context) -> bool:
        tag = tag_of(directory, self.dn)
        if tag is None:
            return False
        if tag != ctx.tag:
            raise PermanentError(self.conflict_code, f"{self.dn} exists and is not this job's")
        return True

    def undo(self, directory: Directory, ctx: Context, applied: Applied | None) -> None:
        del applied
        if tag_of(directory, self.dn) == ctx.tag:
            directory.delete(self.dn)


@dataclass(frozen=True)
class ReplaceAttributes(Step):
    """Give attributes these values (``None``: remove the attribute); absent ones stay."""

    dn: str
    values: Mapping[str, Any]
    what: str = "object"  # names the error when the entry is missing: <what>_not_found

    def describe(self) -> str:
        return f"set {', '.join(sorted(self.values))} of {self.dn}"

    def _changed(self, directory: Directory) -> dict[str, list[Any]]:
        entry = require(directory, self.dn, list(self.values), self.what)
        before: dict[str, list[Any]] = {}
        for name, wanted in self.values.items():
            current = [str(v) for v in entry.values(name)]
            target = [] if wanted is None else [str(v) for v in _as_list(wanted)]
            if sorted(current) != sorted(target):
                before[name] = current
        return before

    def is_done(self, directory: Directory, ctx: Context) -> bool:
        del ctx
        return not self._changed(directory)

    def apply(self, directory: Directory, ctx: Context) -> Applied | None:
        del ctx
        before = self._changed(directory)
        if not before:
            return None
        directory.modify(self.dn, {name: [_replacement(self.values[name])] for name in before})
        return Applied(self, before=before)

    def undo(self, directory: Directory, ctx: Context, applied: Applied | None) -> None:
        del ctx
        if applied is None or directory.read(self.dn, ["cn"]) is None:
            return
        directory.modify(
            self.dn,
            {
                name: [(Change.REPLACE, list(old))] if old else [(Change.DELETE, [])]
                for name, old in applied.before.items()
            },
        )


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else [value]


def _replacement(value: Any) -> tuple[Change, list[Any]]:
    return (Change.DELETE, []) if value is None else (Change.REPLACE, _as_list(value))


@dataclass(frozen=True)
class DeleteEntry(Step):
    """Delete an object; one that is gone already is fine.  Not undoable: plan it last."""

    dn: str
    label: str = "object"

    def describe(self) -> str:
        return f"delete {self.label} {self.dn}"

    def is_done(self, directory: Directory, ctx: Context) -> bool:
        del ctx
        return directory.read(self.dn, ["cn"]) is None

    def apply(self, directory: Directory, ctx: Context) -> Applied | None:
        del ctx
        if directory.read(self.dn, ["cn"]) is None:
            return None
        try:
            directory.delete(self.dn)
        except DirectoryRefused as exc:
            if exc.result != "noSuchObject":
                raise
            return None
        return Applied(self)
