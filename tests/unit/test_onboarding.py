"""The progress file of ``publish --wait``: what a rerun skips, republishes and refuses."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from nacl.public import PrivateKey

from messages.envelope import Envelope
from messages.json_input import envelope_from_json
from messages.results import Outcome, Result, ResultError
from workers.ops.onboarding import Progress, ProgressMismatch, Waiting, without_passwords

KEY = PrivateKey.generate().public_key


def line(username: str, password: str | None = None, surname: str = "Doe") -> Envelope:
    data: dict[str, object] = {
        "tenant": "t1",
        "username": username,
        "given_name": "J",
        "surname": surname,
    }
    if password is not None:
        data["password"] = password
    return envelope_from_json({"type": "user.created", "data": data}, public_key=KEY)


def result(key: str, outcome: Outcome) -> Result:
    error = ResultError("quota_exceeded", "full") if outcome is Outcome.DEAD_LETTERED else None
    return Result(outcome, "user.created", "m", key, 1, error=error)


def test_a_rerun_sees_what_was_answered_and_the_keys_given(tmp_path: Path) -> None:
    path = tmp_path / "f.progress"
    first = Progress.load(path)
    a, b, c = line("a"), line("b"), line("c")
    for number, envelope in ((1, a), (2, b), (3, c)):
        first.assign(number, envelope)
    first.answer(1, Outcome.SUCCEEDED.value)
    first.answer(3, Outcome.DEAD_LETTERED.value, "quota_exceeded", "full")
    first.close()

    again = Progress.load(path)
    assert again.lines[1].answered
    assert not again.lines[2].answered
    assert again.lines[3].failed
    assert again.lines[3].code == "quota_exceeded"
    # The same line, parsed again, gets a new random key; the progress file gives the old.
    assert again.key_for(2, line("b")) == b.idempotency_key != line("b").idempotency_key
    assert again.key_for(4, line("d")) is None


def test_a_changed_line_is_refused_and_a_new_password_is_not_a_change(tmp_path: Path) -> None:
    progress = Progress.load(tmp_path / "f.progress")
    progress.assign(1, line("a", password="First-Passw0rd!"))
    # Sealed again (a different box each time), or another password: the same intent.
    assert progress.key_for(1, line("a", password="Other-Passw0rd!")) is not None
    with pytest.raises(ProgressMismatch, match="line 1 is not the intent"):
        progress.key_for(1, line("a", password="First-Passw0rd!", surname="Smith"))
    progress.close()


def test_the_progress_file_holds_no_password(tmp_path: Path) -> None:
    path = tmp_path / "f.progress"
    progress = Progress.load(path)
    progress.assign(1, line("a", password="Never-On-Disk-1!"))
    progress.close()
    assert "Never-On-Disk" not in path.read_text()
    assert set(json.loads(path.read_text())) == {"line", "key", "fingerprint"}


def test_waiting_answers_each_line_once_and_counts_retries_apart() -> None:
    waiting = Waiting()
    waiting.expect("k1", 1)
    waiting.expect("k1", 2)  # the same key on two lines: two answers expected
    waiting.expect("k2", 3)
    assert waiting.take(result("k2", Outcome.RETRY_SCHEDULED)) is None
    assert waiting.retrying == {3}
    assert waiting.take(result("other", Outcome.SUCCEEDED)) is None
    assert waiting.take(result("k1", Outcome.SUCCEEDED)) == 1
    assert waiting.take(result("k1", Outcome.DUPLICATE)) == 2
    assert waiting.take(result("k1", Outcome.DUPLICATE)) is None, "a stale copy's answer"
    assert waiting.take(result("k2", Outcome.DEAD_LETTERED)) == 3
    assert not waiting
    assert waiting.retrying == set()
    assert dict(waiting.counts) == {"succeeded": 1, "duplicate": 1, "dead_lettered": 1}


def test_a_failed_line_loses_its_passwords_and_nothing_else() -> None:
    raw = json.dumps(
        {"type": "tenant.created", "data": {"tenant": "t", "admin": {"password": "S3cret!"}}}
    )
    text, had = without_passwords(raw + "\n")
    assert had
    assert text is not None
    assert json.loads(text) == {"type": "tenant.created", "data": {"tenant": "t", "admin": {}}}
    plain = json.dumps({"type": "user.disabled", "data": {"tenant": "t", "username": "u"}})
    assert without_passwords(plain + "\n") == (plain, False)
    assert without_passwords('{"password": "S3cret!"\n') == (None, True)
    assert without_passwords("{not json\n") == ("{not json", False)
