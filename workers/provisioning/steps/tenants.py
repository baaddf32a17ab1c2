"""Steps over a whole tenant: its settings, its users' UPNs, suspension, deletion."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from workers.directory import key_values
from workers.directory.escaping import filter_value
from workers.directory.port import Change, Directory, DirectoryRefused, Entry, Scope
from workers.errors import PermanentError
from workers.provisioning import tenant_state
from workers.provisioning.steps.base import Applied, Context, Step, require
from workers.provisioning.steps.users import ACCOUNT_DISABLED, NORMAL_ACCOUNT

USERS_FILTER = "(&(objectCategory=person)(objectClass=user))"


def _users(directory: Directory, ou_dn: str, attributes: list[str]) -> list[Entry]:
    return directory.search(ou_dn, USERS_FILTER, Scope.ONE_LEVEL, ["cn", *attributes])


@dataclass(frozen=True)
class SetTenantSettings(Step):
    """Give single-valued settings (``key=value`` in msDS-Settings) new values."""

    settings_dn: str
    tenant: str
    values: Mapping[str, str]

    def describe(self) -> str:
        return f"set {', '.join(sorted(self.values))} in the settings of tenant {self.tenant}"

    def _current(self, directory: Directory) -> dict[str, str]:
        entry = require(directory, self.settings_dn, [tenant_state.SETTINGS_ATTRIBUTE], "tenant")
        stored = key_values.pairs(entry.values(tenant_state.SETTINGS_ATTRIBUTE))
        return {key: value for key, value in stored if key in self.values}

    def is_done(self, directory: Directory, ctx: Context) -> bool:
        del ctx
        return self._current(directory) == dict(self.values)

    def apply(self, directory: Directory, ctx: Context) -> Applied | None:
        del ctx
        current = self._current(directory)
        if current == dict(self.values):
            return None
        self._swap(directory, current, dict(self.values))
        return Applied(self, before=current)

    def _swap(self, directory: Directory, old: dict[str, str], new: dict[str, str]) -> None:
        ops: list[tuple[Change, list[str]]] = []
        gone = key_values.items({k: v for k, v in old.items() if new.get(k) != v})
        added = key_values.items({k: v for k, v in new.items() if old.get(k) != v})
        if gone:
            ops.append((Change.DELETE, gone))
        if added:
            ops.append((Change.ADD, added))
        directory.modify(self.settings_dn, {tenant_state.SETTINGS_ATTRIBUTE: ops})

    def undo(self, directory: Directory, ctx: Context, applied: Applied | None) -> None:
        del ctx
        if applied is not None and directory.read(self.settings_dn, ["cn"]) is not None:
            self._swap(directory, dict(self.values), dict(applied.before))


@dataclass(frozen=True)
class RewriteUpns(Step):
    """Move every user of the tenant to ``<cn>@<domain>``."""

    ou_dn: str
    domain: str

    def describe(self) -> str:
        return f"rewrite every UPN under {self.ou_dn} to @{self.domain}"

    def _stale(self, directory: Directory) -> list[tuple[str, str, str | None]]:
        out = []
        for user in _users(directory, self.ou_dn, ["userPrincipalName"]):
            wanted = f"{user.first('cn')}@{self.domain}"
            current = user.first("userPrincipalName")
            if current != wanted:
                out.append((user.dn, wanted, current))
        return out

    def is_done(self, directory: Directory, ctx: Context) -> bool:
        del ctx
        return not self._stale(directory)

    def apply(self, directory: Directory, ctx: Context) -> Applied | None:
        del ctx
        stale = self._stale(directory)
        done: list[tuple[str, str | None]] = []
        for dn, wanted, current in stale:
            try:
                directory.modify(dn, {"userPrincipalName": [(Change.REPLACE, [wanted])]})
            except DirectoryRefused as exc:
                if exc.result == "constraintViolation":
                    raise PermanentError("upn_conflict", f"{wanted} is already in use") from exc
                raise
            done.append((dn, current))
        return Applied(self, before=done) if done else None

    def undo(self, directory: Directory, ctx: Context, applied: Applied | None) -> None:
        del ctx
        for dn, old in reversed(applied.before if applied else []):
            if directory.read(dn, ["cn"]) is not None:
                change = (Change.REPLACE, [old]) if old else (Change.DELETE, [])
                directory.modify(dn, {"userPrincipalName": [change]})


@dataclass(frozen=True)
class RefuseDomainsInUse(Step):
    """Fail (``domain_in_use``) if a user of the tenant still logs on with a dropped domain."""

    ou_dn: str
    domains: tuple[str, ...]

    def describe(self) -> str:
        return f"check that no user under {self.ou_dn} uses {', '.join(self.domains)}"

    def _in_use(self, directory: Directory) -> list[str]:
        used = []
        for domain in self.domains:
            ldap_filter = f"(&{USERS_FILTER}(userPrincipalName=*@{filter_value(domain)}))"
            if directory.search(self.ou_dn, ldap_filter, Scope.ONE_LEVEL, ["cn"]):
                used.append(domain)
        return used

    def is_done(self, directory: Directory, ctx: Context) -> bool:
        del ctx
        return not self._in_use(directory)

    def apply(self, directory: Directory, ctx: Context) -> Applied | None:
        del ctx
        used = self._in_use(directory)
        if used:
            raise PermanentError("domain_in_use", f"still in use: {', '.join(used)}")
        return None


@dataclass(frozen=True)
class SuspendUsers(Step):
    """Disable every enabled user, first noting each in the settings (``suspended:<cn>``),
    so that a resume re-enables exactly those and a retry never loses one."""

    ou_dn: str
    settings_dn: str

    def describe(self) -> str:
        return f"disable every enabled user under {self.ou_dn}, remembering which"

    def _enabled(self, directory: Directory) -> list[Entry]:
        users = _users(directory, self.ou_dn, ["userAccountControl"])
        return [u for u in users if not int(u.first("userAccountControl") or 0) & ACCOUNT_DISABLED]

    def is_done(self, directory: Directory, ctx: Context) -> bool:
        del ctx
        return not self._enabled(directory)

    def apply(self, directory: Directory, ctx: Context) -> Applied | None:
        del ctx
        enabled = self._enabled(directory)
        if not enabled:
            return None
        # Note them all in one write before disabling any: a crash in between leaves
        # noted, still enabled users, which the retry disables.
        listed = dict.fromkeys((str(u.first("cn")) for u in enabled), tenant_state.LISTS_ATTRIBUTE)
        _note(directory, self.settings_dn, Change.ADD, listed)
        for user in enabled:
            flags = int(user.first("userAccountControl") or NORMAL_ACCOUNT)
            directory.modify(
                user.dn, {"userAccountControl": [(Change.REPLACE, [flags | ACCOUNT_DISABLED])]}
            )
        return Applied(self, before=[u.dn for u in enabled])


@dataclass(frozen=True)
class ResumeUsers(Step):
    """Re-enable the users a suspension disabled, and forget them."""

    ou_dn: str
    settings_dn: str

    def describe(self) -> str:
        return f"re-enable the users suspended under {self.ou_dn}"

    def _suspended(self, directory: Directory) -> dict[str, str]:
        """The suspended users' cns, each with the attribute that lists it."""
        attributes = [tenant_state.SETTINGS_ATTRIBUTE, tenant_state.LISTS_ATTRIBUTE]
        entry = require(directory, self.settings_dn, attributes, "tenant")
        return tenant_state.listed(entry, tenant_state.SUSPENDED)

    def is_done(self, directory: Directory, ctx: Context) -> bool:
        del ctx
        return not self._suspended(directory)

    def apply(self, directory: Directory, ctx: Context) -> Applied | None:
        del ctx
        names = self._suspended(directory)
        if not names:
            return None
        for cn in names:  # enable first, forget after: a crash in between repeats harmlessly
            ldap_filter = f"(&{USERS_FILTER}(cn={filter_value(cn)}))"
            for user in directory.search(
                self.ou_dn, ldap_filter, Scope.ONE_LEVEL, ["userAccountControl"]
            ):  # gone since: skip
                flags = int(user.first("userAccountControl") or NORMAL_ACCOUNT)
                if flags & ACCOUNT_DISABLED:
                    directory.modify(
                        user.dn,
                        {"userAccountControl": [(Change.REPLACE, [flags & ~ACCOUNT_DISABLED])]},
                    )
        _note(directory, self.settings_dn, Change.DELETE, names)
        return Applied(self, before=sorted(names))


