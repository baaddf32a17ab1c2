from __future__ import annotations

import contextlib

import msgpack
from hypothesis import given, settings
from hypothesis import strategies as st

from messages.envelope import Envelope, decode, encode
from messages.errors import ContractError
from messages.events import CATALOGUE
from tests.support.event_strategies import envelopes, event_values


@given(envelopes)
def test_decode_inverts_encode_for_every_event(envelope: Envelope) -> None:
    assert decode(encode(envelope)) == envelope


@given(event_values)
def test_the_strategies_cover_the_whole_catalogue(event: object) -> None:
    assert type(event) in CATALOGUE.values()


def test_every_catalogued_type_has_a_strategy() -> None:
    seen: set[str] = set()

    @settings(max_examples=400, database=None)
    @given(event_values)
    def collect(event: object) -> None:
        seen.add(type(event).TYPE)  # type: ignore[attr-defined]

    collect()
    assert seen == set(CATALOGUE)


# Keys the decoder knows, so that arbitrary maps reach deep into the validation.
known_keys = st.sampled_from(
    [
        "v",
        "id",
        "type",
        "idempotency_key",
        "occurred_at",
        "source",
        "data",
        "tenant",
        "name",
        "domains",
        "admin",
        "plan",
        "username",
        "given_name",
        "surname",
        "display_name",
        "password",
        "role",
        "max_users",
        "password_policy",
        "min_length",
        "complexity",
    ]
)
scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats()
    | st.text(max_size=30)
    | st.binary(max_size=30)
    | st.sampled_from(list(CATALOGUE))
)
msgpack_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(known_keys | st.text(max_size=5), children, max_size=6)
    ),
    max_leaves=30,
)


@given(st.dictionaries(known_keys, msgpack_values, max_size=8))
def test_arbitrary_maps_only_raise_the_contract_error(raw: dict[str, object]) -> None:
    with contextlib.suppress(ContractError):
        decode(msgpack.packb(raw, use_bin_type=True))


@given(
    st.fixed_dictionaries(
        {
            "v": st.just(1),
            "id": st.just("i"),
            "idempotency_key": st.just("k"),
            "occurred_at": st.just("2026-01-01T00:00:00Z"),
            "type": st.sampled_from(list(CATALOGUE)),
            "data": st.dictionaries(known_keys, msgpack_values, max_size=8),
        }
    )
)
def test_arbitrary_data_of_a_known_type_only_raises_the_contract_error(
    raw: dict[str, object],
) -> None:
    with contextlib.suppress(ContractError):
        decode(msgpack.packb(raw, use_bin_type=True))
