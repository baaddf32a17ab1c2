"""The tenant's user quota: slots reserved and released atomically."""

from __future__ import annotations

from dataclasses import dataclass

from workers.directory.port import Change, Directory, DirectoryRefused
from workers.errors import PermanentError, TransientError
from workers.provisioning import tenant_state
from workers.provisioning.steps.base import Applied, Context, Step

MAX_QUOTA_RACES = 50


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
    # The counter as the engine read it before planning: the first swap needs no read.
    expected_users: int | None = None

    @property
    def key(self) -> str:
        return self.username.lower()

    def describe(self) -> str:
        return f"count {self.username} against the quota of tenant {self.tenant}"

    def state(self, directory: Directory) -> tenant_state.TenantState:
        entry = directory.read(self.settings_dn, [tenant_state.SETTINGS_ATTRIBUTE])
        if entry is None:
            raise PermanentError("tenant_not_found", f"{self.settings_dn} is missing")
        values = [str(v) for v in entry.values(tenant_state.SETTINGS_ATTRIBUTE)]
        return tenant_state.parse(self.tenant, values)

    def is_done(self, directory: Directory, ctx: Context) -> bool:
        del ctx
        return self.key in self.state(directory).reserved

    def apply(self, directory: Directory, ctx: Context) -> Applied | None:
        del ctx
        if self.expected_users is not None and self._swap(
            directory, self.expected_users, self.expected_users + 1, Change.ADD
        ):
            return Applied(self)  # the common case: one write, no read
        for _ in range(MAX_QUOTA_RACES):
            state = self.state(directory)
            if self.key in state.reserved:
                return None
            if state.max_users is not None and state.users >= state.max_users:
                raise PermanentError(
                    "quota_exceeded",
                    f"tenant {self.tenant} has {state.users} of {state.max_users} users",
                )
            if self._swap(directory, state.users, state.users + 1, Change.ADD):
                return Applied(self)
        raise TransientError(
            "quota_contention", f"the quota of {self.tenant} kept changing under us"
        )

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
        self.release(directory)

    def release(self, directory: Directory) -> bool:
        """Give the slot back unless a user holds it; return whether anything changed."""
        if directory.read(self.user_dn, ["cn"]) is not None:
            return False
        for _ in range(MAX_QUOTA_RACES):
            if directory.read(self.settings_dn, ["cn"]) is None:
                return False
            state = self.state(directory)
            if self.key not in state.reserved:
                return False
            if self._swap(directory, state.users, state.users - 1, Change.DELETE):
                return True
        raise TransientError(
            "quota_contention", f"the quota of {self.tenant} kept changing under us"
        )


@dataclass(frozen=True)
class ReleaseSlot(Step):
    """After a user is deleted: give its quota slot back."""

    slot: ReserveSlot

    def describe(self) -> str:
        return f"release the quota slot of {self.slot.username} in tenant {self.slot.tenant}"

    def is_done(self, directory: Directory, ctx: Context) -> bool:
        del ctx
        holder = directory.read(self.slot.user_dn, ["cn"])
        return holder is not None or self.slot.key not in self.slot.state(directory).reserved

    def apply(self, directory: Directory, ctx: Context) -> Applied | None:
        del ctx
        return Applied(self) if self.slot.release(directory) else None
