"""Initial passwords: generated ones, and the form AD takes them in."""

from __future__ import annotations

import secrets
import string

GENERATED_LENGTH = 24
_CLASSES = (string.ascii_uppercase, string.ascii_lowercase, string.digits, "-_.!#%+=")


def generate(min_length: int = 0) -> str:
    """A random password with every character class, at least 24 characters long."""
    length = max(GENERATED_LENGTH, min_length)
    alphabet = "".join(_CLASSES)
    while True:
        candidate = "".join(secrets.choice(alphabet) for _ in range(length))
        if all(any(c in cls for c in candidate) for cls in _CLASSES):
            return candidate


def unicode_pwd(password: str) -> bytes:
    """``unicodePwd``'s value: the password in double quotes, UTF-16-LE."""
    return f'"{password}"'.encode("utf-16-le")
