"""Provisioning steps: each checks, then ensures, and knows how to undo what it did.

A step is plain data (a frozen dataclass) until it is applied.  ``apply`` returns an
:class:`Applied` when it changed something (or adopted an object an earlier attempt of
the same job created), else ``None``.  Objects a job creates carry the job's tag in
``adminDescription``, so that a retry adopts them and a rollback removes exactly them,
even across attempts and workers.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from workers import names, passwords, security, tenant_state
from workers.directory import Change, Directory, DirectoryRefused, DirectoryUnavailable
from workers.errors import PermanentError
from workers.realm import Realm, read_sid

TAG_ATTRIBUTE = "adminDescription"
TAG_PREFIX = "provisioner-job:"
USER_CLASSES = ("top", "person", "organizationalPerson", "user")
NORMAL_ACCOUNT = 512
GLOBAL_SECURITY_GROUP = -2147483646  # ADS_GROUP_TYPE_GLOBAL_GROUP | SECURITY_ENABLED
MAX_SAM_CANDIDATES = 100
MAX_QUOTA_RACES = 50


def job_tag(idempotency_key: str) -> str:
    """The mark of one intent's objects: a hash of its idempotency key, nothing readable."""
    return TAG_PREFIX + hashlib.sha256(idempotency_key.encode()).hexdigest()[:32]


@dataclass(frozen=True)
class Context:
    """What steps need besides the directory: the realm, the job, and the keys."""

    realm: Realm
    tag: str
    unseal: Callable[[bytes, str], str]  # (sealed, field path) -> plaintext
    seal_for_results: Callable[[str], bytes] | None
    sam_digits: int = 10


@dataclass(frozen=True)
class Applied:
    step: Step
    before: Any = None  # what undo needs: a previous descriptor, the values added
    details: Mapping[str, Any] = field(default_factory=dict)


class Step(ABC):
    @abstractmethod
    def describe(self) -> str: ...

    @abstractmethod
    def is_done(self, directory: Directory, ctx: Context) -> bool:
        """Whether applying would change nothing (for dry runs)."""

    @abstractmethod
    def apply(self, directory: Directory, ctx: Context) -> Applied | None: ...

    def undo(self, directory: Directory, ctx: Context, applied: Applied | None) -> None:
        """Revert what this job did; ``applied`` is None when this attempt did not apply it."""
        del directory, ctx, applied


def _tag_of(directory: Directory, dn: str) -> str | None:
    entry = directory.read(dn, [TAG_ATTRIBUTE])
    if entry is None:
        return None
    return str(entry.first(TAG_ATTRIBUTE) or "")


@dataclass(frozen=True)
class CreateEntry(Step):
    """Create an object, tagged with the job; adopt it if this job created it already."""

    dn: str
    object_classes: tuple[str, ...]
    attributes: Mapping[str, Any]
    conflict_code: str = "object_exists"
    label: str = "object"

    def describe(self) -> str:
        return f"create {self.label} {self.dn}"

    def is_done(self, directory: Directory, ctx: Context) -> bool:
        return _tag_of(directory, self.dn) == ctx.tag

    def apply(self, directory: Directory, ctx: Context) -> Applied | None:
        if self._adopt(directory, ctx):
            return Applied(self)
        try:
            directory.add(self.dn, self.object_classes, {**self.attributes, TAG_ATTRIBUTE: ctx.tag})
        except DirectoryRefused as exc:
            if exc.result == "entryAlreadyExists" and self._adopt(directory, ctx):
                return Applied(self)  # another worker on the same job was first
            raise
        return Applied(self)

    def _adopt(self, directory: Directory, ctx: Context) -> bool:
        tag = _tag_of(directory, self.dn)
        if tag is None:
            return False
        if tag != ctx.tag:
            raise PermanentError(self.conflict_code, f"{self.dn} exists and is not this job's")
        return True

    def undo(self, directory: Directory, ctx: Context, applied: Applied | None) -> None:
        del applied
        if _tag_of(directory, self.dn) == ctx.tag:
            directory.delete(self.dn)


