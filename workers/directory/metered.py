"""A directory whose every operation is counted and timed, in the worker's metrics."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, cast

from workers.directory.port import (
    Changes,
    Delegating,
    Directory,
    DirectoryRefused,
    DirectoryUnavailable,
    Entry,
    Scope,
)
from workers.runtime.metrics import Metrics


def _result(exc: BaseException | None) -> str:
    if exc is None:
        return "success"
    if isinstance(exc, DirectoryUnavailable):
        return "unavailable"
    if isinstance(exc, DirectoryRefused):
        return exc.result
    return "error"


class MeteredDirectory(Delegating):
    """A directory whose every operation is counted and timed."""

    def __init__(self, real: Directory, metrics: Metrics) -> None:
        super().__init__(real)
        self._metrics = metrics

    def _timed(self, operation: str, call: Callable[[], Any]) -> Any:
        started = time.perf_counter()
        outcome: BaseException | None = None
        try:
            return call()
        except BaseException as exc:
            outcome = exc
            raise
        finally:
            self._metrics.ldap_latency.labels(operation).observe(time.perf_counter() - started)
            self._metrics.ldap_operations.labels(operation, _result(outcome)).inc()

    def read(self, dn: str, attributes: Sequence[str]) -> Entry | None:
        return cast(
            "Entry | None",
            self._timed("read", lambda: self.real.read(dn, attributes)),
        )

    def search(
        self, base: str, ldap_filter: str, scope: Scope, attributes: Sequence[str]
    ) -> list[Entry]:
        return cast(
            "list[Entry]",
            self._timed(
                "search",
                lambda: self.real.search(base, ldap_filter, scope, attributes),
            ),
        )

    def add(self, dn: str, object_class: Sequence[str], attributes: Mapping[str, Any]) -> None:
        self._timed("add", lambda: self.real.add(dn, object_class, attributes))

    def modify(self, dn: str, changes: Changes) -> None:
        self._timed("modify", lambda: self.real.modify(dn, changes))

    def delete(self, dn: str) -> None:
        self._timed("delete", lambda: self.real.delete(dn))

    def read_security_descriptor(self, dn: str) -> bytes | None:
        return cast(
            "bytes | None",
            self._timed("read_sd", lambda: self.real.read_security_descriptor(dn)),
        )

    def write_dacl(self, dn: str, descriptor: bytes) -> None:
        self._timed("write_dacl", lambda: self.real.write_dacl(dn, descriptor))

    def operations(self, kinds: Sequence[str]) -> int:
        """How many operations of these kinds were made (for the benchmark)."""
        return int(
            sum(
                sample.value
                for family in self._metrics.ldap_operations.collect()
                for sample in family.samples
                if sample.name.endswith("_total") and sample.labels["operation"] in kinds
            )
        )


READS = ("read", "search", "read_sd")
WRITES = ("add", "modify", "delete", "write_dacl")
