"""The per-user lists of a tenant's settings object, as data: where a name is held, the
modify that changes it, and the modify that moves the earlier version's lists."""

from __future__ import annotations

from workers.directory.port import Change, Entry
from workers.provisioning import tenant_state

DN = "CN=Tenant Settings,OU=t,OU=Tenants,DC=x"


def entry(settings: list[str], keywords: list[str]) -> Entry:
    return Entry(DN, {"msDS-Settings": settings, "keywords": keywords})


def test_the_state_read_keeps_only_the_reservations_still_in_msds_settings() -> None:
    state = tenant_state.parse(
        "t", ["users=3", "max_users=5", "reserved=old", "suspended=old", "primary_domain=t.x"]
    )
    assert state.users == 3
    assert state.max_users == 5
    assert state.legacy_reserved == frozenset({"old"})
    assert state.primary_domain == "t.x"


def test_a_name_is_listed_where_it_is_held_keywords_winning() -> None:
    found = entry(
        ["users=2", "reserved=old", "reserved=both"],
        ["reserved:new", "reserved:both", "suspended:new", "entity:x", "reserved"],
    )
    assert tenant_state.listed(found, tenant_state.RESERVED) == {
        "old": "msDS-Settings",
        "new": "keywords",
        "both": "keywords",
    }
    assert tenant_state.listed(found, tenant_state.SUSPENDED) == {"new": "keywords"}


def test_one_change_touches_each_name_where_it_is_held_in_lower_case() -> None:
    where = {"Old": "msDS-Settings", "new": "keywords", "b": "keywords"}
    assert tenant_state.list_change(Change.DELETE, tenant_state.SUSPENDED, where) == {
        "msDS-Settings": [(Change.DELETE, ["suspended=old"])],
        "keywords": [(Change.DELETE, ["suspended:new", "suspended:b"])],
    }


def test_the_move_deletes_every_legacy_value_and_adds_only_the_missing_ones() -> None:
    found = entry(
        ["users=3", "reserved=a", "suspended=a", "reserved=b", "max_users=9"],
        ["reserved:b", "entity:x"],
    )
    assert tenant_state.moved_lists(found) == {
        "msDS-Settings": [(Change.DELETE, ["reserved=a", "suspended=a", "reserved=b"])],
        "keywords": [(Change.ADD, ["reserved:a", "suspended:a"])],
    }
    assert tenant_state.moved_lists(entry(["users=1", "max_users=2"], ["reserved:a"])) == {}
    only_deletes = tenant_state.moved_lists(entry(["reserved=a"], ["reserved:a"]))
    assert only_deletes == {"msDS-Settings": [(Change.DELETE, ["reserved=a"])]}
