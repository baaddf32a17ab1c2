from __future__ import annotations

import pytest

from workers.settings import Settings, SettingsError


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
