"""The worker's way to the directory: opened lazily through a factory, kept while it works,
dropped when it fails.

A :class:`Session` is one open directory with what every job needs beside it (the realm,
read once per connection, and the keys); :class:`Sessions` makes them from the factories
the worker is handed, one per DC (the ldap3 edge in production, an in-memory directory in
tests and the pipeline benchmark).  With one DC, every job acts on it; with several, a
job acts on the DC that :mod:`workers.delivery.pinning`'s rule picks for its tenant.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Protocol

from messages.envelope import Envelope
from workers.delivery import pinning
from workers.directory import replication
from workers.directory.port import Directory, DirectoryUnavailable
from workers.provisioning.keys import KeyRing
from workers.provisioning.realm import Realm, read_realm
from workers.provisioning.steps import Context


@dataclass(frozen=True)
class Session:
    directory: Directory
    realm: Realm
    keys: KeyRing
    sam_digits: int
    dc: str = ""  # the DC's name, when the fleet knows several
    invocation_id: str = ""  # and its invocation ID

    def context(self, envelope: Envelope) -> Context:
        """What the steps of ``envelope``'s job need: its tag and the keys."""
        return self.keys.context(self.realm, envelope.idempotency_key, self.sam_digits)


class SessionSource(Protocol):
    """Where :func:`workers.delivery.decisions.decide` gets its directory from."""

    def open(self) -> Session:
        """A session on a DC that answers, connecting first if there is none."""

    def acting(self, tenant: str, key: str) -> AbstractContextManager[Session]:
        """The session a job of ``tenant`` (idempotency ``key``) acts through."""

    def drop(self) -> None:
        """Forget the sessions (they failed): the next use connects anew."""


# A DC that did not answer is not asked again for this long: a job does not wait on a
# connect to a DC that is down for each of the others it stakes on.
RETRY_DC_AFTER_SECONDS = 5.0


class Sessions:
    """Sessions for a fleet account ``provisioner_dn``: ``connect`` makes a directory,
    or, for several DCs, ``connect`` maps each DC's name to its own."""

    def __init__(
        self,
        connect: Callable[[], Directory] | Mapping[str, Callable[[], Directory]],
        provisioner_dn: str,
        keys: KeyRing,
        sam_digits: int,
    ) -> None:
        self._connects = dict(connect) if isinstance(connect, Mapping) else {"": connect}
        self._provisioner_dn = provisioner_dn
        self._keys = keys
        self._sam_digits = sam_digits
        self._sessions: dict[str, Session] = {}
        self._down_until: dict[str, float] = {}

    @property
    def pinned(self) -> bool:
        """Several DCs: jobs follow the pinning rule."""
        return len(self._connects) > 1

    def open(self) -> Session:
        failed: DirectoryUnavailable | None = None
        for dc in self._connects:
            try:
                return self._open(dc)
            except DirectoryUnavailable as exc:
                failed = exc
        raise failed or DirectoryUnavailable("no DC is configured")

    def _open(self, dc: str) -> Session:
        session = self._sessions.get(dc)
        if session is not None:
            return session
        directory = self._connect(dc)
        try:
            realm = read_realm(directory, self._provisioner_dn)
            invocation = replication.invocation_id(directory) if self.pinned else ""
        except Exception:
            with contextlib.suppress(DirectoryUnavailable):
                directory.close()
            raise
        session = Session(
            directory,
            realm,
            self._keys,
            self._sam_digits,
            dc,
            invocation,
        )
        self._sessions[dc] = session
        return session

    def _connect(self, dc: str) -> Directory:
        if time.monotonic() < self._down_until.get(dc, 0.0):
            raise DirectoryUnavailable(f"{dc} did not answer a moment ago")
        try:
            return self._connects[dc]()
        except DirectoryUnavailable:
            self._down_until[dc] = time.monotonic() + RETRY_DC_AFTER_SECONDS
            raise

    def _reach(self, dc: str) -> Session | None:
        try:
            return self._open(dc)
        except DirectoryUnavailable:
            self._drop(dc)
            return None

    def acting(self, tenant: str, key: str) -> AbstractContextManager[Session]:
        if not self.pinned:
            return contextlib.nullcontext(self.open())
        return self._acting(tenant, key)

    @contextmanager
    def _acting(self, tenant: str, key: str) -> Iterator[Session]:
        order = pinning.tenant_order(tenant, self._connects)
        with pinning.act(order, self._reach, tenant, key, self._drop) as session:
            yield session

    def _drop(self, dc: str) -> None:
        session = self._sessions.pop(dc, None)
        if session is not None:
            with contextlib.suppress(DirectoryUnavailable):
                session.directory.close()

    def drop(self) -> None:
        for dc in list(self._sessions):
            self._drop(dc)
