"""Field rules of the v1 contract, and a reader that applies them with the field's path.

Every rule raises :class:`messages.errors.ContractError`; nothing else escapes.
The rules are documented field by field in ``docs/events.md``.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar

from messages.errors import ContractError

T = TypeVar("T")

# A tenant id is an RDN value, a prefix of group sAMAccountNames and part of no UPN:
# lowercase letters, digits and inner hyphens, 2-20 characters.  Nothing in it needs
# escaping in a DN or a filter, and it is safe as a sAMAccountName component.
TENANT_ID = re.compile(r"[a-z0-9][a-z0-9-]{0,18}[a-z0-9]")
# A username is the local part of the UPN and the user's RDN value: letters, digits and
# . _ - inside, 1-64 characters, starting and ending with a letter or digit, no "..".
USERNAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,62}[A-Za-z0-9])?")
DNS_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
# Unicode categories never accepted in any string field: controls (NUL included),
# surrogates, line and paragraph separators.
_FORBIDDEN_CATEGORIES = frozenset({"Cc", "Cs", "Zl", "Zp"})


def reject_control_characters(value: str, path: str) -> None:
    if value.isprintable():  # the common case: every forbidden category is unprintable
        return
    for index, char in enumerate(value):
        if unicodedata.category(char) in _FORBIDDEN_CATEGORIES:
            raise ContractError(
                "control_character",
                f"character U+{ord(char):04X} at position {index} is not allowed",
                path,
            )


def tenant_id(value: str, path: str) -> str:
    if not TENANT_ID.fullmatch(value):
        raise ContractError(
            "unsafe_identifier",
            "a tenant id is 2-20 of a-z, 0-9 and inner '-'",
            path,
        )
    return value


def username(value: str, path: str) -> str:
    if not USERNAME.fullmatch(value) or ".." in value:
        raise ContractError(
            "unsafe_identifier",
            "a username is 1-64 of A-Z, a-z, 0-9 and inner '.', '_', '-' (no '..')",
            path,
        )
    return value


def domain_name(value: str, path: str) -> str:
    labels = value.split(".")
    if len(value) > 253 or len(labels) < 2 or not all(DNS_LABEL.fullmatch(x) for x in labels):
        raise ContractError(
            "invalid_domain",
            "a domain is a lowercase DNS name with at least two labels",
            path,
        )
    return value


def display_text(max_length: int) -> Callable[[str, str], str]:
    """Any printable Unicode, 1..max_length characters: stored literally, escaped where needed."""

    def check(value: str, path: str) -> str:
        if not value or len(value) > max_length:
            raise ContractError("invalid_length", f"must be 1-{max_length} characters", path)
        return value

    return check


def token(max_length: int) -> Callable[[str, str], str]:
    """An opaque printable token (message ids, idempotency keys), 1..max_length characters."""

    def check(value: str, path: str) -> str:
        if not value or len(value) > max_length:
            raise ContractError("invalid_length", f"must be 1-{max_length} characters", path)
        if not value.isprintable():
            raise ContractError("invalid_value", "must be printable", path)
        return value

    return check


def timestamp(value: str, path: str) -> datetime:
    """An RFC 3339 UTC timestamp (``Z`` or ``+00:00``)."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ContractError("invalid_timestamp", "not an RFC 3339 timestamp", path) from None
    if (
        "T" not in value.upper()
        or parsed.tzinfo is None
        or parsed.utcoffset() != UTC.utcoffset(None)
    ):
        raise ContractError("invalid_timestamp", "must be an RFC 3339 UTC timestamp", path)
    return parsed.astimezone(UTC)


