"""The ldap3 edge: one bound LDAPS connection to the domain controller.

ldap3 is imported here and nowhere else in ``workers``; its exceptions are translated
at this boundary into :class:`DirectoryUnavailable` (transient: retry) and
:class:`DirectoryRefused` (permanent: the directory said no).
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Self
from urllib.parse import urlsplit

import ldap3
from ldap3.core import exceptions as ldap_errors

from workers.settings import Settings

# Result codes after which the same request may succeed later.
_TRANSIENT_RESULTS = frozenset({"busy", "unavailable", "timeLimitExceeded"})


class DirectoryError(Exception):
    """Base of the directory edge's errors."""


class DirectoryUnavailable(DirectoryError):
    """The directory could not be reached or was too busy to answer: try again later."""


class DirectoryRefused(DirectoryError):
    """The directory refused the operation; ``result`` is the LDAP result name."""

    def __init__(self, result: str, message: str) -> None:
        super().__init__(f"{result}: {message}")
        self.result = result


@dataclass(frozen=True)
class Entry:
    dn: str
    attributes: Mapping[str, list[Any]]

    def first(self, name: str) -> Any:
        values = self.attributes.get(name) or []
        return values[0] if values else None


@contextmanager
def translated_errors() -> Iterator[None]:
    try:
        yield
    except ldap_errors.LDAPOperationResult as exc:
        name = str(exc.description or exc.result)
        if name in _TRANSIENT_RESULTS:
            raise DirectoryUnavailable(f"{name}: {exc.message}") from exc
        raise DirectoryRefused(name, str(exc.message)) from exc
    except (
        ldap_errors.LDAPCommunicationError,
        ldap_errors.LDAPSocketOpenError,
        ldap_errors.LDAPSessionTerminatedByServerError,
        ldap_errors.LDAPSocketReceiveError,
        ldap_errors.LDAPResponseTimeoutError,
        ldap_errors.LDAPMaximumRetriesError,
        ldap_errors.LDAPStartTLSError,
        OSError,
    ) as exc:
        raise DirectoryUnavailable(f"{type(exc).__name__}: {exc}") from exc


class Directory:
    """A bound connection and the few operations the fleet needs."""

    def __init__(self, connection: ldap3.Connection, base_dn: str) -> None:
        self._conn = connection
        self.base_dn = base_dn

    @classmethod
    def connect(cls, settings: Settings) -> Directory:
        url = urlsplit(settings.ldap_url)
        if url.scheme != "ldaps" or not url.hostname:
            raise DirectoryRefused("configuration", f"{settings.ldap_url!r} is not an ldaps:// URL")
        tls = ldap3.Tls(
            validate=ssl.CERT_REQUIRED if settings.ldap_ca_file else ssl.CERT_NONE,
            ca_certs_file=settings.ldap_ca_file or None,
            valid_names=[settings.ldap_tls_name] if settings.ldap_tls_name else None,
            version=ssl.PROTOCOL_TLS_CLIENT,
        )
        server = ldap3.Server(
            url.hostname,
            port=url.port or 636,
            use_ssl=True,
            tls=tls,
            get_info=ldap3.DSA,
            connect_timeout=settings.ldap_timeout,
        )
        with translated_errors():
            connection = ldap3.Connection(
                server,
                user=settings.ldap_bind_dn,
                password=settings.ldap_bind_password,
                authentication=ldap3.SIMPLE,
                client_strategy=ldap3.SYNC,
                raise_exceptions=True,
                receive_timeout=settings.ldap_timeout,
                auto_bind=ldap3.AUTO_BIND_NO_TLS,
                read_only=False,
            )
        return cls(connection, settings.ldap_base_dn)

    def close(self) -> None:
        with translated_errors():
            self._conn.unbind()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    @property
    def configuration_nc(self) -> str:
        info = self._conn.server.info
        value = info.other.get("configurationNamingContext") if info else None
        if not value:
            raise DirectoryRefused("noRootDSE", "the root DSE names no configurationNamingContext")
        return str(value[0])

    def read(self, dn: str, attributes: Sequence[str]) -> Entry | None:
        """The entry at ``dn``, or ``None`` when there is none."""
        try:
            with translated_errors():
                self._conn.search(dn, "(objectClass=*)", ldap3.BASE, attributes=list(attributes))
        except DirectoryRefused as exc:
            if exc.result == "noSuchObject":
                return None
            raise
        if not self._conn.response:
            return None
        return _entry(self._conn.response[0])

    def children(self, dn: str, ldap_filter: str, attributes: Sequence[str]) -> list[Entry]:
        """The entries one level below ``dn`` matching ``ldap_filter`` (already escaped)."""
        with translated_errors():
            self._conn.search(dn, ldap_filter, ldap3.LEVEL, attributes=list(attributes))
        return [_entry(r) for r in self._conn.response if r.get("type") == "searchResEntry"]

    def add(
        self, dn: str, object_class: str | Sequence[str], attributes: Mapping[str, Any]
    ) -> None:
        with translated_errors():
            self._conn.add(dn, object_class, dict(attributes))

    def replace(self, dn: str, attributes: Mapping[str, Any]) -> None:
        changes = {
            name: [(ldap3.MODIFY_REPLACE, _as_list(value))] for name, value in attributes.items()
        }
        with translated_errors():
            self._conn.modify(dn, changes)


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else [value]


def _entry(response: Mapping[str, Any]) -> Entry:
    raw = response.get("raw_attributes", {})
    decoded = response.get("attributes", {})
    attributes = {name: _as_list(decoded.get(name, raw[name])) for name in raw}
    return Entry(dn=str(response["dn"]), attributes=attributes)
