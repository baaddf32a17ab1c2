from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from workers.runtime.settings import Settings, env_name

DOC = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


def test_every_setting_is_documented_with_its_default() -> None:
    rows = dict(re.findall(r"^\| `(PROVISIONER_\w+)` \| ([^|]+) \|", DOC.read_text(), re.MULTILINE))
    fields = dataclasses.fields(Settings)
    assert set(rows) == {env_name(f.name) for f in fields}
    for f in fields:
        shown = rows[env_name(f.name)].strip()
        assert shown == (f"`{f.default}`" if f.default != "" else "(empty)"), f.name
