"""Which DC acts for a tenant, when the fleet knows several: the rule, and the claim a
job makes on its DC.

**The rule.**  Each tenant has an order of the DCs, the same for every worker: highest
random weight (rendezvous) hashing of the tenant id with each DC's name.  The first is
its *preferred* DC: its jobs read and write there.  A job acts on the first DC of that
order that answers *and* provably holds every change the other DCs made for the tenant;
if none does, it waits (a transient retry, ``dc_catching_up``) and never acts on a DC
that may lack them.  When the preferred DC comes back, it takes the tenant back as soon
as it holds what was written elsewhere meanwhile.

**The proof** is the fences (:mod:`workers.delivery.fences`).  A job acting on DC A:

1. stakes its idempotency key, before it writes anything: on every other DC B that
   answers, in the fence (A -> B) kept on B; for every DC B that does not, in the
   missed mark (A -> B) kept on A;
2. checks that A holds what the others wrote for the tenant: for every other DC X, the
   fence (X -> A) on A and the missed mark (X -> A) (read on X, or A's copy when X is
   down) have no job pending, and A's up-to-dateness vector for X reaches their USN; if
   not, it takes its stakes back and tries the next DC;
3. runs, then settles its stakes with the USN A gave the job's last change (one read;
   a job ending in a delete writes a stamp to have one).  A job that dies leaves its key
   pending: no other DC may act for the tenant until that job is run again and settles.

Two workers that reach both DCs cannot act for one tenant on two DCs at once: each
stakes on the other's DC before it checks its own, so the later of the two sees the
earlier's stake (the order of writes and reads on one DC decides).

**What it assumes** (docs/operations.md says it to operators): a DC that the fleet cannot
reach is down for the other DCs too (no partition that splits the workers between DCs),
and a DC that returns from an outage replicates from the others before they fail in
turn.  A DC that was down while another wrote for a tenant holds no fences for those
writes: the missed marks tell it, once they reach it by replication.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from workers.delivery import fences
from workers.delivery.fences import Kind, Mark
from workers.directory import replication
from workers.directory.port import (
    Changes,
    Delegating,
    Directory,
    DirectoryError,
    DirectoryUnavailable,
)
from workers.errors import TransientError

if TYPE_CHECKING:
    from workers.delivery.session import Session


class CatchingUp(TransientError):
    """No DC that answers holds every change made for the tenant yet."""

    def __init__(self, message: str) -> None:
        super().__init__("dc_catching_up", message)


def tenant_order(tenant: str, dcs: Iterable[str]) -> list[str]:
    """``dcs`` (names) in ``tenant``'s order: the preferred DC first.  Adding or removing
    a DC moves only the tenants that DC takes or held."""

    def weight(dc: str) -> bytes:
        return hashlib.sha256(f"{dc}\0{tenant}".encode()).digest()

    return sorted(dcs, key=weight, reverse=True)


def lagging(marks: Iterable[Mark], vector: Mapping[str, int]) -> list[str]:
    """What the holder of ``marks`` lacks, given its up-to-dateness ``vector``; empty
    when it holds everything they stand for."""
    lacks = []
    for mark in marks:
        if mark.pending:
            lacks.append(
                f"{len(mark.pending)} job(s) on {mark.origin} whose changes are not known "
                "(running, or cut short)"
            )
            continue
        held = vector.get(mark.origin_invocation, 0)
        if mark.usn > held:
            lacks.append(f"{mark.origin}'s changes up to USN {mark.usn} (it holds {held})")
    return lacks


class WriteTracker(Delegating):
    """A directory that remembers the job's last write, for its watermark."""

    def __init__(self, real: Directory) -> None:
        super().__init__(real)
        self.wrote = False
        self.last_dn: str | None = None  # the last add or modify; None after a delete

    def _note(self, dn: str | None) -> None:
        self.wrote, self.last_dn = True, dn

    def add(self, dn: str, object_class: Sequence[str], attributes: Mapping[str, Any]) -> None:
        self.real.add(dn, object_class, attributes)
        self._note(dn)

    def modify(self, dn: str, changes: Changes) -> None:
        self.real.modify(dn, changes)
        self._note(dn)

    def delete(self, dn: str) -> None:
        self.real.delete(dn)
        self._note(None)

    def write_dacl(self, dn: str, descriptor: bytes) -> None:
        self.real.write_dacl(dn, descriptor)
        self._note(dn)


