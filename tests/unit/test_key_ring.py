"""The fleet's key ring on disk: init, rotate, retire, and what a worker's ring sees."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from messages.errors import ContractError
from messages.sealing import generate_key_pair, load_public_key, seal
from workers.errors import PermanentError
from workers.provisioning.keys import KeyRing as WorkerKeys
from workers.runtime import key_ring
from workers.runtime.key_ring import KeyRing, KeyRingError


def sealed_to_current(ring: Path, text: str) -> bytes:
    return seal(text, load_public_key(ring / key_ring.CURRENT))


def test_init_makes_one_current_key_once(tmp_path: Path) -> None:
    ring = tmp_path / "ring"
    first = key_ring.init(ring)
    assert first is not None
    assert key_ring.init(ring) is None  # idempotent
    assert stat.S_IMODE(ring.stat().st_mode) == 0o700
    assert stat.S_IMODE((ring / f"{first}.key").stat().st_mode) == 0o600
    assert [(k.fingerprint, k.state) for k in KeyRing.load(ring).listing()] == [(first, "current")]


def test_a_rotation_keeps_the_old_key_accepted_until_it_is_retired(tmp_path: Path) -> None:
    ring = tmp_path / "ring"
    old = key_ring.init(ring)
    before = sealed_to_current(ring, "sealed-before")
    new, previous = key_ring.rotate(ring)
    assert previous == old
    after = sealed_to_current(ring, "sealed-after")
    loaded = KeyRing.load(ring)
    assert loaded.state_of(before) == ("previous", old)
    assert loaded.state_of(after) == ("current", new)
    assert key_ring.retire(ring) == [old]
    retired = KeyRing.load(ring)
    assert retired.open(before) is None
    assert retired.state_of(before) == ("retired", old)
    opened = retired.open(after)
    assert opened is not None
    assert opened.plaintext == b"sealed-after"
    assert [(k.fingerprint, k.state) for k in retired.listing()] == [
        (new, "current"),
        (old, "retired"),
    ]


def test_the_current_key_cannot_be_retired(tmp_path: Path) -> None:
    ring = tmp_path / "ring"
    current = key_ring.init(ring)
    assert current is not None
    with pytest.raises(KeyRingError, match="is the current key"):
        key_ring.retire(ring, [current])
    with pytest.raises(KeyRingError, match="no accepted key"):
        key_ring.retire(ring, ["0" * 16])


def test_a_worker_sees_a_rotation_and_a_retirement_without_a_restart(tmp_path: Path) -> None:
    """The worker's ring is loaded once; it picks up both changes at the next unseal."""
    ring = tmp_path / "ring"
    key_ring.init(ring)
    worker = WorkerKeys(KeyRing.load(ring), None)
    old_box = sealed_to_current(ring, "Old-Passw0rd")
    key_ring.rotate(ring)
    new_box = sealed_to_current(ring, "New-Passw0rd")
    assert worker.unseal(new_box, "data.password") == "New-Passw0rd"
    assert worker.unseal(old_box, "data.password") == "Old-Passw0rd"
    key_ring.retire(ring)
    with pytest.raises(PermanentError, match="retired") as refused:
        worker.unseal(old_box, "data.password")
    assert refused.value.code == "retired_key"
    assert worker.unseal(new_box, "data.password") == "New-Passw0rd"  # the control


def test_a_box_to_no_key_of_the_ring_is_undecryptable(tmp_path: Path) -> None:
    ring, other = tmp_path / "ring", tmp_path / "other"
    key_ring.init(ring)
    key_ring.init(other)
    worker = WorkerKeys(KeyRing.load(ring), None)
    with pytest.raises(ContractError) as refused:
        worker.unseal(sealed_to_current(other, "x"), "data.password")
    assert refused.value.code == "password_undecryptable"


def test_adopting_an_existing_key_keeps_what_was_sealed_to_it(tmp_path: Path) -> None:
    public, private = tmp_path / "fleet.pub", tmp_path / "fleet.key"
    generate_key_pair(public, private)
    box = seal("Sealed-Long-Ago-1", load_public_key(public))
    ring = tmp_path / "ring"
    key_ring.init(ring, adopt=private)
    assert (ring / key_ring.CURRENT).read_text() == public.read_text()
    assert WorkerKeys(KeyRing.load(ring), None).unseal(box, "p") == "Sealed-Long-Ago-1"
