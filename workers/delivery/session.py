"""The worker's way to the directory: opened lazily through a factory, kept while it works,
dropped when it fails.

A :class:`Session` is one open directory with what every job needs beside it (the realm,
read once per connection, and the keys); :class:`Sessions` makes them from a factory the
worker is handed (the ldap3 edge in production, an in-memory directory in tests and the
pipeline benchmark).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from messages.envelope import Envelope
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

    def context(self, envelope: Envelope) -> Context:
        """What the steps of ``envelope``'s job need: its tag and the keys."""
        return self.keys.context(self.realm, envelope.idempotency_key, self.sam_digits)


class SessionSource(Protocol):
    """Where :func:`workers.delivery.decisions.decide` gets its directory from."""

    def open(self) -> Session:
        """The open session, connecting first if there is none."""

    def drop(self) -> None:
        """Forget the session (it failed): the next :meth:`open` connects anew."""


class Sessions:
    """Sessions from ``connect``, one at a time, for a fleet account ``provisioner_dn``."""

    def __init__(
        self,
        connect: Callable[[], Directory],
        provisioner_dn: str,
        keys: KeyRing,
        sam_digits: int,
    ) -> None:
        self._connect = connect
        self._provisioner_dn = provisioner_dn
        self._keys = keys
        self._sam_digits = sam_digits
        self._session: Session | None = None

    def open(self) -> Session:
        if self._session is None:
            directory = self._connect()
            try:
                realm = read_realm(directory, self._provisioner_dn)
            except Exception:
                with contextlib.suppress(DirectoryUnavailable):
                    directory.close()
                raise
            self._session = Session(directory, realm, self._keys, self._sam_digits)
        return self._session

    def drop(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            with contextlib.suppress(DirectoryUnavailable):
                session.directory.close()
