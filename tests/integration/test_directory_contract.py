"""The DC answers as the directory contract says (``tests/support/directory_contract.py``),
through the fleet's ldap3 edge: the same checks the in-memory directory passes in the unit
suite, so that what the unit tests prove with it holds on Samba."""

from __future__ import annotations

import dataclasses
import secrets
from collections.abc import Iterator

import pytest

from tests.support import engine
from tests.support.directory_contract import CHECKS, Check, remove_tree
from tests.support.platform import SuitePlatform
from workers.directory.ldap_directory import LdapDirectory
from workers.provisioning.realm import read_sid


@pytest.fixture
def as_administrator(platform: SuitePlatform) -> Iterator[LdapDirectory]:
    settings = dataclasses.replace(
        engine.settings(platform),
        ldap_bind_dn="Administrator@hosting.test",
        ldap_bind_password=platform.administrator_password,
    )
    with LdapDirectory.connect(settings) as directory:
        yield directory


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_the_dc_keeps_the_contract(as_administrator: LdapDirectory, check: Check) -> None:
    directory = as_administrator
    base = f"OU=contract-{secrets.token_hex(3)},{directory.base_dn}"
    directory.add(base, ["organizationalUnit"], {})
    try:
        check(directory, base, read_sid(directory, directory.base_dn))
    finally:
        remove_tree(directory, base)
