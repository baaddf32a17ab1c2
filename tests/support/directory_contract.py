"""What the steps rely on a directory for, as checks that run against any
:class:`workers.directory.port.Directory`: the real DC through the ldap3 edge
(``tests/integration/test_directory_contract.py``) and the in-memory directory
(``tests/unit/test_memory_directory.py``).  The same checks passing on both is what lets
the in-memory directory stand in for Samba in unit tests.

Each check works below ``base``, an empty OU of its own, and asserts answers the DC gives
(measured on Samba 4.17): the codes, and the words the steps read from them.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable

import pytest

from workers.directory.escaping import filter_value
from workers.directory.port import Change, Directory, DirectoryRefused, Scope
from workers.provisioning.passwords import unicode_pwd
from workers.provisioning.security import sid_from_bytes

USER = ["top", "person", "organizationalPerson", "user"]
GROUP_TYPE = -2147483646  # global security group
Check = Callable[[Directory, str, str], None]


def refused(result: str, call: Callable[[], object]) -> DirectoryRefused:
    with pytest.raises(DirectoryRefused) as info:
        call()
    assert info.value.result == result, info.value
    return info.value


def _name() -> str:
    return f"c{secrets.token_hex(4)}"


def _user(directory: Directory, dn: str, **attributes: object) -> None:
    directory.add(dn, USER, {"sAMAccountName": _name(), **attributes})


def dns_are_case_insensitive(directory: Directory, base: str, domain_sid: str) -> None:
    del domain_sid
    directory.add(f"OU=Alpha,{base}", ["organizationalUnit"], {"description": "first"})
    found = directory.read(f"ou=ALPHA,{base.lower()}", ["description"])
    assert found is not None
    assert found.values("description") == ["first"]
    refused(
        "entryAlreadyExists",
        lambda: directory.add(f"OU=alpha,{base}", ["organizationalUnit"], {}),
    )


def an_add_needs_its_parent(directory: Directory, base: str, domain_sid: str) -> None:
    del domain_sid
    refused(
        "noSuchObject",
        lambda: directory.add(f"OU=child,OU=missing,{base}", ["organizationalUnit"], {}),
    )
    assert directory.read(f"OU=missing,{base}", ["ou"]) is None


def sam_account_names_are_unique(directory: Directory, base: str, domain_sid: str) -> None:
    del domain_sid
    sam = _name()
    _user(directory, f"CN=one,{base}", sAMAccountName=sam)
    error = refused(
        "entryAlreadyExists",
        lambda: _user(directory, f"CN=two,{base}", sAMAccountName=sam.upper()),
    )
    assert "samaccountname" in str(error).lower()  # what CreateUser reads to try the next
    assert directory.read(f"CN=two,{base}", ["cn"]) is None


def upns_are_unique(directory: Directory, base: str, domain_sid: str) -> None:
    del domain_sid
    upn = f"{_name()}@contract.example"
    _user(directory, f"CN=one,{base}", userPrincipalName=upn)
    error = refused(
        "constraintViolation",
        lambda: _user(directory, f"CN=two,{base}", userPrincipalName=upn),
    )
    assert "userPrincipalName" in str(error)  # what CreateUser reads for upn_conflict
    assert directory.read(f"CN=two,{base}", ["cn"]) is None


def a_modify_compares_and_swaps(directory: Directory, base: str, domain_sid: str) -> None:
    del domain_sid
    dn = f"CN=settings,{base}"
    directory.add(dn, ["msDS-App-Configuration"], {"msDS-Settings": ["users=1", "a=b"]})

    def swap(old: int, new: int) -> None:
        directory.modify(
            dn,
            {"msDS-Settings": [(Change.DELETE, [f"users={old}"]), (Change.ADD, [f"users={new}"])]},
        )

    swap(1, 2)
    refused("noSuchAttribute", lambda: swap(1, 3))  # a racer moved it first
    refused(
        "attributeOrValueExists",
        lambda: directory.modify(dn, {"msDS-Settings": [(Change.ADD, ["a=b"])]}),
    )
    entry = directory.read(dn, ["msDS-Settings"])
    assert entry is not None
    assert sorted(entry.values("msDS-Settings")) == ["a=b", "users=2"]  # nothing half-applied


def a_swap_and_a_list_change_together_or_not_at_all(
    directory: Directory, base: str, domain_sid: str
) -> None:
    """The quota swap: the counter in ``msDS-Settings`` and a reservation in ``keywords``
    of one object, one modify; a name on the list answers a base search for it alone."""
    del domain_sid
    dn = f"CN=quota,{base}"
    directory.add(dn, ["msDS-App-Configuration"], {"msDS-Settings": ["users=1"]})

    def swap(old: int, name: str) -> None:
        directory.modify(
            dn,
            {
                "msDS-Settings": [
                    (Change.DELETE, [f"users={old}"]),
                    (Change.ADD, [f"users={old + 1}"]),
                ],
                "keywords": [(Change.ADD, [f"reserved:{name}"])],
            },
        )

    def listed(name: str) -> bool:
        query = f"(keywords={filter_value(f'reserved:{name}')})"
        return bool(directory.search(dn, query, Scope.BASE, ["cn"]))

    swap(1, "a*(b)")
    assert listed("a*(b)")
    assert not listed("a")  # equality, not a prefix
    refused("attributeOrValueExists", lambda: swap(2, "a*(b)"))  # counted already
    refused("noSuchAttribute", lambda: swap(1, "c"))  # a racer moved the counter
    entry = directory.read(dn, ["msDS-Settings", "keywords"])
    assert entry is not None
    assert entry.values("msDS-Settings") == ["users=2"]  # nothing half-applied
    assert entry.values("keywords") == ["reserved:a*(b)"]
    assert not listed("c")


def member_is_a_linked_attribute(directory: Directory, base: str, domain_sid: str) -> None:
    del domain_sid
    group, user = f"CN=group,{base}", f"CN=member,{base}"
    directory.add(group, ["group"], {"sAMAccountName": _name(), "groupType": GROUP_TYPE})
    _user(directory, user)

    def change(kind: Change) -> None:
        directory.modify(group, {"member": [(kind, [user])]})

    change(Change.ADD)
    entry = directory.read(group, ["member"])
    assert entry is not None
    assert [v.lower() for v in entry.values("member")] == [user.lower()]
    back = directory.read(user, ["memberOf"])
    assert back is not None
    assert [v.lower() for v in back.values("memberOf")] == [group.lower()]
    refused("attributeOrValueExists", lambda: change(Change.ADD))
    change(Change.DELETE)
    refused("noSuchAttribute", lambda: change(Change.DELETE))
    change(Change.ADD)
    directory.delete(user)  # a deleted member leaves every group
    entry = directory.read(group, ["member"])
    assert entry is not None
    assert entry.values("member") == []


def deletes_need_a_leaf_that_exists(directory: Directory, base: str, domain_sid: str) -> None:
    del domain_sid
    parent = f"OU=parent,{base}"
    directory.add(parent, ["organizationalUnit"], {})
    directory.add(f"OU=child,{parent}", ["organizationalUnit"], {})
    refused("notAllowedOnNonLeaf", lambda: directory.delete(parent))
    refused("noSuchObject", lambda: directory.delete(f"OU=gone,{base}"))
    refused(
        "noSuchObject",
        lambda: directory.modify(f"OU=gone,{base}", {"description": [(Change.REPLACE, ["x"])]}),
    )
    directory.delete(f"OU=child,{parent}")
    directory.delete(parent)
    assert directory.read(parent, ["ou"]) is None


def searches_match_as_a_dc_does(directory: Directory, base: str, domain_sid: str) -> None:
    del domain_sid
    inner = f"OU=inner,{base}"
    directory.add(inner, ["organizationalUnit"], {})
    for cn, number in (("a*b", 5), ("axb", 12)):
        directory.add(f"CN={cn},{base}", ["msDS-App-Configuration"], {"msDS-Integer": number})
    directory.add(f"CN=deep,{inner}", ["msDS-App-Configuration"], {"msDS-Integer": 30})
    _user(directory, f"CN=u1,{base}", userPrincipalName=f"{_name()}@suffix.example")
    _user(directory, f"CN=u2,{base}", userPrincipalName=f"{_name()}@other.example")

    def cns(ldap_filter: str, scope: Scope = Scope.ONE_LEVEL) -> list[str]:
        return sorted(
            str(e.first("cn")) for e in directory.search(base, ldap_filter, scope, ["cn"])
        )

    assert cns(f"(cn={filter_value('a*b')})") == ["a*b"]  # an escaped * is no wildcard
    assert cns("(cn=a*b)") == ["a*b", "axb"]
    assert cns("(msDS-Integer>=10)") == ["axb"]  # numbers order as numbers, not as text
    assert cns("(msDS-Integer>=10)", Scope.SUBTREE) == ["axb", "deep"]
    assert cns(
        "(&(objectCategory=person)(objectClass=user)(userPrincipalName=*@suffix.example))"
    ) == ["u1"]
    assert cns("(|(cn=u2)(&(objectClass=msDS-App-Configuration)(msDS-Integer<=5)))") == [
        "a*b",
        "u2",
    ]
    assert directory.search(f"OU=gone,{base}", "(objectClass=*)", Scope.SUBTREE, ["cn"]) == []


def principals_get_sids_and_passwords_stay_unread(
    directory: Directory, base: str, domain_sid: str
) -> None:
    user, group = f"CN=principal,{base}", f"CN=principals,{base}"
    _user(directory, user, unicodePwd=unicode_pwd("Contract-Passw0rd!"), userAccountControl=512)
    directory.add(group, ["group"], {"sAMAccountName": _name(), "groupType": GROUP_TYPE})
    sids = []
    for dn in (user, group):
        entry = directory.read(dn, ["objectSid", "unicodePwd"])
        assert entry is not None
        assert entry.values("unicodePwd") == []  # write-only
        sids.append(sid_from_bytes(entry.first("objectSid")))
    assert all(s.startswith(f"{domain_sid}-") for s in sids), sids
    assert sids[0] != sids[1]


CHECKS: list[Check] = [
    dns_are_case_insensitive,
    an_add_needs_its_parent,
    sam_account_names_are_unique,
    upns_are_unique,
    a_modify_compares_and_swaps,
    a_swap_and_a_list_change_together_or_not_at_all,
    member_is_a_linked_attribute,
    deletes_need_a_leaf_that_exists,
    searches_match_as_a_dc_does,
    principals_get_sids_and_passwords_stay_unread,
]


def remove_tree(directory: Directory, base: str) -> None:
    """Everything below and at ``base``, deepest first."""
    found = directory.search(base, "(objectClass=*)", Scope.SUBTREE, ["cn"])
    for entry in sorted(found, key=lambda e: e.dn.count(","), reverse=True):
        directory.delete(entry.dn)
