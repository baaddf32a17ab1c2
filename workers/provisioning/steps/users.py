"""Steps on user accounts: create in one add, set a password, enable or disable."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from workers.directory.port import Change, Directory, DirectoryRefused
from workers.errors import PermanentError
from workers.provisioning import names, passwords
from workers.provisioning.steps.base import TAG_ATTRIBUTE, Applied, Context, Step, require, tag_of

USER_CLASSES = ("top", "person", "organizationalPerson", "user")
NORMAL_ACCOUNT = 512
ACCOUNT_DISABLED = 0x2
MAX_SAM_CANDIDATES = 100


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
        return tag_of(directory, self.user_dn) == ctx.tag

    def apply(self, directory: Directory, ctx: Context) -> Applied | None:
        """Add first; only a conflict costs a read (to adopt, or to try the next name)."""
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
                    existing = directory.read(self.user_dn, [TAG_ATTRIBUTE, "sAMAccountName"])
                    if existing is not None:  # an earlier attempt, or another worker
                        return self._adopt(
                            directory,
                            ctx,
                            existing.first(TAG_ATTRIBUTE),
                            str(existing.first("sAMAccountName")),
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
        return _password_for(ctx, self.sealed_password, self.sealed_field, self.min_password_length)

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
        if tag_of(directory, self.user_dn) == ctx.tag:
            directory.delete(self.user_dn)


def _user_refusal(exc: DirectoryRefused, upn: str) -> Exception:
    text = str(exc)
    if exc.result == "constraintViolation" and "userPrincipalName" in text:
        return PermanentError("upn_conflict", f"the UPN {upn} is already in use")
    if exc.result == "constraintViolation" and "0000052D" in text:
        return PermanentError("password_policy", "the password does not meet the policy")
    return exc


def _password_for(
    ctx: Context, sealed: bytes | None, sealed_field: str, min_length: int
) -> tuple[str, bool]:
    """(password, generated): the event's sealed one opened now, or a generated one."""
    if sealed is not None:
        password = ctx.unseal(sealed, sealed_field)
        if len(password) < min_length:
            raise PermanentError(
                "password_policy", f"the password is shorter than the tenant's {min_length}"
            )
        return password, False
    if ctx.seal_for_results is None:
        raise PermanentError(
            "no_results_key",
            "a generated password needs the results consumer's key "
            "(PROVISIONER_RESULTS_PUBLIC_KEY_FILE)",
        )
    return passwords.generate(min_length), True


@dataclass(frozen=True)
class SetPassword(Step):
    """Reset a user's password: the sealed one as given, or a generated one (change required)."""

    user_dn: str
    sealed_password: bytes | None = field(default=None, repr=False)
    sealed_field: str = "data.password"
    min_password_length: int = 0

    def describe(self) -> str:
        return f"reset the password of {self.user_dn}"

    def is_done(self, directory: Directory, ctx: Context) -> bool:
        del directory, ctx
        return False  # a password cannot be read back: it is always set

    def apply(self, directory: Directory, ctx: Context) -> Applied | None:
        require(directory, self.user_dn, ["cn"], "user")
        password, generated = _password_for(
            ctx, self.sealed_password, self.sealed_field, self.min_password_length
        )
        changes: dict[str, Any] = {
            "unicodePwd": [(Change.REPLACE, [passwords.unicode_pwd(password)])],
            "pwdLastSet": [(Change.REPLACE, [0 if generated else -1])],
        }
        try:
            directory.modify(self.user_dn, changes)
        except DirectoryRefused as exc:
            raise _user_refusal(exc, "") from exc
        details: dict[str, Any] = {"dn": self.user_dn}
        if generated and ctx.seal_for_results is not None:
            details["initial_password"] = ctx.seal_for_results(password)
        return Applied(self, details={"user": details})


@dataclass(frozen=True)
class SetAccountEnabled(Step):
    """Set or clear ACCOUNTDISABLE in userAccountControl, keeping every other flag."""

    user_dn: str
    enabled: bool

    def describe(self) -> str:
        return f"{'enable' if self.enabled else 'disable'} {self.user_dn}"

    def _flags(self, directory: Directory) -> int:
        entry = require(directory, self.user_dn, ["userAccountControl"], "user")
        return int(entry.first("userAccountControl") or NORMAL_ACCOUNT)

    def _wanted(self, flags: int) -> int:
        return flags & ~ACCOUNT_DISABLED if self.enabled else flags | ACCOUNT_DISABLED

    def is_done(self, directory: Directory, ctx: Context) -> bool:
        del ctx
        flags = self._flags(directory)
        return flags == self._wanted(flags)

    def apply(self, directory: Directory, ctx: Context) -> Applied | None:
        del ctx
        flags = self._flags(directory)
        wanted = self._wanted(flags)
        if wanted == flags:
            return None
        directory.modify(self.user_dn, {"userAccountControl": [(Change.REPLACE, [wanted])]})
        return Applied(self, before=flags)

    def undo(self, directory: Directory, ctx: Context, applied: Applied | None) -> None:
        del ctx
        if applied is not None and directory.read(self.user_dn, ["cn"]) is not None:
            directory.modify(
                self.user_dn, {"userAccountControl": [(Change.REPLACE, [applied.before])]}
            )
