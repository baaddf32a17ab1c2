"""What every step is: check, then ensure, and undo what it did.

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

from workers.directory.port import Directory, Entry
from workers.errors import PermanentError
from workers.provisioning.realm import Realm

TAG_ATTRIBUTE = "adminDescription"
TAG_PREFIX = "provisioner-job:"


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


def tag_of(directory: Directory, dn: str) -> str | None:
    entry = directory.read(dn, [TAG_ATTRIBUTE])
    if entry is None:
        return None
    return str(entry.first(TAG_ATTRIBUTE) or "")


def require(directory: Directory, dn: str, attributes: list[str], what: str) -> Entry:
    """The entry at ``dn``; a missing one is a permanent ``<what>_not_found``."""
    entry = directory.read(dn, attributes)
    if entry is None:
        raise PermanentError(f"{what}_not_found", f"{dn} does not exist")
    return entry
