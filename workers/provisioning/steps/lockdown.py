"""The tenant OU's lock-down step."""

from __future__ import annotations

from dataclasses import dataclass

from workers.directory.port import Directory
from workers.provisioning import security
from workers.provisioning.realm import Realm, read_sid
from workers.provisioning.steps.base import Applied, Context, Step


@dataclass(frozen=True)
class ProtectTenantOu(Step):
    """Give the tenant's OU its protected DACL (see :func:`security.tenant_ou_dacl`)."""

    tenant: str
    ou_dn: str
    users_group_dn: str
    admins_group_dn: str

    def describe(self) -> str:
        return f"lock down {self.ou_dn}: protected DACL, tenant groups only"

    def wanted(self, directory: Directory, realm: Realm) -> security.Dacl:
        return security.tenant_ou_dacl(
            security.TenantPrincipals(
                domain_sid=realm.domain_sid,
                provisioner_sid=realm.provisioner_sid,
                users_sid=read_sid(directory, self.users_group_dn),
                admins_sid=read_sid(directory, self.admins_group_dn),
            )
        )

    def _current(self, directory: Directory) -> tuple[bytes | None, security.Dacl | None]:
        raw = directory.read_security_descriptor(self.ou_dn)
        if raw is None:
            return None, None
        try:
            return raw, security.decode(raw)
        except security.UnsupportedAce:
            return raw, None

    def is_done(self, directory: Directory, ctx: Context) -> bool:
        if directory.read(self.users_group_dn, ["cn"]) is None:
            return False
        _, current = self._current(directory)
        return current is not None and _same(current, self.wanted(directory, ctx.realm))

    def apply(self, directory: Directory, ctx: Context) -> Applied | None:
        wanted = self.wanted(directory, ctx.realm)
        raw, current = self._current(directory)
        if current is not None and _same(current, wanted):
            return None
        directory.write_dacl(self.ou_dn, security.encode(wanted))
        return Applied(self, before=raw)

    def undo(self, directory: Directory, ctx: Context, applied: Applied | None) -> None:
        del ctx
        if (
            applied is not None
            and applied.before is not None
            and (directory.read(self.ou_dn, ["ou"]) is not None)
        ):
            directory.write_dacl(self.ou_dn, applied.before)


def _same(current: security.Dacl, wanted: security.Dacl) -> bool:
    return (
        current.protected == wanted.protected
        and current.inherited == 0
        and current.explicit_set() == wanted.explicit_set()
    )


@dataclass(frozen=True)
class SetObjectDacl(Step):
    """Rewrite one object's explicit ACEs to ``aces``, inheritance on (the audit's repair of
    an object below a tenant OU)."""

    dn: str
    aces: tuple[security.Ace, ...]

    def describe(self) -> str:
        return f"restore the ACL of {self.dn}: its class's default ACEs, inheriting"

    def _wanted(self) -> security.Dacl:
        return security.Dacl(protected=False, aces=self.aces)

    def _in_place(self, raw: bytes | None) -> bool:
        if raw is None:
            return True  # gone: nothing to restore
        try:
            current = security.decode(raw)
        except security.UnsupportedAce:
            return False
        return not current.protected and current.explicit_set() == frozenset(self.aces)

    def is_done(self, directory: Directory, ctx: Context) -> bool:
        del ctx
        return self._in_place(directory.read_security_descriptor(self.dn))

    def apply(self, directory: Directory, ctx: Context) -> Applied | None:
        del ctx
        before = directory.read_security_descriptor(self.dn)
        if self._in_place(before):
            return None
        directory.write_dacl(self.dn, security.encode(self._wanted()))
        return Applied(self, before=before)
