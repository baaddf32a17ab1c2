"""The one codec of the key=value values the fleet stores in msDS-Settings."""

from __future__ import annotations

from workers.directory import key_values


def test_values_round_trip_with_repeated_keys_and_equals_signs() -> None:
    stored = [
        *key_values.items({"primary_domain": "contoso.example", "users": 3}),
        key_values.item("reserved", "alice"),
        key_values.item("reserved", "bob"),
        key_values.item("key", "order=42"),
    ]
    assert stored[:2] == ["primary_domain=contoso.example", "users=3"]
    assert key_values.all_of(stored, "reserved") == ["alice", "bob"]
    assert key_values.single(stored)["key"] == "order=42"
    assert key_values.single(stored)["users"] == "3"
    assert key_values.pairs(["no-equals"]) == [("no-equals", "")]
