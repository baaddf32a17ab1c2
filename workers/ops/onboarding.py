"""Bulk onboarding that waits (``provisioner publish --file F --wait``): what became of
each line of a file, kept in a progress file so that an interrupted run resumes by its
idempotency keys.

The progress file (JSON Lines, appended to, flushed line by line) holds no secret: per
line its number, the idempotency key it was published under, a fingerprint of its
intent (type and data, passwords left out), and its outcome once answered.  A rerun of
the same file:

- skips the lines answered for good (``succeeded``, ``duplicate``, ``dead_lettered``);
- publishes again, under the same key, a line that was published and not answered: the
  fleet answers ``duplicate`` if the first copy was applied, and nothing is made twice;
- refuses to go on when a line's intent differs from the one recorded for its number.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from messages.envelope import Envelope
from messages.passwords import drop_passwords, passwords, replace_passwords
from messages.results import Outcome, Result

ANSWERED = frozenset({Outcome.SUCCEEDED, Outcome.DUPLICATE, Outcome.DEAD_LETTERED})
NOT_PUBLISHED = "not_published"
INVALID = "invalid"


class ProgressMismatch(Exception):
    """A line of the file is not the one the progress file recorded for its number."""


def fingerprint(envelope: Envelope) -> str:
    """The intent of a line: its type and data, each password only marked present."""
    data = replace_passwords(envelope.data, lambda _path, _value: "<password>")
    canonical = json.dumps(
        {"type": envelope.type, "data": data}, sort_keys=True, ensure_ascii=False, default=str
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass
class Line:
    number: int
    key: str
    fingerprint: str
    outcome: str | None = None  # an Outcome's value, NOT_PUBLISHED or INVALID
    code: str = ""
    reason: str = ""

    @property
    def answered(self) -> bool:
        return self.outcome in ANSWERED

    @property
    def failed(self) -> bool:
        return self.outcome in {Outcome.DEAD_LETTERED, NOT_PUBLISHED, INVALID}


@dataclass
class Progress:
    """The lines of one file, as the progress file records them."""

    path: Path
    lines: dict[int, Line] = field(default_factory=dict)
    _out: IO[str] | None = None

    @classmethod
    def load(cls, path: Path) -> Progress:
        progress = cls(path)
        if path.exists():
            for raw in path.read_text(encoding="utf-8").splitlines():
                if raw.strip():
                    progress._replay(json.loads(raw))
        return progress

    def _replay(self, entry: dict[str, Any]) -> None:
        number = int(entry["line"])
        if "key" in entry:
            self.lines[number] = Line(number, entry["key"], entry["fingerprint"])
        elif number in self.lines:
            line = self.lines[number]
            line.outcome, line.code, line.reason = (
                entry["outcome"],
                entry.get("code", ""),
                entry.get("reason", ""),
            )

    def key_for(self, number: int, envelope: Envelope) -> str | None:
        """The key line ``number`` was published under before (None: never published);
        raises :class:`ProgressMismatch` when the line is no longer the same intent."""
        known = self.lines.get(number)
        if known is None:
            return None
        if known.fingerprint != fingerprint(envelope):
            raise ProgressMismatch(
                f"line {number} is not the intent that {self.path} recorded for it: the file "
                "changed since; give a new --progress file to publish it as it is now"
            )
        return known.key

    def assign(self, number: int, envelope: Envelope) -> None:
        """Line ``number`` is about to be published as ``envelope``."""
        line = Line(number, envelope.idempotency_key, fingerprint(envelope))
        self.lines[number] = line
        self._write({"line": number, "key": line.key, "fingerprint": line.fingerprint})

    def invalid(self, number: int, code: str, reason: str) -> None:
        """Line ``number`` is not an event (it was never published)."""
        self.lines.setdefault(number, Line(number, "", ""))
        self.answer(number, INVALID, code, reason)

    def answer(self, number: int, outcome: str, code: str = "", reason: str = "") -> None:
        line = self.lines[number]
        line.outcome, line.code, line.reason = outcome, code, reason
        self._write(
            {
                "line": number,
                "outcome": outcome,
                **({"code": code, "reason": reason} if code else {}),
            }
        )

    def _write(self, entry: dict[str, Any]) -> None:
        if self._out is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._out = self.path.open("a", encoding="utf-8")
        self._out.write(json.dumps(entry, ensure_ascii=False) + "\n")
        self._out.flush()

    def close(self) -> None:
        if self._out is not None:
            self._out.close()
            self._out = None


@dataclass
class Waiting:
    """The published lines not answered yet, by idempotency key, and the tally so far."""

    by_key: dict[str, list[int]] = field(default_factory=dict)
    retrying: set[int] = field(default_factory=set)
    counts: Counter[str] = field(default_factory=Counter)

    def expect(self, key: str, number: int) -> None:
        self.by_key.setdefault(key, []).append(number)

    def __len__(self) -> int:
        return sum(len(v) for v in self.by_key.values())

    def drop(self, key: str, number: int) -> None:
        """Line ``number`` will get no answer (it was never published)."""
        numbers = self.by_key.get(key, [])
        if number in numbers:
            numbers.remove(number)
        if not numbers:
            self.by_key.pop(key, None)

    def take(self, result: Result) -> int | None:
        """The line ``result`` answers for good (None: not one of ours, or not final)."""
        numbers = self.by_key.get(result.idempotency_key or "")
        if not numbers:
            return None
        if result.outcome not in ANSWERED:
            self.retrying.add(numbers[0])
            return None
        number = numbers.pop(0)
        if not numbers:
            del self.by_key[result.idempotency_key or ""]
        self.retrying.discard(number)
        self.counts[result.outcome.value] += 1
        return number


def without_passwords(raw_line: str) -> tuple[str | None, bool]:
    """A failed line as it goes to the failed-lines file: as given, but with every
    ``password`` field left out (the file must hold no secret); whether one was.  A line
    that is not JSON and names a password is left out whole (None)."""
    try:
        obj = json.loads(raw_line)
    except json.JSONDecodeError:
        holds_password = "password" in raw_line.lower()
        return (None if holds_password else raw_line.rstrip("\n")), holds_password
    if not passwords(obj):
        return raw_line.rstrip("\n"), False
    return json.dumps(drop_passwords(obj), ensure_ascii=False), True
