"""Hypothesis strategies for valid events of every type (written apart from the validators)."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import strategies as st

from messages import events
from messages.envelope import Envelope

tenant_ids = st.from_regex(r"[a-z0-9][a-z0-9\-]{0,18}[a-z0-9]", fullmatch=True)
usernames = st.from_regex(r"[A-Za-z0-9]([A-Za-z0-9_\-]{0,20}[A-Za-z0-9])?", fullmatch=True)
labels = st.from_regex(r"[a-z][a-z0-9]{0,10}", fullmatch=True)
domains = st.lists(labels, min_size=2, max_size=3).map(".".join)
# Any printable text: commas, equals signs, quotes and non-ASCII included.
texts = st.text(
    alphabet=st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")),
    min_size=1,
    max_size=40,
)
sealed = st.binary(min_size=48, max_size=120)
roles = st.sampled_from(events.Role)

policies = st.builds(
    events.PasswordPolicy,
    min_length=st.integers(1, 64),
    complexity=st.booleans(),
    history=st.none() | st.integers(0, 24),
    max_age_days=st.none() | st.integers(0, 999),
    lockout_threshold=st.none() | st.integers(0, 999),
)
plans = st.builds(
    events.Plan, max_users=st.integers(1, 10_000), password_policy=st.none() | policies
)
domain_lists = st.lists(domains, min_size=1, max_size=4, unique=True).map(tuple)
admins = st.builds(
    events.AdminAccount,
    username=usernames,
    given_name=texts,
    surname=texts,
    display_name=st.none() | texts,
    password=st.none() | sealed,
)

event_values: st.SearchStrategy[events.Event] = st.one_of(
    st.builds(
        events.TenantCreated,
        tenant=tenant_ids,
        name=texts,
        domains=domain_lists,
        admin=admins,
        plan=st.none() | plans,
    ),
    st.builds(
        events.TenantUpdated,
        tenant=tenant_ids,
        name=texts,
        domains=domain_lists,
        plan=st.none() | plans,
    ),
    st.builds(events.TenantUpdated, tenant=tenant_ids, plan=plans),
    *(
        st.builds(cls, tenant=tenant_ids)
        for cls in (events.TenantSuspended, events.TenantResumed, events.TenantDeleted)
    ),
    st.builds(
        events.UserCreated,
        tenant=tenant_ids,
        username=usernames,
        given_name=texts,
        surname=texts,
        display_name=st.none() | texts,
        password=st.none() | sealed,
        role=roles,
    ),
    st.builds(
        events.UserUpdated,
        tenant=tenant_ids,
        username=usernames,
        given_name=texts,
        surname=st.none() | texts,
        display_name=st.none() | texts,
        role=st.none() | roles,
    ),
    st.builds(events.UserUpdated, tenant=tenant_ids, username=usernames, role=roles),
    *(
        st.builds(cls, tenant=tenant_ids, username=usernames)
        for cls in (events.UserDisabled, events.UserEnabled, events.UserDeleted)
    ),
    st.builds(
        events.UserPasswordReset, tenant=tenant_ids, username=usernames, password=st.none() | sealed
    ),
)

envelopes = st.builds(
    Envelope,
    id=st.uuids().map(str),
    idempotency_key=st.text(
        alphabet=st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=255
    ),
    occurred_at=st.datetimes(
        # hypothesis takes naive bounds and adds the zone itself
        min_value=datetime(2000, 1, 1),  # noqa: DTZ001
        max_value=datetime(2100, 1, 1),  # noqa: DTZ001
        timezones=st.just(UTC),
    ),
    data=event_values,
    source=st.none() | st.sampled_from(["billing", "orders"]),
)
