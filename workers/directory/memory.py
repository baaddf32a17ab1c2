"""A directory held in memory, with the semantics the steps rely on, for fast tests and the
pipeline benchmark.  It replaces no test against Samba: ``tests/integration/
test_directory_contract.py`` runs the same checks against it and against the real DC.

What it keeps of Active Directory (as Samba 4.17 answers, measured):

- DNs and attribute names are case-insensitive, and so are the values of the string
  attributes the fleet writes (a DirectoryString matches without case);
- an add needs its parent (``noSuchObject``) and a free DN (``entryAlreadyExists``); the
  naming attribute (``cn``, ``ou``) is set from the DN; a ``sAMAccountName`` is unique in
  the whole directory (``entryAlreadyExists``, naming it) and so is a
  ``userPrincipalName`` (``constraintViolation``, naming it);
- a modify is atomic and compares and swaps: adding a value present is
  ``attributeOrValueExists``, deleting one absent is ``noSuchAttribute``, and then
  nothing of that modify is applied;
- ``member`` is a linked attribute: its values must name entries (``noSuchObject``),
  an entry's ``memberOf`` is kept from them, and deleting an entry takes it out of every
  group;
- a delete needs the entry (``noSuchObject``) to have no children
  (``notAllowedOnNonLeaf``);
- users and groups get an ``objectSid`` in the domain; ``whenCreated`` is stamped;
  ``unicodePwd`` is write-only;
- the security descriptor is the one given at add (``nTSecurityDescriptor``), else
  ``default_descriptor``; only its DACL part is read and written, as by the ldap3 edge.

Equality on the attributes a DC indexes (``cn``, ``keywords``, ``sAMAccountName``, ...)
is answered from an index, and a value's presence from a set, as a DC does: a search or
a compare-and-swap costs what it costs on a DC, not a scan of everything.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from ldap3.utils.dn import to_dn
from winacl.dtyp.sid import SID

from workers.directory.ldap_filter import And, Kind, Match, Node, Not, Or
from workers.directory.ldap_filter import parse as parse_filter
from workers.directory.port import (
    Change,
    Changes,
    DirectoryRefused,
    Entry,
    Scope,
)

# Attributes answered from an index; the rest are matched entry by entry.
INDEXED = frozenset(
    {"cn", "ou", "keywords", "samaccountname", "userprincipalname", "objectclass", "member"}
)
UNIQUE = {"samaccountname": "entryAlreadyExists", "userprincipalname": "constraintViolation"}
DN_VALUED = frozenset({"member", "memberof", "distinguishedname", "objectcategory"})
# Values kept as bytes; every other value is text, as the ldap3 edge returns it.
BINARY = frozenset({"objectsid", "objectguid", "msds-bytearray", "tokengroups"})
WRITE_ONLY = frozenset({"unicodepwd"})
DESCRIPTOR = "ntsecuritydescriptor"
SECURITY_PRINCIPALS = frozenset({"user", "group", "computer"})
FIRST_RID = 1100
_TIME = "%Y%m%d%H%M%S.0Z"
_HEX = frozenset("0123456789abcdefABCDEF")


# Small caches: a DN is normalised several times within one message, rarely after it, and a
# cache as large as the directory would grow the process with every new entry.
@lru_cache(maxsize=1024)
def normal(dn: str) -> str:
    """The form two spellings of one DN share: no spaces around, no case."""
    if "\\" in dn or "+" in dn:  # escapes or multi-valued RDNs: ldap3 splits those
        parts = [f"{kind.strip()}={value.strip()}" for kind, value in to_dn(dn, decompose=True)]
    else:
        parts = ["=".join(side.strip() for side in p.split("=", 1)) for p in dn.split(",")]
    return ",".join(parts).lower()


@lru_cache(maxsize=1024)
def parent_of(dn: str) -> str:
    if "\\" not in dn:
        return dn.split(",", 1)[1].strip() if "," in dn else ""
    return ",".join(p.strip() for p in to_dn(dn)[1:])


def rdn_of(dn: str) -> tuple[str, str]:
    """The naming attribute of ``dn`` and its value, unescaped (RFC 4514): a DC keeps it
    as an attribute of the entry (``cn``, ``ou``)."""
    if "\\" not in dn:
        kind, _, value = dn.split(",", 1)[0].partition("=")
        return kind.strip(), value.strip()
    kind, value = to_dn(dn, decompose=True)[0]
    out, i = [], 0
    while i < len(value):
        if value[i] == "\\" and i + 1 < len(value):
            pair = value[i + 1 : i + 3]
            if len(pair) == len("hh") and set(pair) <= _HEX:
                out.append(chr(int(pair, 16)))
                i += 3
            else:
                out.append(value[i + 1])
                i += 2
            continue
        out.append(value[i])
        i += 1
    return kind.strip(), "".join(out).strip()


def sid_bytes(sid: str) -> bytes:
    """``S-1-5-21-a-b-c-rid`` in its binary form, as a DC stores ``objectSid``."""
    return bytes(SID.from_string(sid).to_bytes())


def _as_stored(name: str, value: Any) -> Any:
    if name.lower() in BINARY or isinstance(value, bytes | bytearray):
        return bytes(value) if isinstance(value, bytes | bytearray) else str(value).encode()
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    return str(value)


def _key(lower_name: str, value: Any) -> Any:
    """How a value compares: DNs in normal form, text without case, bytes as they are."""
    if isinstance(value, bytes):
        return value
    return normal(value) if lower_name in DN_VALUED else value.lower()


def _values(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else [value]


@dataclass(frozen=True)
class _Attribute:
    name: str  # as first given
    values: dict[Any, Any]  # compare key -> value, in the order they were added

    @classmethod
    def of(cls, name: str, raw: Iterable[Any]) -> _Attribute:
        lower = name.lower()
        values: dict[Any, Any] = {}
        for value in raw:
            if type(value) is str and lower not in BINARY:  # the common case, kept as is
                values[normal(value) if lower in DN_VALUED else value.lower()] = value
            else:
                stored = _as_stored(name, value)
                values[_key(lower, stored)] = stored
        return cls(name, values)


@dataclass
class _Stored:
    dn: str  # as it was given at add
    attributes: dict[str, _Attribute]  # by lower-case name
    descriptor: bytes | None
    children: set[str] = field(default_factory=set)  # their normal DNs

    def keys(self, lower_name: str) -> Iterable[Any]:
        found = self.attributes.get(lower_name)
        return found.values.keys() if found else ()

    def values(self, lower_name: str) -> Iterable[Any]:
        found = self.attributes.get(lower_name)
        return found.values.values() if found else ()


class MemoryDirectory:
    """A :class:`workers.directory.port.Directory` in memory (see the module's docstring)."""

    def __init__(
        self,
        base_dn: str,
        domain_sid: str,
        default_descriptor: bytes | None = None,
        configuration_nc: str | None = None,
    ) -> None:
        self._base_dn = base_dn
        self._configuration_nc = configuration_nc or f"CN=Configuration,{base_dn}"
        self.domain_sid = domain_sid
        self.default_descriptor = default_descriptor
        self._entries: dict[str, _Stored] = {}
        self._index: dict[tuple[str, Any], set[str]] = {}
        self._rids = itertools.count(FIRST_RID)
        self._passwords: dict[str, str] = {}
        self.closed = False
        head = {
            "objectclass": _Attribute.of("objectClass", ["top", "domain", "domainDNS"]),
            "objectsid": _Attribute.of("objectSid", [sid_bytes(domain_sid)]),
        }
        self._insert(base_dn, head, None)

    # -- the port

    @property
    def base_dn(self) -> str:
        return self._base_dn

    @property
    def configuration_nc(self) -> str:
        return self._configuration_nc

    def read(self, dn: str, attributes: Sequence[str]) -> Entry | None:
        stored = self._entries.get(normal(dn))
        return None if stored is None else _entry(stored, attributes)

    def search(
        self, base: str, ldap_filter: str, scope: Scope, attributes: Sequence[str]
    ) -> list[Entry]:
        start = normal(base)
        if start not in self._entries:
            return []
        node = parse_filter(ldap_filter)
        in_scope = self._scope(start, scope, self._candidates(node))
        return [
            _entry(self._entries[dn], attributes)
            for dn in in_scope
            if _matches(node, self._entries[dn])
        ]

    def add(self, dn: str, object_class: Sequence[str], attributes: Mapping[str, Any]) -> None:
        key = normal(dn)
        if key in self._entries:
            raise DirectoryRefused("entryAlreadyExists", f"Entry {dn} already exists")
        if normal(parent_of(dn)) not in self._entries:
            raise DirectoryRefused("noSuchObject", f"the parent of {dn} does not exist")
        given = dict(attributes)
        descriptor = None
        password = None
        plain: dict[str, _Attribute] = {}
        for name, raw in given.items():
            lower = name.lower()
            if lower == DESCRIPTOR:
                descriptor = bytes(raw)
            elif lower == "unicodepwd":
                password = _password(raw)
            else:
                plain[lower] = _Attribute.of(name, _values(raw))
        plain["objectclass"] = _Attribute.of("objectClass", object_class)
        naming, value = rdn_of(dn)
        plain.setdefault(naming.lower(), _Attribute.of(naming, [value]))
        classes = {str(c).lower() for c in object_class}
        if classes & SECURITY_PRINCIPALS:
            sid = f"{self.domain_sid}-{next(self._rids)}"
            plain["objectsid"] = _Attribute.of("objectSid", [sid_bytes(sid)])
        if "person" in classes or "user" in classes:
            category = f"CN=Person,CN=Schema,{self._configuration_nc}"
            plain["objectcategory"] = _Attribute.of("objectCategory", [category])
        self._check_unique(key, plain, plain)
        self._check_members(plain.get("member"))
        self._insert(dn, plain, descriptor if descriptor is not None else self.default_descriptor)
        if password is not None:
            self._passwords[key] = password

    def modify(self, dn: str, changes: Changes) -> None:
        key = normal(dn)
        stored = self._entries.get(key)
        if stored is None:
            raise DirectoryRefused("noSuchObject", f"{dn} does not exist")
        after = dict(stored.attributes)  # each change makes new value sets: nothing shared
        changed: dict[str, _Attribute] = {}
        password: str | None = None
        for name, operations in changes.items():
            lower = name.lower()
            for change, raw in operations:
                if lower == "unicodepwd":
                    password = _password(raw[0]) if raw else None
                    continue
                values = _Attribute.of(name, raw).values
                current = after.get(lower)
                new = _changed(dn, name, current.values if current else {}, change, values)
                if lower == "member" and change is not Change.DELETE:
                    self._check_members(_Attribute(name, values))
                attribute = _Attribute(current.name if current else name, new)
                changed[lower] = attribute
                if new:
                    after[lower] = attribute
                else:
                    after.pop(lower, None)
        self._check_unique(key, changed, after)
        self._reindex(key, stored.attributes, after, changed)
        self._relink(key, stored.attributes, after)
        stored.attributes = after
        if password is not None:
            self._passwords[key] = password

    def delete(self, dn: str) -> None:
        key = normal(dn)
        stored = self._entries.get(key)
        if stored is None:
            raise DirectoryRefused("noSuchObject", f"{dn} does not exist")
        if stored.children:
            raise DirectoryRefused("notAllowedOnNonLeaf", f"{dn} has children")
        for group in list(self._index.get(("member", key), ())):
            holder = self._entries[group]
            members = holder.attributes["member"]
            kept = {k: v for k, v in members.values.items() if k != key}
            after = dict(holder.attributes)
            if kept:
                after["member"] = _Attribute(members.name, kept)
            else:
                del after["member"]
            self._reindex(group, holder.attributes, after, ("member",))
            holder.attributes = after
        self._reindex(key, stored.attributes, {}, stored.attributes)
        self._relink(key, stored.attributes, {})
        del self._entries[key]
        self._passwords.pop(key, None)
        parent = self._entries.get(normal(parent_of(dn)))
        if parent is not None:
            parent.children.discard(key)

    def read_security_descriptor(self, dn: str) -> bytes | None:
        stored = self._entries.get(normal(dn))
        return None if stored is None else stored.descriptor

    def write_dacl(self, dn: str, descriptor: bytes) -> None:
        stored = self._entries.get(normal(dn))
        if stored is None:
            raise DirectoryRefused("noSuchObject", f"{dn} does not exist")
        stored.descriptor = bytes(descriptor)

    def close(self) -> None:
        self.closed = True

    # -- for tests

    def password_of(self, dn: str) -> str | None:
        """The password last set on ``dn`` (a DC would only let one bind with it)."""
        return self._passwords.get(normal(dn))

    def dump(self) -> dict[str, dict[str, Any]]:
        """Every entry's attributes and descriptor, keyed by normal DN: compare two dumps to
        see whether anything changed."""
        out: dict[str, dict[str, Any]] = {}
        for key, stored in self._entries.items():
            values: dict[str, Any] = {
                name: sorted(map(repr, a.values.values())) for name, a in stored.attributes.items()
            }
            values[DESCRIPTOR] = stored.descriptor
            values["unicodepwd"] = self._passwords.get(key)
            out[key] = values
        return out

    # -- inside

    def _insert(self, dn: str, attributes: dict[str, _Attribute], descriptor: bytes | None) -> None:
        key = normal(dn)
        stamp = _stamp(int(time.time()))
        attributes["whencreated"] = _Attribute.of("whenCreated", [stamp])
        self._entries[key] = _Stored(dn, attributes, descriptor)
        if key != normal(self._base_dn):
            self._entries[normal(parent_of(dn))].children.add(key)
        self._reindex(key, {}, attributes, attributes)
        self._relink(key, {}, attributes)

    def _check_unique(
        self,
        key: str,
        changed: Mapping[str, _Attribute],
        after: Mapping[str, _Attribute],
    ) -> None:
        for name, result in UNIQUE.items():
            if name not in changed:
                continue
            for value_key, value in after.get(name, _EMPTY).values.items():
                if self._index.get((name, value_key), set()) - {key}:
                    spelled = after[name].name
                    raise DirectoryRefused(
                        result, f"{spelled} ({name}) '{value}' already in use by another object"
                    )

    def _check_members(self, member: _Attribute | None) -> None:
        for key, value in member.values.items() if member else ():
            if key not in self._entries:
                raise DirectoryRefused("noSuchObject", f"member {value} does not exist")

    def _reindex(
        self,
        key: str,
        before: Mapping[str, _Attribute],
        after: Mapping[str, _Attribute],
        names: Iterable[str],
    ) -> None:
        for name in INDEXED.intersection(names):
            old = before.get(name, _EMPTY).values
            new = after.get(name, _EMPTY).values
            gone = old.keys() - new.keys() if new else old.keys()
            came = new.keys() - old.keys() if old else new.keys()
            for value in gone:
                holders = self._index.get((name, value))
                if holders is not None:
                    holders.discard(key)
                    if not holders:
                        del self._index[(name, value)]
            for value in came:
                holders = self._index.get((name, value))
                if holders is None:
                    self._index[(name, value)] = {key}
                else:
                    holders.add(key)

    def _relink(
        self,
        key: str,
        before: Mapping[str, _Attribute],
        after: Mapping[str, _Attribute],
    ) -> None:
        """Keep each member's ``memberOf`` from the groups' ``member`` (the back link)."""
        old = before.get("member", _EMPTY).values.keys()
        new = after.get("member", _EMPTY).values.keys()
        if old == new:
            return
        group_dn = self._entries[key].dn if key in self._entries else ""
        for member in old - new:
            target = self._entries.get(member)
            if target is not None:
                back = target.attributes.get("memberof", _EMPTY)
                kept = {k: v for k, v in back.values.items() if k != key}
                _set(target, _Attribute("memberOf", kept))
        for member in new - old:
            target = self._entries.get(member)
            if target is not None:
                back = target.attributes.get("memberof", _EMPTY)
                _set(target, _Attribute("memberOf", {**back.values, key: group_dn}))

    def _candidates(self, node: Node) -> set[str] | None:
        """The entries an index says may match ``node``; None when no index narrows it."""
        if isinstance(node, Match):
            if node.kind is not Kind.EQUAL or node.attribute not in INDEXED:
                return None
            return set(self._index.get((node.attribute, _key(node.attribute, node.value)), ()))
        if isinstance(node, And):
            narrowed = [c for c in map(self._candidates, node.items) if c is not None]
            return set.intersection(*narrowed) if narrowed else None
        if isinstance(node, Or):
            found: set[str] = set()
            for item in node.items:
                part = self._candidates(item)
                if part is None:
                    return None
                found |= part
            return found
        return None

    def _scope(self, base: str, scope: Scope, candidates: set[str] | None) -> list[str]:
        if scope is Scope.BASE:
            found = [base]
        elif scope is Scope.ONE_LEVEL:
            children = self._entries[base].children
            if candidates is not None and len(candidates) < len(children):
                return [dn for dn in candidates if dn in children]
            found = list(children)
        else:
            found = [base]
            stack = [base]
            while stack:
                children = self._entries[stack.pop()].children
                found.extend(children)
                stack.extend(children)
        if candidates is not None:
            found = [dn for dn in found if dn in candidates]
        return found


_EMPTY = _Attribute("", {})


@lru_cache(maxsize=2)
def _stamp(second: int) -> str:
    return datetime.fromtimestamp(second, UTC).strftime(_TIME)


def _entry(stored: _Stored, attributes: Sequence[str]) -> Entry:
    wanted = {a.lower() for a in attributes}
    everything = "*" in wanted or not wanted
    out = {
        a.name: list(a.values.values())
        for lower, a in stored.attributes.items()
        if (everything or lower in wanted) and lower not in WRITE_ONLY
    }
    if "distinguishedname" in wanted:
        out["distinguishedName"] = [stored.dn]
    return Entry(stored.dn, out)


def _matches(node: Node, stored: _Stored) -> bool:  # noqa: PLR0911 - one case a node kind
    match node:
        case And(items=items):
            return all(_matches(e, stored) for e in items)
        case Or(items=items):
            return any(_matches(e, stored) for e in items)
        case Not(item=item):
            return not _matches(item, stored)
        case Match(kind=Kind.PRESENT, attribute=name):
            return name == "objectclass" or name in stored.attributes
        case Match(kind=Kind.SUBSTRING, attribute=name, parts=parts):
            return any(_substring(parts, str(v)) for v in stored.values(name))
        case Match(kind=Kind.EQUAL, attribute=name, value=value):
            return _equal(name, stored, value)
        case Match(kind=Kind.GREATER_OR_EQUAL, attribute=name, value=value):
            return any(_order(v) >= _order(value) for v in stored.values(name))
        case Match(kind=Kind.LESS_OR_EQUAL, attribute=name, value=value):
            return any(_order(v) <= _order(value) for v in stored.values(name))
    raise DirectoryRefused("unwillingToPerform", f"filter {node} is not supported here")


def _equal(name: str, stored: _Stored, wanted: str) -> bool:
    if name == "objectcategory":  # (objectCategory=person) names the class
        short = f"cn={wanted.lower()},"
        return any(k == normal(wanted) or str(k).startswith(short) for k in stored.keys(name))
    if name in BINARY:
        return wanted.encode("latin-1", errors="ignore") in stored.keys(name)
    return _key(name, wanted) in stored.keys(name)


def _changed(
    dn: str, name: str, current: dict[Any, Any], change: Change, values: dict[Any, Any]
) -> dict[Any, Any]:
    """The values of ``name`` after one change, or the refusal a DC gives."""
    if change is Change.REPLACE:
        return values
    if change is Change.ADD:
        for key, value in values.items():
            if key in current:
                raise DirectoryRefused(
                    "attributeOrValueExists", f"{name}: value {value!r} exists on {dn}"
                )
        return {**current, **values}
    if not values:
        if not current:
            raise DirectoryRefused("noSuchAttribute", f"{dn} has no {name}")
        return {}
    if any(key not in current for key in values):
        raise DirectoryRefused("noSuchAttribute", f"{name}: no such value on {dn}")
    kept = dict(current)
    for key in values:
        del kept[key]
    return kept


def _set(stored: _Stored, attribute: _Attribute) -> None:
    if attribute.values:
        stored.attributes[attribute.name.lower()] = attribute
    else:
        stored.attributes.pop(attribute.name.lower(), None)


def _password(raw: Any) -> str:
    """The plaintext of a ``unicodePwd`` value: UTF-16-LE within double quotes."""
    value = raw[0] if isinstance(raw, list | tuple) else raw
    text = bytes(value).decode("utf-16-le") if isinstance(value, bytes | bytearray) else str(value)
    return text[1:-1] if text.startswith('"') and text.endswith('"') else text


def _order(value: Any) -> tuple[int, Any]:
    """Numbers as numbers, everything else as text (generalized times order as text)."""
    text = value.decode() if isinstance(value, bytes) else str(value)
    try:
        return (0, int(text))
    except ValueError:
        return (1, text.lower())


def _substring(parts: tuple[str | None, tuple[str, ...], str | None], value: str) -> bool:
    initial, middle, final = parts
    text = value.lower()
    position = 0
    if initial is not None:
        if not text.startswith(initial.lower()):
            return False
        position = len(initial)
    for part in middle:
        found = text.find(part.lower(), position)
        if found < 0:
            return False
        position = found + len(part)
    return final is None or text[position:].endswith(final.lower())
