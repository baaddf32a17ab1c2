"""The in-memory directory answers as the DC does: the directory contract's checks
(``tests/support/directory_contract.py``), which run against Samba too."""

from __future__ import annotations

import pytest

from tests.support.directory_contract import CHECKS, Check
from workers.ops.memory_domain import DOMAIN_SID, memory_domain


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_the_memory_directory_keeps_the_contract(check: Check) -> None:
    directory = memory_domain().directory
    base = f"OU=contract,{directory.base_dn}"
    directory.add(base, ["organizationalUnit"], {})
    check(directory, base, DOMAIN_SID)
