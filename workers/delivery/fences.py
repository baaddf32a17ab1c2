"""Fences: what each DC must hold of the others' writes for a tenant, kept in the
directory itself (``CN=Fences,CN=Provisioner,CN=System,<base>``, created and locked by
the bootstrap like the idempotency records).

A *mark* says: "DC ``origin`` wrote for tenant T; DC ``holder`` may act for T only once
it holds those writes".  It has two parts:

- ``pending``: the idempotency keys of jobs running (or that died) on ``origin`` for T,
  whose writes are not known yet (``keywords: pending:<key hash>``);
- ``usn``: the USN ``origin`` gave the last change of every job settled so far
  (``msDS-Settings: usn=<n>``, raised only, by compare-and-swap); ``holder`` holds them
  once its up-to-dateness vector reaches it for ``origin``'s invocation ID.

A mark is one object per (kind, tenant, origin, holder), written on one DC only, so
that replication never merges two writers' versions of it:

- a **fence** lives on ``holder``: written there by a worker acting on ``origin`` while
  ``holder`` answers;
- a **missed** mark lives on ``origin``: written there by a worker acting on ``origin``
  while ``holder`` does not answer (``holder`` reads it on ``origin``, or its replicated
  copy when ``origin`` is down in turn).

The rule they serve is :mod:`workers.delivery.pinning`'s.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from enum import Enum

from workers.delivery import idempotency
from workers.directory import key_values
from workers.directory.port import Change, Directory, DirectoryRefused
from workers.provisioning.names import rdn

CONTAINER_CN = "Fences"
MARK_CLASS = idempotency.RECORD_CLASS
_ATTRIBUTES = ["keywords", key_values.ATTRIBUTE]
_CAS_TRIES = 5


class Kind(Enum):
    FENCE = "fence"  # on the holder
    MISSED = "missed"  # on the origin, when the holder did not answer


def container_dn(base_dn: str) -> str:
    return f"CN={CONTAINER_CN},{idempotency.parent_dn(base_dn)}"


def _name(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:40]


def _pending(key: str) -> str:
    return f"pending:{idempotency.key_hash(key)}"


@dataclass(frozen=True)
class Mark:
    kind: Kind
    origin: str  # DC name
    holder: str
    origin_invocation: str  # where the holder's vector counts the origin's changes
    pending: frozenset[str]
    usn: int


def mark_dn(base_dn: str, kind: Kind, tenant: str, origin: str, holder: str) -> str:
    """One name per (kind, tenant, origin, holder); DC names may be long, so hashed (the
    object's ``keywords`` say what it is about, for an operator)."""
    return f"{rdn('CN', f'{kind.value}-{_name(tenant, origin, holder)}')},{container_dn(base_dn)}"


def stamp_dn(base_dn: str, tenant: str, origin: str) -> str:
    return f"{rdn('CN', f'stamp-{_name(tenant, origin)}')},{container_dn(base_dn)}"


def read(directory: Directory, dn: str, kind: Kind, origin: str, holder: str) -> Mark | None:
    entry = directory.read(dn, _ATTRIBUTES)
    if entry is None:
        return None
    facts = key_values.single(entry.values(key_values.ATTRIBUTE))
    pending = frozenset(v for v in map(str, entry.values("keywords")) if v.startswith("pending:"))
    usn = int(facts.get("usn", 0))
    return Mark(kind, origin, holder, facts.get("invocation", ""), pending, usn)


def stake(
    directory: Directory,
    dn: str,
    *,
    tenant: str,
    key: str,
    origin: str,
    holder: str,
    origin_invocation: str,
) -> None:
    """Note a job of ``key`` in flight (made first when there is no mark yet)."""
    try:
        directory.modify(dn, {"keywords": [(Change.ADD, [_pending(key)])]})
    except DirectoryRefused as exc:
        if exc.result == "attributeOrValueExists":
            return  # this very job, again (a redelivery)
        if exc.result != "noSuchObject":
            raise
    else:
        return
    try:
        directory.add(
            dn,
            [MARK_CLASS],
            {
                "keywords": [
                    f"tenant:{tenant}",
                    f"origin:{origin}",
                    f"holder:{holder}",
                    _pending(key),
                ],
                key_values.ATTRIBUTE: key_values.items({"invocation": origin_invocation, "usn": 0}),
                "nTSecurityDescriptor": idempotency.RECORD_DESCRIPTOR,
            },
        )
    except DirectoryRefused as exc:
        if exc.result != "entryAlreadyExists":
            raise
        stake(
            directory,
            dn,
            tenant=tenant,
            key=key,
            origin=origin,
            holder=holder,
            origin_invocation=origin_invocation,
        )


def settle(directory: Directory, dn: str, key: str, usn: int | None) -> None:
    """The job of ``key`` is over and its last change has ``usn`` (None: it wrote
    nothing): raise the mark's USN to it, and take the job off ``pending``, in one modify."""
    for _ in range(_CAS_TRIES):
        entry = directory.read(dn, _ATTRIBUTES)
        if entry is None:
            return
        facts = key_values.single(entry.values(key_values.ATTRIBUTE))
        current = int(facts.get("usn", 0))
        changes: dict[str, list[tuple[Change, list[str]]]] = {}
        if _pending(key) in {str(v) for v in entry.values("keywords")}:
            changes["keywords"] = [(Change.DELETE, [_pending(key)])]
        if usn is not None and usn > current:
            changes[key_values.ATTRIBUTE] = [
                (Change.DELETE, [key_values.item("usn", current)]),
                (Change.ADD, [key_values.item("usn", usn)]),
            ]
        if not changes:
            return
        try:
            directory.modify(dn, changes)
        except DirectoryRefused as exc:
            if exc.result not in {"noSuchAttribute", "attributeOrValueExists"}:
                raise
            continue  # another job settled between the read and the write: read again
        return
    raise DirectoryRefused("busy", f"{dn}: {_CAS_TRIES} settles lost their race")


def release(directory: Directory, dn: str, key: str) -> None:
    """Take back a stake whose job never ran (the DC was not fit to act)."""
    try:
        directory.modify(dn, {"keywords": [(Change.DELETE, [_pending(key)])]})
    except DirectoryRefused as exc:
        if exc.result not in {"noSuchAttribute", "noSuchObject"}:
            raise


def stamp(directory: Directory, dn: str, tenant: str, moment: str) -> None:
    """A change of our own on the acting DC whose USN covers a job that ended in a delete
    (a deleted object has no USN left to read)."""
    try:
        directory.modify(dn, {key_values.ATTRIBUTE: [(Change.REPLACE, [f"at={moment}"])]})
    except DirectoryRefused as exc:
        if exc.result != "noSuchObject":
            raise
        directory.add(
            dn,
            [MARK_CLASS],
            {
                "keywords": [f"tenant:{tenant}"],
                key_values.ATTRIBUTE: [f"at={moment}"],
                "nTSecurityDescriptor": idempotency.RECORD_DESCRIPTOR,
            },
        )
