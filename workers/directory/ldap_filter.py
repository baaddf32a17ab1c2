"""LDAP search filters (RFC 4515) as data, for the in-memory directory: parsed into a tree
of :class:`And`, :class:`Or`, :class:`Not` and :class:`Match` nodes, values unescaped.

ldap3 parses filters too, but at about 160 µs for the idempotency lookup's filter it cost
more than the rest of an in-memory search; this parser takes a few µs, and
``tests/unit/test_ldap_filter.py`` holds it to ldap3's reading of the same filters.
Extensible and approximate matches are not supported (the fleet writes none).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum
from functools import lru_cache


class FilterError(ValueError):
    """A filter that does not parse."""


class Kind(Enum):
    EQUAL = "="
    GREATER_OR_EQUAL = ">="
    LESS_OR_EQUAL = "<="
    PRESENT = "=*"
    SUBSTRING = "*"


@dataclass(frozen=True)
class Match:
    kind: Kind
    attribute: str  # lower case
    value: str = ""  # unescaped; for SUBSTRING the parts between the stars below
    parts: tuple[str | None, tuple[str, ...], str | None] = (None, (), None)  # initial, any, final


@dataclass(frozen=True)
class And:
    items: tuple[Node, ...]


@dataclass(frozen=True)
class Or:
    items: tuple[Node, ...]


@dataclass(frozen=True)
class Not:
    item: Node


Node = And | Or | Not | Match

_ITEM = re.compile(r"([A-Za-z0-9][A-Za-z0-9\-;.]*)(>=|<=|~=|:=|=)(.*)", re.DOTALL)
_ESCAPE = re.compile(rb"\\([0-9a-fA-F]{2})")
_LONE_BACKSLASH = re.compile(r"\\(?![0-9a-fA-F]{2})")


def unescape(value: str) -> str:
    """A filter value's ``\\HH`` escapes turned back into the UTF-8 they stand for."""
    if "\\" not in value:
        return value
    if _LONE_BACKSLASH.search(value):
        raise FilterError(f"a backslash that escapes nothing in {value!r}")
    return _ESCAPE.sub(lambda m: bytes([int(m[1], 16)]), value.encode("utf-8")).decode("utf-8")


@lru_cache(maxsize=256)  # the fleet's fixed filters; a lookup's filter is new each time
def parse(text: str) -> Node:
    node, end = _parse(text.strip(), 0)
    if end != len(text.strip()):
        raise FilterError(f"text after the filter's end: {text!r}")
    return node


def _parse(text: str, at: int) -> tuple[Node, int]:
    if at >= len(text) or text[at] != "(":
        raise FilterError(f"'(' expected at {at} in {text!r}")
    at += 1
    head = text[at : at + 1]
    if head in ("&", "|"):
        items: list[Node] = []
        at += 1
        while at < len(text) and text[at] == "(":
            item, at = _parse(text, at)
            items.append(item)
        node: Node = And(tuple(items)) if head == "&" else Or(tuple(items))
    elif head == "!":
        item, at = _parse(text, at + 1)
        node = Not(item)
    else:
        end = text.find(")", at)
        if end < 0:
            raise FilterError(f"unclosed item in {text!r}")
        node, at = _item(text[at:end]), end
    if at >= len(text) or text[at] != ")":
        raise FilterError(f"')' expected at {at} in {text!r}")
    return node, at + 1


def _item(text: str) -> Match:
    found = _ITEM.fullmatch(text.strip())
    if found is None or "(" in text:
        raise FilterError(f"not an attribute assertion: {text!r}")
    # Around the value, white space is dropped, as ldap3 drops it before the DC sees it.
    attribute, operator, value = found[1].lower(), found[2], found[3].strip()
    if operator in ("~=", ":="):
        raise FilterError(f"{operator} matches are not supported: {text!r}")
    if operator == ">=":
        return Match(Kind.GREATER_OR_EQUAL, attribute, unescape(value))
    if operator == "<=":
        return Match(Kind.LESS_OR_EQUAL, attribute, unescape(value))
    if value == "*":
        return Match(Kind.PRESENT, attribute)
    if "*" in value:
        initial, *middle, final = value.split("*")
        return Match(
            Kind.SUBSTRING,
            attribute,
            parts=(
                unescape(initial) if initial else None,
                tuple(unescape(m) for m in middle if m),
                unescape(final) if final else None,
            ),
        )
    return Match(Kind.EQUAL, attribute, unescape(value))
