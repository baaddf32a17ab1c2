"""Faults injected into a directory by a wrapper, for the rollback tests (no hook in
production code): the n-th write fails, permanently or as an outage, and deletes may
fail too.  It wraps the real DC and the in-memory directory alike."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from workers.directory.port import (
    Changes,
    Delegating,
    Directory,
    DirectoryRefused,
    DirectoryUnavailable,
)


class InjectedFault(DirectoryRefused):
    def __init__(self, write: int) -> None:
        super().__init__("unwillingToPerform", f"injected fault at write {write}")


class FaultyDirectory(Delegating):
    """A real directory whose write number ``fail_at`` fails; deletes fail too if asked."""

    def __init__(
        self,
        real: Directory,
        fail_at: int | None = None,
        *,
        transient: bool = False,
        fail_deletes: bool = False,
    ) -> None:
        super().__init__(real)
        self.fail_at = fail_at
        self.transient = transient
        self.fail_deletes = fail_deletes
        self.writes: list[str] = []
        self.faulted: str | None = None  # the write that was made to fail

    def _write(self, what: str) -> None:
        self.writes.append(what)
        if len(self.writes) == self.fail_at:
            self.faulted = what
            if self.transient:
                raise DirectoryUnavailable(f"injected outage at write {self.fail_at}")
            raise InjectedFault(self.fail_at)

    def add(self, dn: str, object_class: Sequence[str], attributes: Mapping[str, Any]) -> None:
        self._write(f"add {dn}")
        self.real.add(dn, object_class, attributes)

    def modify(self, dn: str, changes: Changes) -> None:
        self._write(f"modify {dn}")
        self.real.modify(dn, changes)

    def delete(self, dn: str) -> None:
        if self.fail_deletes:
            raise DirectoryRefused("unwillingToPerform", f"injected: cannot delete {dn}")
        self.real.delete(dn)

    def write_dacl(self, dn: str, descriptor: bytes) -> None:
        self._write(f"dacl {dn}")
        self.real.write_dacl(dn, descriptor)
