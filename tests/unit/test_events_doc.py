"""docs/events.md: every example decodes, as the type its heading names."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from typing import Any

import msgpack

from messages.envelope import decode
from messages.events import CATALOGUE

DOC = Path(__file__).resolve().parents[2] / "docs" / "events.md"
SECTION = re.compile(r"^### `([a-z_.]+)`\n(.*?)```json\n(.*?)\n```", re.MULTILINE | re.DOTALL)


def from_doc_json(value: Any) -> Any:
    """JSON as the doc writes it, with {"$bin": base64} for msgpack bin values."""
    if isinstance(value, dict):
        if set(value) == {"$bin"}:
            return base64.b64decode(value["$bin"])
        return {k: from_doc_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [from_doc_json(v) for v in value]
    return value


def test_every_event_type_has_a_decodable_example() -> None:
    examples = SECTION.findall(DOC.read_text(encoding="utf-8"))
    assert sorted(t for t, _, _ in examples) == sorted(CATALOGUE)
    for heading, _, example in examples:
        body = msgpack.packb(from_doc_json(json.loads(example)), use_bin_type=True)
        assert decode(body).type == heading
