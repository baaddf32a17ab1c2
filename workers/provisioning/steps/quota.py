"""The tenant's user quota: slots reserved and released atomically."""

from __future__ import annotations

from dataclasses import dataclass

from workers.directory import key_values
from workers.directory.port import Change, Directory, DirectoryRefused
from workers.errors import PermanentError, TransientError
from workers.provisioning import tenant_state
from workers.provisioning.steps.base import Applied, Context, Step

MAX_QUOTA_RACES = 50


@dataclass(frozen=True)
class ReserveSlot(Step):
    """Count a user against the tenant's quota, atomically and at most once.

    One modify of the settings object deletes ``users=N``, adds ``users=N+1`` and adds
    ``reserved:<username>`` to its ``keywords``: a racing worker's modify fails on the
    value it expected to delete, and a retry's on the reservation already there.  A
    reservation exists exactly while its user does.
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
        return tenant_state.parse(self.tenant, entry.values(tenant_state.SETTINGS_ATTRIBUTE))

    def held_in(self, directory: Directory, state: tenant_state.TenantState) -> str | None:
        """The attribute holding this user's reservation, None if it holds none.

        Read after ``state``: a reservation made since changed the counter, so a swap
        from ``state.users`` fails and the caller reads both again."""
        if self.key in state.legacy_reserved:
            return tenant_state.SETTINGS_ATTRIBUTE
        if tenant_state.is_listed(directory, self.settings_dn, tenant_state.RESERVED, self.key):
            return tenant_state.LISTS_ATTRIBUTE
        return None

    def is_done(self, directory: Directory, ctx: Context) -> bool:
        del ctx
        return self.held_in(directory, self.state(directory)) is not None

    def apply(self, directory: Directory, ctx: Context) -> Applied | None:
        del ctx
        if self.expected_users is not None and self._swap(
            directory, self.expected_users, Change.ADD, tenant_state.LISTS_ATTRIBUTE
        ):
            return Applied(self)  # the common case: one write, no read
        for _ in range(MAX_QUOTA_RACES):
            state = self.state(directory)
            if self.held_in(directory, state) is not None:
                return None
            if state.max_users is not None and state.users >= state.max_users:
                raise PermanentError(
                    "quota_exceeded",
                    f"tenant {self.tenant} has {state.users} of {state.max_users} users",
                )
            if self._swap(directory, state.users, Change.ADD, tenant_state.LISTS_ATTRIBUTE):
                return Applied(self)
        raise TransientError(
            "quota_contention", f"the quota of {self.tenant} kept changing under us"
        )

    def _swap(self, directory: Directory, old: int, change: Change, where: str) -> bool:
        """Move the counter from ``old`` by one and add (or delete) the reservation in
        ``where``, in one modify; False if the counter or the reservation was not as
        expected (another worker moved first, or this reservation is already there)."""
        new = old + 1 if change is Change.ADD else old - 1
        changes = tenant_state.list_change(change, tenant_state.RESERVED, {self.key: where})
        counter = [
            (Change.DELETE, [key_values.item("users", old)]),
            (Change.ADD, [key_values.item("users", new)]),
        ]
        changes[tenant_state.SETTINGS_ATTRIBUTE] = [
            *counter,
            *changes.get(tenant_state.SETTINGS_ATTRIBUTE, []),
        ]
        try:
            directory.modify(self.settings_dn, changes)
        except DirectoryRefused as exc:
            if exc.result in ("noSuchAttribute", "attributeOrValueExists"):
                return False  # read again
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
            where = self.held_in(directory, state)
            if where is None:
                return False
            if self._swap(directory, state.users, Change.DELETE, where):
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
        if directory.read(self.slot.user_dn, ["cn"]) is not None:
            return True
        return self.slot.held_in(directory, self.slot.state(directory)) is None

    def apply(self, directory: Directory, ctx: Context) -> Applied | None:
        del ctx
        return Applied(self) if self.slot.release(directory) else None
