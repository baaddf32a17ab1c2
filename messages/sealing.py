"""Sealed passwords: libsodium sealed boxes (``crypto_box_seal``) via PyNaCl.

Producers seal a password to the fleet's public key; only a worker holding the private
key can open it, and does so at the moment of the directory write.  Keys are stored
base64-encoded, one per file; the private key's file is mode 0600.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path

from nacl.exceptions import CryptoError
from nacl.public import PrivateKey, PublicKey, SealedBox

from messages.errors import ContractError

UNSEAL_ERROR = "password_undecryptable"


def seal(plaintext: str, public_key: PublicKey) -> bytes:
    return bytes(SealedBox(public_key).encrypt(plaintext.encode("utf-8")))


def unseal(sealed: bytes, private_key: PrivateKey, path: str) -> str:
    """The plaintext of ``sealed``; a box that does not open is a permanent error."""
    try:
        return SealedBox(private_key).decrypt(sealed).decode("utf-8")
    except (CryptoError, UnicodeDecodeError):
        raise ContractError(
            UNSEAL_ERROR, "the sealed password does not open with the fleet's key", path
        ) from None


def load_public_key(path: str | Path) -> PublicKey:
    return PublicKey(base64.b64decode(Path(path).read_text(encoding="ascii").strip()))


def load_private_key(path: str | Path) -> PrivateKey:
    return PrivateKey(base64.b64decode(Path(path).read_text(encoding="ascii").strip()))


def generate_key_pair(public_path: Path, private_path: Path) -> bool:
    """Write a new key pair unless both files exist; return whether one was written."""
    if public_path.exists() and private_path.exists():
        return False
    key = PrivateKey.generate()
    descriptor = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="ascii") as private_file:
        private_file.write(base64.b64encode(bytes(key)).decode("ascii") + "\n")
    public_path.write_text(base64.b64encode(bytes(key.public_key)).decode("ascii") + "\n")
    return True
