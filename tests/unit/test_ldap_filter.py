"""The in-memory directory's filter parser reads filters as ldap3's own parser reads them
(the oracle: ldap3's ``parse_filter``, which the project does not otherwise use), on the
fleet's filters and on generated ones with escaped values of any text."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
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
from ldap3.utils.conv import escape_filter_chars, ldap_escape_to_bytes

from workers.directory.ldap_filter import And, FilterError, Kind, Match, Node, Not, Or, parse

FLEETS_FILTERS = [
    "(objectClass=*)",
    "(objectClass=organizationalUnit)",
    "(&(objectCategory=person)(objectClass=user))",
    "(&(&(objectCategory=person)(objectClass=user))(userPrincipalName=*@contoso.example))",
    "(&(&(objectCategory=person)(objectClass=user))(cn=j.doe \\28x\\29))",
    (
        "(|(cn=3f2a)(&(keywords=entity:user:contoso/j.doe)(|(msDS-DateTime>=20261205000001.0Z)"
        "(&(msDS-DateTime=20261205000000.0Z)(msDS-Integer>=12)))))"
    ),
    "(|(keywords=entity:tenant:contoso)(keywords=entity:user:contoso/*))",
    "(&(objectClass=msDS-App-Configuration)(whenCreated<=20261105000000.0Z))",
    "(lDAPDisplayName=user)",
    "(!(cn=a*b*c))",
]


def _text(raw: bytes) -> str:
    return bytes(ldap_escape_to_bytes(raw.decode("utf-8"))).decode("utf-8")


def oracle(node: Any) -> Node:
    """ldap3's tree in this parser's terms."""
    tag = node.tag
    if tag == ROOT:
        return oracle(node.elements[0])
    if tag in (AND, OR):
        items = tuple(oracle(e) for e in node.elements)
        return And(items) if tag == AND else Or(items)
    if tag == NOT:
        return Not(oracle(node.elements[0]))
    a = node.assertion
    name = a["attr"].lower()
    if tag == MATCH_PRESENT:
        return Match(Kind.PRESENT, name)
    if tag == MATCH_SUBSTRING:
        initial, final = a.get("initial"), a.get("final")
        return Match(
            Kind.SUBSTRING,
            name,
            parts=(
                _text(initial) if initial else None,
                tuple(_text(p) for p in a.get("any", [])),
                _text(final) if final else None,
            ),
        )
    kinds = {
        MATCH_EQUAL: Kind.EQUAL,
        MATCH_GREATER_OR_EQUAL: Kind.GREATER_OR_EQUAL,
        MATCH_LESS_OR_EQUAL: Kind.LESS_OR_EQUAL,
    }
    return Match(kinds[tag], name, _text(a["value"]))


def ldap3_reads(text: str) -> Node:
    return oracle(
        parse_filter(
            text,
            schema=None,
            auto_escape=False,
            auto_encode=False,
            validator=None,
            check_names=False,
        )
    )


@pytest.mark.parametrize("text", FLEETS_FILTERS)
def test_the_fleets_filters_read_as_ldap3_reads_them(text: str) -> None:
    assert parse(text) == ldap3_reads(text)


values = st.text(
    alphabet=st.characters(exclude_categories=["Cs"], exclude_characters="\x00"),
    min_size=1,
    max_size=12,
)
attributes = st.sampled_from(["cn", "keywords", "userPrincipalName", "msDS-Integer", "ou"])


@st.composite
def filters(draw: st.DrawFn, depth: int = 0) -> str:
    if depth < 3 and draw(st.booleans()):
        op = draw(st.sampled_from("&|!"))
        count = 1 if op == "!" else draw(st.integers(1, 3))
        return f"({op}{''.join(draw(filters(depth + 1)) for _ in range(count))})"
    name = draw(attributes)
    kind = draw(st.sampled_from(["=", ">=", "<=", "=*", "sub"]))
    if kind == "=*":
        return f"({name}=*)"
    if kind == "sub":
        pieces = draw(st.lists(values, min_size=1, max_size=3))
        text = "*".join(escape_filter_chars(p) for p in pieces)
        lead, tail = draw(st.booleans()), draw(st.booleans())
        return f"({name}={'*' if lead else ''}{text}{'*' if tail or len(pieces) == 1 else ''})"
    return f"({name}{kind}{escape_filter_chars(draw(values))})"


@given(filters())
def test_any_filter_reads_as_ldap3_reads_it(text: str) -> None:
    assert parse(text) == ldap3_reads(text)


@pytest.mark.parametrize("text", ["cn=a", "(cn=a", "(cn=a))", "(&(cn=a)", "(cn~=a)", "(cn=\\zz)"])
def test_a_filter_that_does_not_parse_is_refused(text: str) -> None:
    with pytest.raises(FilterError):
        parse(text)
