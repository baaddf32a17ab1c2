from __future__ import annotations

import stat
from pathlib import Path

import pytest
from nacl.public import PrivateKey

from messages.envelope import decode, encode
from messages.errors import ContractError
from messages.events import TenantCreated, UserCreated
from messages.json_input import envelope_from_json
from messages.sealing import generate_key_pair, load_private_key, load_public_key, seal, unseal

SECRET = "Corr3ct-Horse-Battery-Staple"


def user_line(password: str) -> dict[str, object]:
    return {
        "type": "user.created",
        "data": {
            "tenant": "t1",
            "username": "u1",
            "given_name": "G",
            "surname": "S",
            "password": password,
        },
    }


def test_a_sealed_password_opens_only_with_the_fleet_key() -> None:
    key = PrivateKey.generate()
    sealed = seal(SECRET, key.public_key)
    assert SECRET.encode() not in sealed
    assert unseal(sealed, key, "data.password") == SECRET
    with pytest.raises(ContractError) as info:
        unseal(sealed, PrivateKey.generate(), "data.password")
    assert (info.value.code, info.value.path) == ("password_undecryptable", "data.password")


def test_json_input_seals_plaintext_before_encoding() -> None:
    key = PrivateKey.generate()
    envelope = envelope_from_json(user_line(SECRET), public_key=key.public_key)
    assert isinstance(envelope.data, UserCreated)
    assert envelope.data.password is not None
    assert SECRET.encode() not in encode(envelope)
    assert SECRET not in repr(envelope)
    opened = decode(encode(envelope)).data
    assert isinstance(opened, UserCreated)
    assert opened.password is not None
    assert unseal(opened.password, key, "data.password") == SECRET


def test_nested_admin_passwords_are_sealed_too() -> None:
    key = PrivateKey.generate()
    line = {
        "type": "tenant.created",
        "data": {
            "tenant": "t1",
            "name": "T",
            "domains": ["t1.example"],
            "admin": {"username": "a", "given_name": "A", "surname": "B", "password": SECRET},
        },
    }
    envelope = envelope_from_json(line, public_key=key.public_key)
    assert isinstance(envelope.data, TenantCreated)
    assert envelope.data.admin.password is not None
    assert unseal(envelope.data.admin.password, key, "p") == SECRET


def test_a_password_without_a_public_key_is_refused() -> None:
    with pytest.raises(ContractError) as info:
        envelope_from_json(user_line(SECRET))
    assert (info.value.code, info.value.path) == ("no_public_key", "data.password")


def test_key_pair_files(tmp_path: Path) -> None:
    public, private = tmp_path / "fleet.pub", tmp_path / "fleet.key"
    assert generate_key_pair(public, private)
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    before = private.read_bytes()
    assert not generate_key_pair(public, private)
    assert private.read_bytes() == before
    sealed = seal(SECRET, load_public_key(public))
    assert unseal(sealed, load_private_key(private), "p") == SECRET