def format_timestamp(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


_KIND_NAMES: dict[type, str] = {
    str: "string",
    int: "integer",
    bool: "boolean",
    bytes: "bytes",
    list: "array",
    dict: "map",
    Mapping: "map",
}


def _type_name(value: object) -> str:
    if value is None:
        return "nil"
    return _KIND_NAMES.get(type(value), type(value).__name__)


class FieldReader:
    """Reads the fields of one msgpack map, each checked against its rule.

    Unknown fields are rejected (``unknown_field``): a typo in an optional field would
    otherwise be dropped without a word.  Call :meth:`done` after the last read.
    """

    def __init__(self, raw: object, path: str) -> None:
        if not isinstance(raw, Mapping):
            raise ContractError("wrong_type", f"expected a map, got {_type_name(raw)}", path)
        for key in raw:
            if not isinstance(key, str):
                raise ContractError("wrong_type", "map keys must be strings", path)
        self._raw: Mapping[str, Any] = raw
        self._path = path
        self._seen: set[str] = set()

    @property
    def here(self) -> str:
        """The path of the map itself."""
        return self._path

    def path(self, name: str) -> str:
        return f"{self._path}.{name}" if self._path else name

    def _get(self, name: str, kind: type[T], required: bool) -> T | None:
        self._seen.add(name)
        if name not in self._raw:
            if required:
                raise ContractError("missing_field", "this field is required", self.path(name))
            return None
        value = self._raw[name]
        # bool is an int subclass in Python; the wire tells them apart.
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise ContractError(
                "wrong_type",
                f"expected {_KIND_NAMES[kind]}, got {_type_name(value)}",
                self.path(name),
            )
        if isinstance(value, str):
            reject_control_characters(value, self.path(name))
        return value

    def string(self, name: str, rule: Callable[[str, str], T]) -> T:
        value = self._get(name, str, required=True)
        assert value is not None
        return rule(value, self.path(name))

    def optional_string(self, name: str, rule: Callable[[str, str], T]) -> T | None:
        value = self._get(name, str, required=False)
        return None if value is None else rule(value, self.path(name))

    def integer(self, name: str, low: int, high: int) -> int:
        value = self._get(name, int, required=True)
        assert value is not None
        return self._in_range(name, value, low, high)

    def optional_integer(self, name: str, low: int, high: int) -> int | None:
        value = self._get(name, int, required=False)
        return None if value is None else self._in_range(name, value, low, high)

    def _in_range(self, name: str, value: int, low: int, high: int) -> int:
        if not low <= value <= high:
            raise ContractError(
                "out_of_range", f"must be between {low} and {high}", self.path(name)
            )
        return value

    def optional_boolean(self, name: str) -> bool | None:
        return self._get(name, bool, required=False)

    def optional_bytes(self, name: str, max_length: int) -> bytes | None:
        value = self._get(name, bytes, required=False)
        if value is not None and not 0 < len(value) <= max_length:
            raise ContractError("invalid_length", f"must be 1-{max_length} bytes", self.path(name))
        return value

    def string_list(
        self, name: str, rule: Callable[[str, str], T], max_items: int
    ) -> tuple[T, ...]:
        items = self.optional_string_list(name, rule, max_items, required=True)
        assert items is not None
        return items

    def optional_string_list(
        self, name: str, rule: Callable[[str, str], T], max_items: int, *, required: bool = False
    ) -> tuple[T, ...] | None:
        items = self._get(name, list, required=required)
        if items is None:
            return None
        if not 0 < len(items) <= max_items:
            raise ContractError("invalid_length", f"must hold 1-{max_items} items", self.path(name))
        out: list[T] = []
        for index, item in enumerate(items):
            path = f"{self.path(name)}[{index}]"
            if not isinstance(item, str):
                raise ContractError("wrong_type", f"expected string, got {_type_name(item)}", path)
            reject_control_characters(item, path)
            out.append(rule(item, path))
        if len(set(out)) != len(out):
            raise ContractError("duplicate_item", "items must be unique", self.path(name))
        return tuple(out)

    def nested(self, name: str) -> FieldReader:
        self._get(name, Mapping, required=True)  # type: ignore[type-abstract]
        return FieldReader(self._raw[name], self.path(name))

    def optional_nested(self, name: str) -> FieldReader | None:
        if name not in self._raw:
            self._seen.add(name)
            return None
        return self.nested(name)

    def done(self) -> None:
        unknown = sorted(set(self._raw) - self._seen)
        if unknown:
            raise ContractError("unknown_field", "unknown field", self.path(unknown[0]))
