"""A directory held in memory, with the semantics the steps rely on, for fast tests and the
pipeline benchmark.  It replaces no test against Samba: ``tests/integration/
test_directory_contract.py`` runs the same checks against it and against the real DC.

What it keeps of Active Directory (as Samba 4.17 answers, measured):

- DNs and attribute names are case-insensitive, and so are the values of the string
  attributes the fleet writes (a DirectoryString matches without case);
- an add needs its parent (``noSuchObject``) and a free DN (``entryAlreadyExists``); a
  ``sAMAccountName`` is unique in the whole directory (``entryAlreadyExists``, naming
  it) and so is a ``userPrincipalName`` (``constraintViolation``, naming it);
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

Filters are parsed by ldap3's own parser; equality on the attributes a DC indexes
(``cn``, ``keywords``, ``sAMAccountName``, ...) is answered from an index, as a DC does,
so a search costs what it costs on a DC, not a scan of everything.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from ldap3.operation.search import (
    AND,
    MATCH_EQUAL,
    MATCH_GREATER_OR_EQUAL,
    MATCH_LESS_OR_EQUAL,
    MATCH_PRESENT,
    MATCH_SUBSTRING,
    NOT,
    OR,
    ROOT,
    parse_filter,
)
from ldap3.utils.conv import ldap_escape_to_bytes
from ldap3.utils.dn import to_dn
from winacl.dtyp.sid import SID

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
# Values kept as bytes; every other value is text, as the ldap3 edge returns it.
BINARY = frozenset({"objectsid", "objectguid", "msds-bytearray", "tokengroups"})
WRITE_ONLY = frozenset({"unicodepwd"})
DESCRIPTOR = "ntsecuritydescriptor"
SECURITY_PRINCIPALS = frozenset({"user", "group", "computer"})
FIRST_RID = 1100
_TIME = "%Y%m%d%H%M%S.0Z"


@lru_cache(maxsize=65536)
def normal(dn: str) -> str:
    """The form two spellings of one DN share: no spaces around, no case."""
    return ",".join(
        f"{kind.strip()}={value.strip()}".lower() for kind, value in to_dn(dn, decompose=True)
    )


@lru_cache(maxsize=65536)
def parent_of(dn: str) -> str:
    parts = to_dn(dn)
    return ",".join(p.strip() for p in parts[1:])


def rdn_of(dn: str) -> tuple[str, str]:
    """The naming attribute of ``dn`` and its value, unescaped (RFC 4514): a DC keeps it
    as an attribute of the entry (``cn``, ``ou``)."""
    kind, value = to_dn(dn, decompose=True)[0]
    out, i = [], 0
    while i < len(value):
        if value[i] == "\\" and i + 1 < len(value):
            pair = value[i + 1 : i + 3]
            if len(pair) == 2 and all(c in "0123456789abcdefABCDEF" for c in pair):
                out.append(chr(int(pair, 16)))
                i += 3
                continue
            out.append(value[i + 1])
            i += 2
            continue
        out.append(value[i])
        i += 1
    return kind.strip(), "".join(out).strip()


def sid_bytes(sid: str) -> bytes:
    """``S-1-5-21-a-b-c-rid`` in its binary form, as a DC stores ``objectSid``."""
    return bytes(SID.from_string(sid).to_bytes())


@dataclass
class _Stored:
    dn: str  # as it was given at add
    attributes: dict[str, tuple[str, list[Any]]]  # lower name -> (name as given, values)
    descriptor: bytes | None
    children: set[str] = field(default_factory=set)  # their normal DNs

    def values(self, name: str) -> list[Any]:
        found = self.attributes.get(name.lower())
        return found[1] if found else []


def _as_stored(name: str, value: Any) -> Any:
    if name.lower() in BINARY or isinstance(value, bytes | bytearray):
        return bytes(value) if isinstance(value, bytes | bytearray) else str(value).encode()
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    return str(value)


def _key(value: Any) -> Any:
    """How values compare: text without case, bytes as they are."""
    return value.lower() if isinstance(value, str) else value


def _values(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else [value]


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
        self._insert(base_dn, {"objectClass": ["top", "domain", "domainDNS"]}, None)
        self._entries[normal(base_dn)].attributes["objectsid"] = (
            "objectSid",
            [sid_bytes(domain_sid)],
        )

    # -- the port

    @property
    def base_dn(self) -> str:
        return self._base_dn

    @property
    def configuration_nc(self) -> str:
        return self._configuration_nc

    def read(self, dn: str, attributes: Sequence[str]) -> Entry | None:
        stored = self._entries.get(normal(dn))
        return None if stored is None else self._entry(stored, attributes)

    def search(
        self, base: str, ldap_filter: str, scope: Scope, attributes: Sequence[str]
    ) -> list[Entry]:
        root = self._entries.get(normal(base))
        if root is None:
            return []
        node = _parsed(ldap_filter)
        candidates = self._candidates(node)
        in_scope = self._scope(normal(base), scope, candidates)
        return [
            self._entry(self._entries[dn], attributes)
            for dn in in_scope
            if self._matches(node, self._entries[dn])
        ]

    def add(self, dn: str, object_class: Sequence[str], attributes: Mapping[str, Any]) -> None:
        key = normal(dn)
        if key in self._entries:
            raise DirectoryRefused("entryAlreadyExists", f"Entry {dn} already exists")
        if normal(parent_of(dn)) not in self._entries:
            raise DirectoryRefused("noSuchObject", f"the parent of {dn} does not exist")
        given = {name.lower(): (name, _values(value)) for name, value in attributes.items()}
        self._check_unique(key, given)
        for name, values in given.values():
            if name.lower() == "member":
                self._check_members(values)
        descriptor = given.pop(DESCRIPTOR, (None, [None]))[1][0]
        password = given.pop("unicodepwd", None)
        plain = dict(given.values())
        plain["objectClass"] = list(object_class)
        naming, value = rdn_of(dn)
        if naming.lower() not in given:
            plain[naming] = [value]
        self._insert(dn, plain, descriptor if descriptor is not None else self.default_descriptor)
        if password is not None:
            self._passwords[key] = _password(password[1][0])
        classes = {str(c).lower() for c in object_class}
        if classes & SECURITY_PRINCIPALS:
            sid = f"{self.domain_sid}-{next(self._rids)}"
            self._entries[key].attributes["objectsid"] = ("objectSid", [sid_bytes(sid)])
        if "person" in classes or "user" in classes:
            category = f"CN=Person,CN=Schema,{self._configuration_nc}"
            self._entries[key].attributes["objectcategory"] = ("objectCategory", [category])

    def modify(self, dn: str, changes: Changes) -> None:
        key = normal(dn)
        stored = self._entries.get(key)
        if stored is None:
            raise DirectoryRefused("noSuchObject", f"{dn} does not exist")
        after = dict(stored.attributes)  # each change makes a new list: no value is shared
        password: str | None = None
        for name, operations in changes.items():
            lower = name.lower()
            for change, raw in operations:
                values = [_as_stored(name, v) for v in raw]
                if lower == "unicodepwd":
                    password = _password(raw[0]) if raw else None
                    continue
                if lower == "member" and change is not Change.DELETE:
                    self._check_members(values)
                after[lower] = (
                    name,
                    _changed(dn, name, after.get(lower, (name, []))[1], change, values),
                )
                if not after[lower][1]:
                    del after[lower]
        self._check_unique(key, after)
        self._reindex(key, stored.attributes, after)
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
            kept = [v for v in holder.values("member") if normal(str(v)) != key]
            after = dict(holder.attributes)
            if kept:
                after["member"] = (holder.attributes["member"][0], kept)
            else:
                del after["member"]
            self._reindex(group, holder.attributes, after)
            holder.attributes = after
        self._reindex(key, stored.attributes, {})
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
                name: sorted(map(repr, v)) for name, (_, v) in stored.attributes.items()
            }
            values[DESCRIPTOR] = stored.descriptor
            values["unicodepwd"] = self._passwords.get(key)
            out[key] = values
        return out

    # -- inside

    def _insert(
        self, dn: str, attributes: Mapping[str, list[Any]], descriptor: bytes | None
    ) -> None:
        key = normal(dn)
        stored = _Stored(
            dn,
            {
                name.lower(): (name, [_as_stored(name, v) for v in values])
                for name, values in attributes.items()
            },
            descriptor,
        )
        stored.attributes["whencreated"] = ("whenCreated", [datetime.now(UTC).strftime(_TIME)])
        self._entries[key] = stored
        parent = self._entries.get(normal(parent_of(dn))) if key != normal(self._base_dn) else None
        if parent is not None:
            parent.children.add(key)
        self._reindex(key, {}, stored.attributes)
        self._relink(key, {}, stored.attributes)

    def _check_unique(self, key: str, attributes: Mapping[str, tuple[str, list[Any]]]) -> None:
        for name, result in UNIQUE.items():
            for value in attributes.get(name, ("", []))[1]:
                holders = self._index.get((name, _key(str(value))), set()) - {key}
                if holders:
                    spelled = attributes[name][0]
                    raise DirectoryRefused(
                        result, f"{spelled} ({name}) '{value}' already in use by another object"
                    )

    def _check_members(self, values: Iterable[Any]) -> None:
        for value in values:
            if normal(str(value)) not in self._entries:
                raise DirectoryRefused("noSuchObject", f"member {value} does not exist")

    def _reindex(
        self,
        key: str,
        before: Mapping[str, tuple[str, list[Any]]],
        after: Mapping[str, tuple[str, list[Any]]],
    ) -> None:
        for name in INDEXED:
            old = {self._indexed(name, v) for v in before.get(name, ("", []))[1]}
            new = {self._indexed(name, v) for v in after.get(name, ("", []))[1]}
            for value in old - new:
                holders = self._index.get((name, value))
                if holders is not None:
                    holders.discard(key)
                    if not holders:
                        del self._index[(name, value)]
            for value in new - old:
                self._index.setdefault((name, value), set()).add(key)

    @staticmethod
    def _indexed(name: str, value: Any) -> Any:
        return normal(str(value)) if name == "member" else _key(value)

    def _relink(
        self,
        key: str,
        before: Mapping[str, tuple[str, list[Any]]],
        after: Mapping[str, tuple[str, list[Any]]],
    ) -> None:
        """Keep each member's ``memberOf`` from the groups' ``member`` (the back link)."""
        old = {normal(str(v)) for v in before.get("member", ("", []))[1]}
        new = {normal(str(v)) for v in after.get("member", ("", []))[1]}
        group_dn = self._entries[key].dn if key in self._entries else ""
        for member in old - new:
            target = self._entries.get(member)
            if target is not None:
                kept = [v for v in target.values("memberOf") if normal(str(v)) != key]
                _set(target, "memberOf", kept)
        for member in new - old:
            target = self._entries.get(member)
            if target is not None:
                _set(target, "memberOf", [*target.values("memberOf"), group_dn])

    def _entry(self, stored: _Stored, attributes: Sequence[str]) -> Entry:
        wanted = {a.lower() for a in attributes}
        everything = "*" in wanted or not wanted
        out = {
            name: list(values)
            for lower, (name, values) in stored.attributes.items()
            if (everything or lower in wanted) and lower not in WRITE_ONLY
        }
        if "distinguishedname" in wanted:
            out["distinguishedName"] = [stored.dn]
        return Entry(stored.dn, out)

    def _candidates(self, node: Any) -> set[str] | None:  # noqa: PLR0911 - one case a tag
        """The entries an index says may match ``node``; None when no index narrows it."""
        if node.tag == ROOT:
            return self._candidates(node.elements[0])
        if node.tag == MATCH_EQUAL:
            name = node.assertion["attr"].lower()
            if name not in INDEXED:
                return None
            value = _text(node.assertion["value"])
            return set(self._index.get((name, self._indexed(name, value)), ()))
        if node.tag == AND:
            narrowed = [c for c in map(self._candidates, node.elements) if c is not None]
            return set.intersection(*narrowed) if narrowed else None
        if node.tag == OR:
            parts = [self._candidates(e) for e in node.elements]
            if any(p is None for p in parts):
                return None
            return set().union(*(p for p in parts if p is not None))
        return None

    def _scope(self, base: str, scope: Scope, candidates: set[str] | None) -> list[str]:
        if scope is Scope.BASE:
            found = [base]
        elif scope is Scope.ONE_LEVEL:
            found = list(self._entries[base].children)
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

    def _matches(self, node: Any, stored: _Stored) -> bool:  # noqa: PLR0911 - one case a tag
        tag = node.tag
        if tag == ROOT:
            return self._matches(node.elements[0], stored)
        if tag == AND:
            return all(self._matches(e, stored) for e in node.elements)
        if tag == OR:
            return any(self._matches(e, stored) for e in node.elements)
        if tag == NOT:
            return not self._matches(node.elements[0], stored)
        name = node.assertion["attr"]
        values = stored.values(name)
        if tag == MATCH_PRESENT:
            return name.lower() == "objectclass" or bool(values)
        if tag == MATCH_SUBSTRING:
            return any(_substring(node.assertion, str(v)) for v in values)
        wanted = _text(node.assertion["value"])
        if tag == MATCH_EQUAL:
            return any(_equal(name, v, wanted) for v in values)
        if tag == MATCH_GREATER_OR_EQUAL:
            return any(_order(v) >= _order(wanted) for v in values)
        if tag == MATCH_LESS_OR_EQUAL:
            return any(_order(v) <= _order(wanted) for v in values)
        raise DirectoryRefused("unwillingToPerform", f"filter match {tag} is not supported here")


@lru_cache(maxsize=1024)
def _parsed(ldap_filter: str) -> Any:
    return parse_filter(
        ldap_filter,
        schema=None,
        auto_escape=False,
        auto_encode=False,
        validator=None,
        check_names=False,
    )


def _changed(
    dn: str, name: str, current: list[Any], change: Change, values: list[Any]
) -> list[Any]:
    """The values of ``name`` after one change, or the refusal a DC gives."""
    present = {_key(v) for v in current}
    if change is Change.REPLACE:
        return values
    if change is Change.ADD:
        for value in values:
            if _key(value) in present:
                raise DirectoryRefused(
                    "attributeOrValueExists", f"{name}: value {value!r} exists on {dn}"
                )
        return [*current, *values]
    if not values:
        if not current:
            raise DirectoryRefused("noSuchAttribute", f"{dn} has no {name}")
        return []
    gone = {_key(v) for v in values}
    missing = gone - present
    if missing:
        raise DirectoryRefused("noSuchAttribute", f"{name}: no such value on {dn}")
    return [v for v in current if _key(v) not in gone]


def _set(stored: _Stored, name: str, values: list[Any]) -> None:
    if values:
        stored.attributes[name.lower()] = (name, values)
    else:
        stored.attributes.pop(name.lower(), None)


def _password(raw: Any) -> str:
    """The plaintext of a ``unicodePwd`` value: UTF-16-LE within double quotes."""
    text = bytes(raw).decode("utf-16-le") if isinstance(raw, bytes | bytearray) else str(raw)
    return text[1:-1] if text.startswith('"') and text.endswith('"') else text


def _text(value: bytes) -> str:
    return bytes(ldap_escape_to_bytes(value.decode("utf-8"))).decode("utf-8")


def _equal(name: str, stored: Any, wanted: str) -> bool:
    if isinstance(stored, bytes):
        return stored == wanted.encode("latin-1", errors="ignore")
    text, lower = str(stored).lower(), name.lower()
    if lower == "objectcategory":  # (objectCategory=person) names the class
        return text in (wanted.lower(), normal(f"CN={wanted}")) or text.startswith(
            f"cn={wanted.lower()},"
        )
    if lower in {"member", "memberof", "distinguishedname"}:
        return normal(text) == normal(wanted)
    return text == wanted.lower()


def _order(value: Any) -> tuple[int, Any]:
    """Numbers as numbers, everything else as text (generalized times order as text)."""
    text = value.decode() if isinstance(value, bytes) else str(value)
    try:
        return (0, int(text))
    except ValueError:
        return (1, text.lower())


def _substring(assertion: Mapping[str, Any], value: str) -> bool:
    text = value.lower()
    position = 0
    initial = assertion.get("initial")
    if initial is not None:
        start = _text(initial).lower()
        if not text.startswith(start):
            return False
        position = len(start)
    for part in assertion.get("any", []):
        found = text.find(_text(part).lower(), position)
        if found < 0:
            return False
        position = found + len(_text(part))
    final = assertion.get("final")
    return final is None or text[position:].endswith(_text(final).lower())