def _note(directory: Directory, settings_dn: str, change: Change, where: dict[str, str]) -> None:
    """Add or remove the ``suspended`` list's names (cn -> the attribute holding it) in one
    write; name by name on conflict."""
    conflicts = ("attributeOrValueExists", "noSuchAttribute")
    kind = tenant_state.SUSPENDED
    try:
        directory.modify(settings_dn, tenant_state.list_change(change, kind, where))
    except DirectoryRefused as exc:
        if exc.result not in conflicts:
            raise
        for cn, attribute in where.items():  # some were there (or gone) already: one at a time
            try:
                directory.modify(
                    settings_dn, tenant_state.list_change(change, kind, {cn: attribute})
                )
            except DirectoryRefused as inner:
                if inner.result not in conflicts:
                    raise


@dataclass(frozen=True)
class DeleteTree(Step):
    """Delete an OU and everything under it, deepest first, then read back that nothing is
    left.  Not undoable: plan it last."""

    dn: str

    def describe(self) -> str:
        return f"delete {self.dn} and everything under it, and read back that it is gone"

    def _entries(self, directory: Directory) -> list[str]:
        found = directory.search(self.dn, "(objectClass=*)", Scope.SUBTREE, ["cn"])
        return sorted((e.dn for e in found), key=lambda dn: dn.count(","), reverse=True)

    def is_done(self, directory: Directory, ctx: Context) -> bool:
        del ctx
        return not self._entries(directory)

    def apply(self, directory: Directory, ctx: Context) -> Applied | None:
        del ctx
        entries = self._entries(directory)
        for dn in entries:
            try:
                directory.delete(dn)
            except DirectoryRefused as exc:
                if exc.result != "noSuchObject":
                    raise
        left = self._entries(directory)
        if left:
            raise PermanentError("delete_incomplete", f"still present: {'; '.join(left)}")
        return Applied(self, before=entries) if entries else None
