from __future__ import annotations

from datetime import UTC, datetime

import msgpack
import pytest

from messages.errors import ContractError
from messages.results import Outcome, Result, ResultError, decode_result, encode_result


def test_results_round_trip_and_route_by_type_and_outcome() -> None:
    result = Result(
        Outcome.DEAD_LETTERED,
        "user.created",
        "m-1",
        "k-1",
        3,
        details={"dn": "CN=x"},
        error=ResultError("quota_exceeded", "full"),
        occurred_at=datetime(2026, 11, 25, 9, tzinfo=UTC),
    )
    assert result.routing_key == "user.created.dead_lettered"
    assert decode_result(encode_result(result)) == result
    raw = msgpack.unpackb(encode_result(result))
    assert raw["error"] == {"code": "quota_exceeded", "message": "full"}
    assert raw["v"] == 1


def test_a_malformed_result_raises_the_contract_error() -> None:
    with pytest.raises(ContractError, match="malformed_result"):
        decode_result(msgpack.packb({"outcome": "exploded"}))
