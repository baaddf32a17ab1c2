from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from workers.runtime.settings import Settings, SettingsError


def test_environment_then_flags() -> None:
    env = {"PROVISIONER_PREFETCH": "3", "PROVISIONER_LDAP_URL": "ldaps://127.0.0.1:1636"}
    settings = Settings.from_env(env, {"prefetch": 7, "ldap_url": None})
    assert settings.prefetch == 7
    assert settings.ldap_url == "ldaps://127.0.0.1:1636"
    assert Settings.from_env({}).prefetch == 10


def test_a_bad_value_names_its_variable() -> None:
    with pytest.raises(SettingsError, match="PROVISIONER_PREFETCH='many'"):
        Settings.from_env({"PROVISIONER_PREFETCH": "many"})


def test_secrets_are_masked_in_descriptions_and_repr() -> None:
    settings = Settings.from_env({"PROVISIONER_LDAP_BIND_PASSWORD": "s3cret-Value"})
    shown = {variable: value for variable, value, _doc in settings.describe()}
    assert shown["PROVISIONER_LDAP_BIND_PASSWORD"] == "********"
    assert "s3cret-Value" not in repr(settings)


def test_a_boolean_setting_reads_true_and_false_and_nothing_else() -> None:
    name = "PROVISIONER_LDAP_TLS_INSECURE_SKIP_VERIFY"
    assert Settings.from_env({}).ldap_tls_insecure_skip_verify is False
    for raw, wanted in (("true", True), ("1", True), ("Yes", True), ("false", False), ("0", False)):
        assert Settings.from_env({name: raw}).ldap_tls_insecure_skip_verify is wanted, raw
    with pytest.raises(SettingsError, match=f"{name}='maybe'"):
        Settings.from_env({name: "maybe"})


@pytest.mark.parametrize(
    ("variable", "value", "says"),
    [
        ("PROVISIONER_LOG_LEVEL", "loud", "debug, info, warning or error"),
        ("PROVISIONER_LOG_FORMAT", "xml", "json, console or auto"),
        ("PROVISIONER_RETRY_DELAYS", "abc", "PROVISIONER_RETRY_DELAYS"),
        ("PROVISIONER_RETRY_DELAYS", "1,-5", "positive seconds"),
        ("PROVISIONER_RETRY_JITTER", "1.5", "from 0 to below 1"),
        ("PROVISIONER_PREFETCH", "0", "at least 1"),
        ("PROVISIONER_METRICS_PORT", "70000", "0 (off) to 65535"),
        ("PROVISIONER_METRICS_ADDRESS", "localhost:9464", "an IPv4 or IPv6 address"),
        ("PROVISIONER_LDAP_URL", "ldap://127.0.0.1", "an ldaps:// URL"),
        ("PROVISIONER_AMQP_URL", "http://broker", "an amqp:// or amqps:// URL"),
        ("PROVISIONER_PRODUCER_POLICY", "order=tenant.destroyed", "unknown event type"),
    ],
)
def test_every_value_is_checked_before_anything_starts(
    variable: str, value: str, says: str
) -> None:
    with pytest.raises(SettingsError, match=re.escape(says)) as refused:
        Settings.from_env({variable: value})
    assert variable in str(refused.value)
    assert "\n" not in str(refused.value)
    # The control: the same variable with a good value is taken.
    good = {
        "PROVISIONER_LOG_LEVEL": "debug",
        "PROVISIONER_LOG_FORMAT": "json",
        "PROVISIONER_RETRY_DELAYS": "1,5",
        "PROVISIONER_RETRY_JITTER": "0.5",
        "PROVISIONER_PREFETCH": "1",
        "PROVISIONER_METRICS_PORT": "0",
        "PROVISIONER_METRICS_ADDRESS": "::1",
        "PROVISIONER_LDAP_URL": "ldaps://127.0.0.1:636",
        "PROVISIONER_AMQP_URL": "amqps://u:p@127.0.0.1:5671/%2Fprovisioning",
        "PROVISIONER_PRODUCER_POLICY": "order=tenant.created",
    }
    Settings.from_env({variable: good[variable]})


def settings_command(log_level: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROVISIONER_")}
    return subprocess.run(
        [sys.executable, "-m", "workers.cli", "settings"],
        env={**env, "PROVISIONER_LOG_LEVEL": log_level},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_bad_setting_is_one_line_and_exit_2_from_the_command_line() -> None:
    done = settings_command("loud")
    assert done.returncode == 2
    assert done.stderr == (
        "provisioner: PROVISIONER_LOG_LEVEL='loud': debug, info, warning or error\n"
    )
    ok = settings_command("warning")
    assert ok.returncode == 0, ok.stderr