@dataclass(frozen=True)
class CreateUser(Step):
    """Create a user in one add: names, UPN, a unique sAMAccountName, password, enabled.

    A sealed password from the event is set as given; without one, a generated password
    is set with change required at next logon and returned sealed for the results
    consumer.  sAMAccountName candidates are tried in order until one is free.
    """

    tenant: str
    username: str
    user_dn: str
    upn: str
    attributes: Mapping[str, Any]
    sealed_password: bytes | None = field(default=None, repr=False)
    sealed_field: str = "data.password"
    min_password_length: int = 0
    result_key: str = "user"  # where the result details put this user

    def describe(self) -> str:
        return f"create user {self.user_dn} ({self.upn})"

    def is_done(self, directory: Directory, ctx: Context) -> bool:
        return _tag_of(directory, self.user_dn) == ctx.tag

    def apply(self, directory: Directory, ctx: Context) -> Applied | None:
        existing = directory.read(self.user_dn, [TAG_ATTRIBUTE, "sAMAccountName"])
        if existing is not None:
            return self._adopt(
                directory, ctx, existing.first(TAG_ATTRIBUTE), str(existing.first("sAMAccountName"))
            )
        password, generated = self._password(ctx)
        attributes = {
            **self.attributes,
            "userPrincipalName": self.upn,
            "unicodePwd": passwords.unicode_pwd(password),
            "userAccountControl": NORMAL_ACCOUNT,
            TAG_ATTRIBUTE: ctx.tag,
        }
        if generated:
            attributes["pwdLastSet"] = 0  # change required at next logon
        for attempt in range(MAX_SAM_CANDIDATES):
            sam = names.user_sam_candidate(self.tenant, self.username, attempt, ctx.sam_digits)
            try:
                directory.add(self.user_dn, USER_CLASSES, {**attributes, "sAMAccountName": sam})
            except DirectoryRefused as exc:
                if exc.result == "entryAlreadyExists" and "samaccountname" in str(exc).lower():
                    continue  # taken by someone else: the next candidate
                if exc.result == "entryAlreadyExists":
                    again = directory.read(self.user_dn, [TAG_ATTRIBUTE, "sAMAccountName"])
                    if again is not None:
                        return self._adopt(
                            directory,
                            ctx,
                            again.first(TAG_ATTRIBUTE),
                            str(again.first("sAMAccountName")),
                        )
                raise _user_refusal(exc, self.upn) from exc
            return Applied(self, details=self._details(sam, password if generated else None, ctx))
        raise PermanentError("sam_exhausted", f"no free sAMAccountName for {self.username}")

    def _adopt(self, directory: Directory, ctx: Context, tag: object, sam: str) -> Applied:
        if tag != ctx.tag:
            raise PermanentError("user_exists", f"{self.user_dn} exists and is not this job's")
        if self.sealed_password is not None:
            return Applied(self, details=self._details(sam, None, ctx))
        # The generated password of the attempt that created it was never delivered.
        password, _ = self._password(ctx)
        directory.modify(
            self.user_dn,
            {
                "unicodePwd": [(Change.REPLACE, [passwords.unicode_pwd(password)])],
                "pwdLastSet": [(Change.REPLACE, [0])],
            },
        )
        return Applied(self, details=self._details(sam, password, ctx))

    def _password(self, ctx: Context) -> tuple[str, bool]:
        if self.sealed_password is not None:
            return ctx.unseal(self.sealed_password, self.sealed_field), False
        if ctx.seal_for_results is None:
            raise PermanentError(
                "no_results_key",
                "a generated password needs the results consumer's key "
                "(PROVISIONER_RESULTS_PUBLIC_KEY_FILE)",
            )
        return passwords.generate(self.min_password_length), True

    def _details(self, sam: str, generated: str | None, ctx: Context) -> dict[str, Any]:
        user: dict[str, Any] = {
            "dn": self.user_dn,
            "sAMAccountName": sam,
            "userPrincipalName": self.upn,
        }
        if generated is not None and ctx.seal_for_results is not None:
            user["initial_password"] = ctx.seal_for_results(generated)
        return {self.result_key: user}

    def undo(self, directory: Directory, ctx: Context, applied: Applied | None) -> None:
        del applied
        if _tag_of(directory, self.user_dn) == ctx.tag:
            directory.delete(self.user_dn)


def _user_refusal(exc: DirectoryRefused, upn: str) -> Exception:
    text = str(exc)
    if exc.result == "constraintViolation" and "userPrincipalName" in text:
        return PermanentError("upn_conflict", f"the UPN {upn} is already in use")
    if exc.result == "constraintViolation" and "0000052D" in text:
        return PermanentError("password_policy", "the password does not meet the policy")
    return exc


