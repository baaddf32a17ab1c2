"""The ldap3 edge: one bound LDAPS connection to the domain controller.

ldap3's connections are made here and nowhere else in ``workers`` (its pure string
functions are used by ``escaping`` and ``memory``, in this room too); its exceptions are
translated at this boundary into :class:`DirectoryUnavailable` (transient: retry) and
:class:`DirectoryRefused` (permanent: the directory said no).
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from typing import Any, Self
from urllib.parse import urlsplit

import ldap3
from ldap3.core import exceptions as ldap_errors
from ldap3.protocol.microsoft import security_descriptor_control

from workers.directory.port import (
    Change,
    Changes,
    DirectoryError,
    DirectoryRefused,
    DirectoryUnavailable,
    Entry,
    Scope,
)
from workers.runtime.settings import DomainController, Settings

# Result codes after which the same request may succeed later.
_TRANSIENT_RESULTS = frozenset({"busy", "unavailable", "timeLimitExceeded"})
_SCOPES = {Scope.BASE: ldap3.BASE, Scope.ONE_LEVEL: ldap3.LEVEL, Scope.SUBTREE: ldap3.SUBTREE}
_CHANGES = {
    Change.ADD: ldap3.MODIFY_ADD,
    Change.DELETE: ldap3.MODIFY_DELETE,
    Change.REPLACE: ldap3.MODIFY_REPLACE,
}
DACL_SECURITY_INFORMATION = 0x04


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


class LdapDirectory:
    """A bound LDAPS connection implementing :class:`workers.directory.Directory`."""

    def __init__(self, connection: ldap3.Connection, base_dn: str) -> None:
        self._conn = connection
        self._base_dn = base_dn

    @classmethod
    def connect(cls, settings: Settings, dc: DomainController | None = None) -> Self:
        """A connection to ``dc``; without one, to the first of the settings' DCs that
        answers (an operator's command: any DC of the domain will do)."""
        if dc is not None:
            return cls._connect(settings, dc)
        failed: DirectoryUnavailable | None = None
        for candidate in settings.domain_controllers:
            try:
                return cls._connect(settings, candidate)
            except DirectoryUnavailable as exc:
                failed = exc
        raise failed or DirectoryUnavailable("no DC is configured")

    @classmethod
    def _connect(cls, settings: Settings, dc: DomainController) -> Self:
        url = urlsplit(dc.url)
        if url.scheme != "ldaps" or not url.hostname:
            raise DirectoryRefused("configuration", f"{dc.url!r} is not an ldaps:// URL")
        # Always validated, against the CA file or else the system's CAs, unless validation
        # is switched off by name (the worker logs that at start).
        insecure = settings.ldap_tls_insecure_skip_verify
        tls = ldap3.Tls(
            validate=ssl.CERT_NONE if insecure else ssl.CERT_REQUIRED,
            ca_certs_file=settings.ldap_ca_file or None,
            valid_names=[dc.tls_name] if dc.tls_name else None,
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
        connection = ldap3.Connection(
            server,
            user=settings.ldap_bind_dn,
            password=settings.ldap_bind_password,
            authentication=ldap3.SIMPLE,
            client_strategy=ldap3.SYNC,
            raise_exceptions=True,
            receive_timeout=settings.ldap_timeout,
            auto_bind=ldap3.AUTO_BIND_NONE,
            read_only=False,
        )
        try:
            with translated_errors():
                connection.open()
                connection.bind()
        except DirectoryError:
            _close_socket(connection)  # ldap3 keeps the socket of a connect that failed
            raise
        return cls(connection, settings.ldap_base_dn)

    def close(self) -> None:
        try:
            with translated_errors():
                self._conn.unbind()
        finally:
            _close_socket(self._conn)  # the DC went away: ldap3 leaves the socket open

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    @property
    def base_dn(self) -> str:
        return self._base_dn

    @property
    def configuration_nc(self) -> str:
        info = self._conn.server.info
        value = info.other.get("configurationNamingContext") if info else None
        if not value:
            raise DirectoryRefused("noRootDSE", "the root DSE names no configurationNamingContext")
        return str(value[0])

    def read(self, dn: str, attributes: Sequence[str]) -> Entry | None:
        found = self._search_or_none(dn, "(objectClass=*)", Scope.BASE, attributes)
        return found[0] if found else None

    def search(
        self, base: str, ldap_filter: str, scope: Scope, attributes: Sequence[str]
    ) -> list[Entry]:
        return self._search_or_none(base, ldap_filter, scope, attributes) or []

    def _search_or_none(
        self,
        base: str,
        ldap_filter: str,
        scope: Scope,
        attributes: Sequence[str],
        controls: Any = None,
    ) -> list[Entry] | None:
        try:
            with translated_errors():
                self._conn.search(
                    base,
                    ldap_filter,
                    _SCOPES[scope],
                    attributes=list(attributes),
                    controls=controls,
                )
        except DirectoryRefused as exc:
            if exc.result == "noSuchObject":
                return None
            raise
        return [_entry(r) for r in self._conn.response if r.get("type") == "searchResEntry"]

    def add(self, dn: str, object_class: Sequence[str], attributes: Mapping[str, Any]) -> None:
        with translated_errors():
            self._conn.add(dn, list(object_class), dict(attributes))

    def modify(self, dn: str, changes: Changes) -> None:
        ldap_changes = {
            name: [(_CHANGES[op], list(values)) for op, values in ops]
            for name, ops in changes.items()
        }
        try:
            with translated_errors():
                self._conn.modify(dn, ldap_changes)
        except DirectoryRefused as exc:
            raise _standard(exc) from exc

    def delete(self, dn: str) -> None:
        with translated_errors():
            self._conn.delete(dn)

    def read_security_descriptor(self, dn: str) -> bytes | None:
        found = self._search_or_none(
            dn,
            "(objectClass=*)",
            Scope.BASE,
            ["nTSecurityDescriptor"],
            controls=security_descriptor_control(sdflags=DACL_SECURITY_INFORMATION),
        )
        if not found:
            return None
        value = found[0].first("nTSecurityDescriptor")
        return bytes(value) if value is not None else None

    def write_dacl(self, dn: str, descriptor: bytes) -> None:
        with translated_errors():
            self._conn.modify(
                dn,
                {"nTSecurityDescriptor": [(ldap3.MODIFY_REPLACE, [descriptor])]},
                controls=security_descriptor_control(sdflags=DACL_SECURITY_INFORMATION),
            )


# Attributes whose values are bytes; every other value is returned as UTF-8 text.
BINARY_ATTRIBUTES = frozenset(
    {
        "objectsid",
        "objectguid",
        "ntsecuritydescriptor",
        "msds-bytearray",
        "tokengroups",
        "invocationid",
        "repluptodatevector",
    }
)


def _close_socket(connection: ldap3.Connection) -> None:
    sock = getattr(connection, "socket", None)
    if sock is not None:
        with suppress(OSError):
            sock.close()


def _standard(exc: DirectoryRefused) -> DirectoryRefused:
    """Samba's own answers for linked attributes (``member``), measured on 4.17, as the
    standard results: adding a present value is ``entryAlreadyExists`` ("... already
    exists"); deleting an absent one is ``unwillingToPerform``, worded "... already
    deleted" when the value was there once and "... doesn't exist for target GUID" when
    it never was."""
    text = str(exc)
    if exc.result == "entryAlreadyExists" and "Attribute" in text and "already exists" in text:
        return DirectoryRefused("attributeOrValueExists", text)
    absent = "already deleted" in text or "doesn't exist for target GUID" in text
    if exc.result == "unwillingToPerform" and absent:
        return DirectoryRefused("noSuchAttribute", text)
    return exc


def _entry(response: Mapping[str, Any]) -> Entry:
    raw: Mapping[str, list[bytes]] = response.get("raw_attributes", {})
    attributes = {
        name: [bytes(v) if name.lower() in BINARY_ATTRIBUTES else v.decode("utf-8") for v in values]
        for name, values in raw.items()
    }
    return Entry(dn=str(response["dn"]), attributes=attributes)
