from __future__ import annotations

import io

from messages.errors import ContractError
from messages.json_input import read_lines

LINE = (
    '{"type": "tenant.created", "idempotency_key": "k", "data": {"tenant": "t1", "name": "T",'
    ' "domains": ["t1.example"], "admin": {"username": "a", "given_name": "A", "surname": "B"}}}'
)


def test_lines_become_validated_envelopes_and_errors_keep_their_line() -> None:
    stream = io.StringIO(f"{LINE}\n\nnot json\n{LINE.replace('t1', 'T 1', 1)}\n")
    items = list(read_lines(stream))
    assert [number for number, _ in items] == [1, 3, 4]
    first = items[0][1]
    assert not isinstance(first, ContractError)
    assert (first.idempotency_key, first.tenant) == ("k", "t1")
    assert isinstance(items[1][1], ContractError)
    assert items[1][1].code == "malformed_json"
    assert isinstance(items[2][1], ContractError)
    assert items[2][1].code == "unsafe_identifier"
