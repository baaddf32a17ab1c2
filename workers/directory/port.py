"""The directory as the engine sees it: a small interface, its entries and its errors.

The real implementation is :class:`workers.directory.ldap_directory.LdapDirectory` (ldap3 over
LDAPS); :class:`workers.directory.memory.MemoryDirectory` stands in for it in unit tests and
the pipeline benchmark.  Nothing here imports ldap3.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any, Protocol

from workers.errors import FleetError


class DirectoryError(FleetError):
    """Base of the directory edge's errors."""


class DirectoryUnavailable(DirectoryError):
    """The directory could not be reached or was too busy to answer: try again later."""

    transient = True

    def __init__(self, message: str) -> None:
        super().__init__("directory_unavailable", message)


class DirectoryRefused(DirectoryError):
    """The directory refused the operation; ``result`` is the LDAP result name."""

    def __init__(self, result: str, message: str) -> None:
        super().__init__(f"ldap_{result}", f"{result}: {message}")
        self.result = result


class Scope(Enum):
    BASE = "base"
    ONE_LEVEL = "one"
    SUBTREE = "sub"


class Change(Enum):
    ADD = "add"  # add these values
    DELETE = "delete"  # delete these values (all values when none are given)
    REPLACE = "replace"  # replace all values with these


Changes = Mapping[str, Sequence[tuple[Change, Sequence[Any]]]]


@dataclass(frozen=True)
class Entry:
    dn: str
    attributes: Mapping[str, list[Any]]

    def first(self, name: str) -> Any:
        values = self.values(name)
        return values[0] if values else None

    def values(self, name: str) -> list[Any]:
        for key, values in self.attributes.items():
            if key.lower() == name.lower():
                return values
        return []


class Directory(Protocol):
    """What the engine needs of a directory.  Filters are passed already escaped."""

    @property
    def base_dn(self) -> str: ...

    @property
    def configuration_nc(self) -> str: ...

    def read(self, dn: str, attributes: Sequence[str]) -> Entry | None:
        """The entry at ``dn``, or ``None`` when there is none."""

    def search(
        self, base: str, ldap_filter: str, scope: Scope, attributes: Sequence[str]
    ) -> list[Entry]: ...

    def add(self, dn: str, object_class: Sequence[str], attributes: Mapping[str, Any]) -> None: ...

    def modify(self, dn: str, changes: Changes) -> None: ...

    def delete(self, dn: str) -> None: ...

    def read_security_descriptor(self, dn: str) -> bytes | None:
        """The owner-less DACL part of ``dn``'s security descriptor (SD flags 0x04)."""

    def write_dacl(self, dn: str, descriptor: bytes) -> None: ...

    def close(self) -> None: ...


class Delegating:
    """A directory that hands every operation to another; wrappers override what they watch
    (metrics, fault injection in tests)."""

    def __init__(self, real: Directory) -> None:
        self.real = real

    @property
    def base_dn(self) -> str:
        return self.real.base_dn

    @property
    def configuration_nc(self) -> str:
        return self.real.configuration_nc

    def read(self, dn: str, attributes: Sequence[str]) -> Entry | None:
        return self.real.read(dn, attributes)

    def search(
        self, base: str, ldap_filter: str, scope: Scope, attributes: Sequence[str]
    ) -> list[Entry]:
        return self.real.search(base, ldap_filter, scope, attributes)

    def add(self, dn: str, object_class: Sequence[str], attributes: Mapping[str, Any]) -> None:
        self.real.add(dn, object_class, attributes)

    def modify(self, dn: str, changes: Changes) -> None:
        self.real.modify(dn, changes)

    def delete(self, dn: str) -> None:
        self.real.delete(dn)

    def read_security_descriptor(self, dn: str) -> bytes | None:
        return self.real.read_security_descriptor(dn)

    def write_dacl(self, dn: str, descriptor: bytes) -> None:
        self.real.write_dacl(dn, descriptor)

    def close(self) -> None:
        self.real.close()