@dataclass(frozen=True)
class EnsureMembers(Step):
    group_dn: str
    member_dns: tuple[str, ...]

    def describe(self) -> str:
        return f"add {len(self.member_dns)} member(s) to {self.group_dn}"

    def _missing(self, directory: Directory) -> list[str]:
        entry = directory.read(self.group_dn, ["member"])
        present = {str(v).lower() for v in (entry.values("member") if entry else [])}
        return [dn for dn in self.member_dns if dn.lower() not in present]

    def is_done(self, directory: Directory, ctx: Context) -> bool:
        del ctx
        return not self._missing(directory)

    def apply(self, directory: Directory, ctx: Context) -> Applied | None:
        missing = self._missing(directory)
        if not missing:
            return None
        try:
            directory.modify(self.group_dn, {"member": [(Change.ADD, missing)]})
        except DirectoryRefused as exc:
            if exc.result != "attributeOrValueExists":
                raise
            return self.apply(directory, ctx)  # another worker added some: add the rest
        return Applied(self, before=tuple(missing))

    def undo(self, directory: Directory, ctx: Context, applied: Applied | None) -> None:
        del ctx
        if applied is None or directory.read(self.group_dn, ["cn"]) is None:
            return
        try:
            directory.modify(self.group_dn, {"member": [(Change.DELETE, list(applied.before))]})
        except DirectoryRefused as exc:
            if exc.result != "noSuchAttribute":
                raise


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
class ReserveSlot(Step):
    """Count a user against the tenant's quota, atomically and at most once.

    One modify deletes ``users=N`` and adds ``users=N+1`` and ``reserved=<username>``:
    a racing worker's modify fails on the value it expected to delete, and a retry finds
    its reservation already there.  A reservation exists exactly while its user does.
    """

    settings_dn: str
    tenant: str
    username: str
    user_dn: str

    @property
    def key(self) -> str:
        return self.username.lower()

    def describe(self) -> str:
        return f"count {self.username} against the quota of tenant {self.tenant}"

    def _state(self, directory: Directory) -> tenant_state.TenantState:
        entry = directory.read(self.settings_dn, [tenant_state.SETTINGS_ATTRIBUTE])
        if entry is None:
            raise PermanentError("tenant_not_found", f"{self.settings_dn} is missing")
        values = [str(v) for v in entry.values(tenant_state.SETTINGS_ATTRIBUTE)]
        return tenant_state.parse(self.tenant, values)

    def is_done(self, directory: Directory, ctx: Context) -> bool:
        del ctx
        return self.key in self._state(directory).reserved

    def apply(self, directory: Directory, ctx: Context) -> Applied | None:
        del ctx
        for _ in range(MAX_QUOTA_RACES):
            state = self._state(directory)
            if self.key in state.reserved:
                return None
            if state.max_users is not None and state.users >= state.max_users:
                raise PermanentError(
                    "quota_exceeded",
                    f"tenant {self.tenant} has {state.users} of {state.max_users} users",
                )
            if self._swap(directory, state.users, state.users + 1, Change.ADD):
                return Applied(self)
        raise DirectoryUnavailable(f"the quota of {self.tenant} kept changing under us")

    def _swap(self, directory: Directory, old: int, new: int, reservation: Change) -> bool:
        try:
            directory.modify(
                self.settings_dn,
                {
                    tenant_state.SETTINGS_ATTRIBUTE: [
                        (Change.DELETE, [f"users={old}"]),
                        (Change.ADD, [f"users={new}"]),
                        (reservation, [f"reserved={self.key}"]),
                    ]
                },
            )
        except DirectoryRefused as exc:
            if exc.result in ("noSuchAttribute", "attributeOrValueExists"):
                return False  # another worker moved the counter first: read again
            raise
        return True

    def undo(self, directory: Directory, ctx: Context, applied: Applied | None) -> None:
        """Release the slot if no user holds it (whichever attempt reserved it)."""
        del ctx, applied
        if directory.read(self.user_dn, ["cn"]) is not None:
            return
        for _ in range(MAX_QUOTA_RACES):
            if directory.read(self.settings_dn, ["cn"]) is None:
                return
            state = self._state(directory)
            if self.key not in state.reserved:
                return
            if self._swap(directory, state.users, state.users - 1, Change.DELETE):
                return
        raise DirectoryUnavailable(f"the quota of {self.tenant} kept changing under us")