@dataclass
class Claim:
    """One job's stakes on the DC ``acting`` (named ``name``), the others as reached
    (None: no answer)."""

    name: str
    acting: Session
    others: dict[str, Session | None]
    tenant: str
    key: str
    lost: Callable[[str], None]  # forget a DC's session that failed
    staked: list[tuple[Directory, str]] = field(default_factory=list)

    @property
    def _base(self) -> str:
        return self.acting.directory.base_dn

    def stake(self) -> None:
        invocation = self.acting.invocation_id
        for other, session in self.others.items():
            kind, store = Kind.FENCE, session.directory if session else None
            if store is None:
                kind, store = Kind.MISSED, self.acting.directory
            dn = fences.mark_dn(self._base, kind, self.tenant, self.name, other)
            try:
                self._stake(store, dn, other, invocation)
            except DirectoryUnavailable:
                if kind is Kind.MISSED:
                    raise  # the acting DC itself failed
                self.lost(other)
                self.others[other] = None  # it went away: the mark goes to the acting DC
                missed = fences.mark_dn(self._base, Kind.MISSED, self.tenant, self.name, other)
                self._stake(self.acting.directory, missed, other, invocation)

    def _stake(self, store: Directory, dn: str, holder: str, invocation: str) -> None:
        fences.stake(
            store,
            dn,
            tenant=self.tenant,
            key=self.key,
            origin=self.name,
            holder=holder,
            origin_invocation=invocation,
        )
        self.staked.append((store, dn))

    def lagging(self) -> list[str]:
        """What the acting DC lacks of the other DCs' writes for the tenant."""
        here = self.acting.directory
        marks = []
        for other, session in self.others.items():
            fence = fences.mark_dn(self._base, Kind.FENCE, self.tenant, other, self.name)
            marks.append(fences.read(here, fence, Kind.FENCE, other, self.name))
            missed = fences.mark_dn(self._base, Kind.MISSED, self.tenant, other, self.name)
            found = None
            if session is not None:
                try:
                    found = fences.read(session.directory, missed, Kind.MISSED, other, self.name)
                except DirectoryUnavailable:
                    self.lost(other)
            if found is None:  # unreachable, or none there: the copy here
                found = fences.read(here, missed, Kind.MISSED, other, self.name)
            marks.append(found)
        known = [m for m in marks if m is not None]
        vector = replication.up_to_dateness(here) if any(m.usn for m in known) else {}
        return lagging(known, vector)

    def release(self) -> None:
        for store, dn in self.staked:
            with suppress(DirectoryError):
                fences.release(store, dn, self.key)
        self.staked.clear()

    def settle(self, tracker: WriteTracker) -> None:
        """Settle every stake with the job's watermark; a stake that cannot be settled
        stays pending (safe: no other DC acts for the tenant until it is)."""
        try:
            usn = self._watermark(tracker) if tracker.wrote else None
        except DirectoryError:
            return
        for store, dn in self.staked:
            with suppress(DirectoryError):
                fences.settle(store, dn, self.key, usn)

    def _watermark(self, tracker: WriteTracker) -> int | None:
        here = self.acting.directory
        usn = replication.usn_changed(here, tracker.last_dn) if tracker.last_dn else None
        if usn is None:
            stamp = fences.stamp_dn(self._base, self.tenant, self.name)
            fences.stamp(here, stamp, self.tenant, datetime.now(UTC).isoformat())
            usn = replication.usn_changed(here, stamp)
        return usn


@contextmanager
def act(
    order: Sequence[str],
    reach: Callable[[str], Session | None],
    tenant: str,
    key: str,
    lost: Callable[[str], None],
) -> Iterator[Session]:
    """The DC that acts for ``tenant`` (the rule above), with the job's stakes made;
    the stakes are settled when the job is over, whatever its outcome.

    ``reach(dc)`` opens a session on a DC (None: it does not answer); ``lost(dc)``
    forgets one that failed.
    """
    reasons = []
    answered = False
    for dc in order:
        acting = reach(dc)
        if acting is None:
            reasons.append(f"{dc} does not answer")
            continue
        answered = True
        others = {o: reach(o) for o in order if o != dc}
        claim = Claim(dc, acting, others, tenant, key, lost)
        try:
            claim.stake()
            lacks = claim.lagging()
        except DirectoryUnavailable as exc:
            claim.release()
            lost(dc)
            reasons.append(f"{dc}: {exc}")
            continue
        except BaseException:
            claim.release()  # a refusal or a bug: no stake of a job that never ran stays
            raise
        if lacks:
            claim.release()
            reasons.append(f"{dc} lacks {'; '.join(lacks)}")
            continue
        tracker = WriteTracker(acting.directory)
        try:
            yield replace(acting, directory=tracker)
        finally:
            claim.settle(tracker)
        return
    if not answered:
        raise DirectoryUnavailable("no DC answers: " + "; ".join(reasons))
    raise CatchingUp("no DC that answers holds the tenant's changes yet: " + "; ".join(reasons))
