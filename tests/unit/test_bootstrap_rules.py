from __future__ import annotations

import pytest

from workers.ops.bootstrap import list_object_mode_enabled, with_list_object_mode


@pytest.mark.parametrize(
    ("current", "wanted"),
    [
        (None, "001"),
        ("", "001"),
        ("0", "001"),
        ("000", "001"),
        ("0000002", "0010002"),
        ("001", "001"),
    ],
)
def test_list_object_mode_sets_only_the_third_character(current: str | None, wanted: str) -> None:
    assert with_list_object_mode(current) == wanted
    assert list_object_mode_enabled(wanted)


@pytest.mark.parametrize("value", [None, "", "00", "000", "0020"])
def test_list_object_mode_off(value: str | None) -> None:
    assert not list_object_mode_enabled(value)
