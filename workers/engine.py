"""Turns one event into its effect in the directory.

Walking skeleton: ``tenant.created`` ensures the tenant's OU.  Every step checks, then
ensures, so that a redelivered message converges instead of failing.
"""

from __future__ import annotations

from messages.envelope import Envelope
from messages.events import TenantCreated
from workers import names
from workers.directory import Directory, DirectoryRefused


class PermanentError(Exception):
    """The event cannot succeed as it stands; ``code`` says why."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def handle(envelope: Envelope, directory: Directory) -> dict[str, str]:
    """Apply ``envelope`` and return the details of its effect."""
    match envelope.data:
        case TenantCreated() as event:
            return _create_tenant(event, directory)
        case _:
            raise PermanentError("unsupported_type", f"no handler for {envelope.type}")


def _create_tenant(event: TenantCreated, directory: Directory) -> dict[str, str]:
    dn = names.tenant_dn(event.tenant, directory.base_dn)
    if directory.read(dn, ["ou"]) is None:
        try:
            directory.add(dn, "organizationalUnit", {"description": event.name})
        except DirectoryRefused as exc:
            # Another worker may have created it between our read and our add.
            if exc.result != "entryAlreadyExists":
                raise
    return {"dn": dn}
