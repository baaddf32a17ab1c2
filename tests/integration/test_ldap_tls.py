"""LDAPS is always validated: against the CA file, or else the system's trust store.
Skipping validation takes a setting with "insecure" in its name, and the worker says so."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.support.platform import SuitePlatform

VERIFY_FAILED = "CERTIFICATE_VERIFY_FAILED"


def other_ca(tmp_path: Path) -> Path:
    """A CA of our own, which signed nothing the DC holds."""
    pem = tmp_path / "other-ca.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-subj", "/CN=Not the hosting CA", "-keyout", str(tmp_path / "other-ca.key"),
            "-out", str(pem),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return pem


def test_the_right_ca_connects_and_a_wrong_one_is_refused(
    platform: SuitePlatform, tmp_path: Path
) -> None:
    assert platform.provisioner("directory", "check").returncode == 0  # the platform's CA
    wrong = platform.provisioner(
        "directory", "check", overrides={"PROVISIONER_LDAP_CA_FILE": str(other_ca(tmp_path))}
    )
    assert wrong.returncode == 1
    assert VERIFY_FAILED in wrong.stderr


def test_no_ca_file_means_the_system_store_not_no_validation(platform: SuitePlatform) -> None:
    # The DC's certificate is signed by Samba's own CA, which no system store holds.
    unset = platform.provisioner("directory", "check", overrides={"PROVISIONER_LDAP_CA_FILE": ""})
    assert unset.returncode == 1
    assert VERIFY_FAILED in unset.stderr


def test_the_right_ca_with_the_wrong_name_is_refused(platform: SuitePlatform) -> None:
    named = platform.provisioner(
        "directory", "check", overrides={"PROVISIONER_LDAP_TLS_NAME": "dc9.elsewhere.test"}
    )
    assert named.returncode == 1
    assert "doesn't match any name in" in named.stderr
    assert "dc9.elsewhere.test" in named.stderr


def test_skipping_validation_needs_its_insecure_setting_and_the_worker_warns(
    platform: SuitePlatform, tmp_path: Path
) -> None:
    insecure = {"PROVISIONER_LDAP_CA_FILE": "", "PROVISIONER_LDAP_TLS_INSECURE_SKIP_VERIFY": "true"}
    assert platform.provisioner("directory", "check", overrides=insecure).returncode == 0
    log = tmp_path / "worker.log"
    with platform.worker(log, overrides=insecure):
        pass
    assert '"event": "ldap.tls_insecure"' in log.read_text()
    assert '"level": "warning"' in log.read_text()
    # Without it, the same worker does not warn.
    quiet = tmp_path / "quiet.log"
    with platform.worker(quiet):
        pass
    assert "ldap.tls_insecure" not in quiet.read_text()
