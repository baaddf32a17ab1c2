"""`provisioner publish` and `plan` refuse bad input before they reach the broker or the
directory: one line, and the exit code of its kind."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

# A broker that is not there: a command that got as far as connecting would say so.
UNREACHABLE = {"PROVISIONER_AMQP_URL": "amqp://nobody:x@127.0.0.1:1/%2F"}


def provisioner(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROVISIONER_")}
    return subprocess.run(
        [sys.executable, "-m", "workers.cli", *args],
        env={**env, **UNREACHABLE},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("command", ["publish", "plan"])
def test_data_that_is_not_json_is_a_usage_error(command: str) -> None:
    done = provisioner(command, "user.created", "--data", "{bad")
    assert done.returncode == 2
    assert done.stderr.startswith("provisioner: --data is not JSON: ")
    assert done.stderr.count("\n") == 1


@pytest.mark.parametrize("command", ["publish", "plan"])
def test_an_invalid_event_is_refused_with_its_contract_error(command: str) -> None:
    done = provisioner(command, "user.created", "--data", '{"tenant": "UPPER"}')
    assert done.returncode == 1
    assert done.stderr.startswith("provisioner: invalid event: unsafe_identifier at data.tenant")


def test_a_valid_event_goes_on_to_the_broker() -> None:
    """The control: the same command with a valid event gets as far as connecting."""
    data = '{"tenant": "contoso", "username": "u", "given_name": "G", "surname": "S"}'
    done = provisioner("publish", "user.created", "--data", data)
    assert done.returncode == 1
    assert "cannot reach the broker" in done.stderr
