"""The fleet's sealing keys, in a directory: rotated and retired with no downtime.

::

    <dir>/<fingerprint>.key          accepted private keys: the current one and previous ones
    <dir>/current.pub                the current public key, which producers seal to
    <dir>/retired/<fingerprint>.key  retired keys: never used to open a password, kept
                                     so that a box sealed to one can be named as such

A fingerprint is the first 16 hex digits of the SHA-256 of the raw public key.  Files
hold base64, one line; private keys are mode 0600 and the directory 0700.  Every change
is a rename within the directory, so a reader sees the old state or the new one.

Rotation: ``rotate`` adds a key and makes it current.  Workers notice the change (the
directory's modification time) at the next password they open and accept both keys;
publishers seal to the new one from their next read of ``current.pub``.  Once nothing
sealed to the old key is left in the queues, ``retire`` moves it aside: from then on a
box sealed to it is refused as ``retired_key`` and stays in the dead-letter queue.
"""

from __future__ import annotations

import base64
import hashlib
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from nacl.exceptions import CryptoError
from nacl.public import PrivateKey, PublicKey, SealedBox

from workers.errors import PermanentError

CURRENT = "current.pub"
RETIRED = "retired"


class KeyRingError(PermanentError):
    """A key ring operation that cannot be done (retiring the current key, say)."""

    def __init__(self, message: str) -> None:
        super().__init__("key_ring", message)


def fingerprint(public_key: PublicKey) -> str:
    return hashlib.sha256(bytes(public_key)).hexdigest()[:16]


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii") + "\n"


def _read_key(path: Path) -> bytes:
    return base64.b64decode(path.read_text(encoding="ascii").strip())


def _write(path: Path, text: str, mode: int) -> None:
    """``text`` into ``path`` by a rename: readers never see half a key."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(descriptor, "w", encoding="ascii") as out:
        out.write(text)
    temporary.replace(path)


@dataclass(frozen=True)
class KeyInfo:
    fingerprint: str
    state: str  # current, previous, retired
    since: datetime  # the file's modification time: when it became what it is


@dataclass
class Opened:
    plaintext: bytes
    fingerprint: str


@dataclass
class KeyRing:
    """The keys of a directory, loaded; :meth:`refreshed` reloads it when it changed."""

    directory: Path
    accepted: dict[str, PrivateKey] = field(default_factory=dict)
    retired: dict[str, PrivateKey] = field(default_factory=dict)
    current: str | None = None
    _stamp: int = 0

    @classmethod
    def load(cls, directory: str | Path) -> KeyRing:
        ring = cls(Path(directory))
        ring._reload()
        return ring

    def _mtime(self) -> int:
        """The directory's modification time: every change renames an entry of the
        directory itself (retiring moves one out of it), so one ``stat`` tells."""
        return self.directory.stat().st_mtime_ns

    def _reload(self) -> None:
        self._stamp = self._mtime()
        self.accepted = _keys(self.directory)
        self.retired = _keys(self.directory / RETIRED)
        current = self.directory / CURRENT
        self.current = fingerprint(PublicKey(_read_key(current))) if current.exists() else None

    def refreshed(self) -> KeyRing:
        """This ring, reloaded first if a key was added, rotated or retired since."""
        if self._mtime() != self._stamp:
            self._reload()
        return self

    def open(self, sealed: bytes) -> Opened | None:
        """The box opened by an accepted key (the current one first), or None."""
        order = sorted(self.accepted, key=lambda fp: fp != self.current)
        for fp in order:
            plaintext = _try(self.accepted[fp], sealed)
            if plaintext is not None:
                return Opened(plaintext, fp)
        return None

    def retired_key_of(self, sealed: bytes) -> str | None:
        """The fingerprint of the retired key ``sealed`` was sealed to, if it is one."""
        for fp, key in self.retired.items():
            if _try(key, sealed) is not None:
                return fp
        return None

    def state_of(self, sealed: bytes) -> tuple[str, str | None]:
        """(current | previous | retired | unknown, fingerprint): what opens a box."""
        opened = self.open(sealed)
        if opened is not None:
            state = "current" if opened.fingerprint == self.current else "previous"
            return state, opened.fingerprint
        retired = self.retired_key_of(sealed)
        return ("retired", retired) if retired else ("unknown", None)

    def listing(self) -> list[KeyInfo]:
        out = [
            KeyInfo(fp, "current" if fp == self.current else "previous", _since(self.directory, fp))
            for fp in self.accepted
        ]
        out += [KeyInfo(fp, "retired", _since(self.directory / RETIRED, fp)) for fp in self.retired]
        order = {"current": 0, "previous": 1, "retired": 2}
        return sorted(out, key=lambda k: (order[k.state], -k.since.timestamp()))


def _try(key: PrivateKey, sealed: bytes) -> bytes | None:
    try:
        return bytes(SealedBox(key).decrypt(sealed))
    except CryptoError:
        return None


def _keys(directory: Path) -> dict[str, PrivateKey]:
    if not directory.is_dir():
        return {}
    keys = {}
    for path in sorted(directory.glob("*.key")):
        key = PrivateKey(_read_key(path))
        keys[fingerprint(key.public_key)] = key
    return keys


def _since(directory: Path, fp: str) -> datetime:
    return datetime.fromtimestamp((directory / f"{fp}.key").stat().st_mtime, UTC)


def _ensure_directory(directory: Path) -> None:
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    directory.chmod(0o700)


def _add(directory: Path, key: PrivateKey) -> str:
    fp = fingerprint(key.public_key)
    _write(directory / f"{fp}.key", _b64(bytes(key)), 0o600)
    return fp


def _make_current(directory: Path, key: PrivateKey) -> None:
    _write(directory / CURRENT, _b64(bytes(key.public_key)), 0o644)


def init(directory: str | Path, adopt: str | Path | None = None) -> str | None:
    """A ring with a current key, unless it has one; ``adopt``: that private key file
    becomes its first key (so that what was sealed to it still opens).  The new current
    fingerprint, or None when the ring had one already."""
    path = Path(directory)
    _ensure_directory(path)
    if (path / CURRENT).exists():
        return None
    key = PrivateKey(_read_key(Path(adopt))) if adopt else PrivateKey.generate()
    fp = _add(path, key)
    _make_current(path, key)
    return fp


def rotate(directory: str | Path) -> tuple[str, str | None]:
    """A new key, made current; the old current one stays accepted.  (new, old)."""
    path = Path(directory)
    _ensure_directory(path)
    old = KeyRing.load(path).current
    key = PrivateKey.generate()
    fp = _add(path, key)  # accepted before it is current: workers can open what it seals
    _make_current(path, key)
    return fp, old


def retire(directory: str | Path, fingerprints: list[str] | None = None) -> list[str]:
    """Move these keys (None: every previous key) out of the accepted set."""
    path = Path(directory)
    ring = KeyRing.load(path)
    chosen = (
        [fp for fp in ring.accepted if fp != ring.current] if fingerprints is None else fingerprints
    )
    for fp in chosen:
        if fp == ring.current:
            raise KeyRingError(f"{fp} is the current key: rotate first, then retire it")
        if fp not in ring.accepted:
            raise KeyRingError(f"no accepted key {fp} in {path}")
    retired = path / RETIRED
    _ensure_directory(retired)
    for fp in chosen:
        (path / f"{fp}.key").replace(retired / f"{fp}.key")
        os.utime(retired / f"{fp}.key")  # its time is now when it was retired
    return chosen
