from __future__ import annotations

import contextlib
from datetime import UTC, datetime

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from messages.envelope import MAX_BODY_BYTES, Envelope, decode, encode
from messages.errors import ContractError
from messages.events import AdminAccount, Plan, TenantCreated


def tenant_created_wire(**data_changes: object) -> dict[str, object]:
    data: dict[str, object] = {
        "tenant": "contoso",
        "name": 'Contoso, Ltd. = "C"',
        "domains": ["contoso.example", "contoso.test"],
        "admin": {"username": "admin", "given_name": "Ada", "surname": "Admin"},
    }
    data.update(data_changes)
    return {
        "v": 1,
        "id": "m-1",
        "type": "tenant.created",
        "idempotency_key": "k-1",
        "occurred_at": "2026-11-25T08:00:00Z",
        "data": data,
    }


def pack(value: object) -> bytes:
    body: bytes = msgpack.packb(value, use_bin_type=True)
    return body


def error_of(body: bytes) -> ContractError:
    with pytest.raises(ContractError) as info:
        decode(body)
    return info.value


def test_decodes_the_documented_shape() -> None:
    envelope = decode(pack(tenant_created_wire(plan={"max_users": 5})))
    assert envelope == Envelope(
        id="m-1",
        idempotency_key="k-1",
        occurred_at=datetime(2026, 11, 25, 8, tzinfo=UTC),
        data=TenantCreated(
            tenant="contoso",
            name='Contoso, Ltd. = "C"',
            domains=("contoso.example", "contoso.test"),
            admin=AdminAccount(username="admin", given_name="Ada", surname="Admin"),
            plan=Plan(max_users=5),
        ),
    )
    assert envelope.type == "tenant.created"
    assert envelope.data.primary_domain == "contoso.example"  # type: ignore[attr-defined]


def test_encode_then_decode_is_identity() -> None:
    envelope = decode(pack(tenant_created_wire()))
    assert decode(encode(envelope)) == envelope


@pytest.mark.parametrize(
    ("body", "code", "path"),
    [
        (b"\xc1", "malformed_msgpack", ""),
        (pack([1, 2, 3]), "not_a_map", ""),
        (pack({**tenant_created_wire(), "v": 2}), "unknown_version", "v"),
        (pack({**tenant_created_wire(), "type": "tenant.renamed"}), "unknown_type", "type"),
        (pack({**tenant_created_wire(), "extra": 1}), "unknown_field", "extra"),
        (pack({**tenant_created_wire(), "id": 7}), "wrong_type", "id"),
        (pack(tenant_created_wire(tenant="Bad,Tenant")), "unsafe_identifier", "data.tenant"),
        (pack(tenant_created_wire(name="a\x00b")), "control_character", "data.name"),
        (pack(tenant_created_wire(domains=[])), "invalid_length", "data.domains"),
        (
            pack(tenant_created_wire(admin={"username": "a"})),
            "missing_field",
            "data.admin.given_name",
        ),
        (
            pack({**tenant_created_wire(), "occurred_at": "2026-11-25T08:00:00+02:00"}),
            "invalid_timestamp",
            "occurred_at",
        ),
    ],
)
def test_each_violation_has_its_code_and_path(body: bytes, code: str, path: str) -> None:
    error = error_of(body)
    assert (error.code, error.path) == (code, path)


def test_bodies_over_the_limit_are_refused_before_unpacking() -> None:
    error = error_of(b"\x00" * (MAX_BODY_BYTES + 1))
    assert error.code == "body_too_large"


@given(st.binary(max_size=512))
def test_arbitrary_bytes_only_raise_the_contract_error(body: bytes) -> None:
    with contextlib.suppress(ContractError):
        decode(body)
