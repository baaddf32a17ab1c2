"""The deployable units are valid before anyone deploys them: every Kubernetes manifest
against the Kubernetes schemas (kubernetes-validate, strict: an unknown field fails), the
KEDA resources against KEDA's (cloudcoil's models of its CRDs, with a round trip that
fails on an unknown field), the Containerfile through hadolint, and the systemd unit
through ``systemd-analyze verify`` and its offline security review.  Each validator is
first shown to reject a broken copy, so that a pass means something.

Nothing here runs a cluster or systemd as PID 1: docs/operations.md says what was and was
not run for real.
"""

from __future__ import annotations

import copy
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pydantic
import pytest
import yaml  # type: ignore[import-untyped]
from cloudcoil.models.keda import v1alpha1 as keda

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
MANIFESTS = DEPLOY / "kubernetes"
KUBERNETES = "1.30.0"  # the oldest release still maintained upstream when this was written
KEDA_KINDS = {"ScaledObject", "TriggerAuthentication"}
BIN = Path(sys.executable).parent


def documents() -> list[tuple[str, dict[str, Any]]]:
    out = []
    for path in sorted(MANIFESTS.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        out += [(f"{path.name}:{d['kind']}", d) for d in yaml.safe_load_all(path.read_text())]
    return out


def keda_round_trip(document: dict[str, Any]) -> dict[str, Any]:
    """The document as KEDA's schema reads it; a field the schema lacks is dropped."""
    model = getattr(keda, document["kind"]).model_validate(document)
    dumped: dict[str, Any] = model.model_dump(by_alias=True, exclude_unset=True, mode="json")
    return dumped


def test_every_resource_of_the_kustomization_is_checked() -> None:
    listed = yaml.safe_load((MANIFESTS / "kustomization.yaml").read_text())["resources"]
    on_disk = sorted(p.name for p in MANIFESTS.glob("*.yaml") if p.name != "kustomization.yaml")
    assert sorted(listed) == on_disk
    kinds = {d["kind"] for _, d in documents()}
    expected = {"ConfigMap", "Secret", "Deployment", "PodDisruptionBudget", "NetworkPolicy"}
    assert kinds == expected | KEDA_KINDS


@pytest.mark.parametrize(("name", "document"), documents(), ids=[n for n, _ in documents()])
def test_each_manifest_is_valid(name: str, document: dict[str, Any]) -> None:
    if document["kind"] in KEDA_KINDS:
        assert keda_round_trip(document) == document, name
    else:
        kubernetes_validate.validate(document, KUBERNETES, strict=True)


def test_the_validators_reject_a_broken_manifest() -> None:
    deployment = next(d for _, d in documents() if d["kind"] == "Deployment")
    broken = copy.deepcopy(deployment)
    broken["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["paht"] = "/"
    with pytest.raises(kubernetes_validate.ValidationError, match="paht"):
        kubernetes_validate.validate(broken, KUBERNETES, strict=True)
    scaled = next(d for _, d in documents() if d["kind"] == "ScaledObject")
    unknown = copy.deepcopy(scaled)
    unknown["spec"]["triggers"][0]["metdata"] = {"queueName": "provisioning.work"}
    assert keda_round_trip(unknown) != unknown  # the field KEDA does not know is dropped
    wrong_type = copy.deepcopy(scaled)
    wrong_type["spec"]["minReplicaCount"] = "one"
    with pytest.raises(pydantic.ValidationError):
        keda_round_trip(wrong_type)


def test_the_deployment_probes_the_workers_own_endpoints() -> None:
    deployment = next(d for _, d in documents() if d["kind"] == "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    worker = pod["containers"][0]
    assert worker["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert worker["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert "kill -TERM 1" in " ".join(worker["lifecycle"]["preStop"]["exec"]["command"])
    assert pod["terminationGracePeriodSeconds"] >= 120
    settings = next(d for _, d in documents() if d["kind"] == "ConfigMap")["data"]
    assert settings["PROVISIONER_METRICS_ADDRESS"] == "0.0.0.0"  # noqa: S104 - a pod's probes
    assert worker["securityContext"]["readOnlyRootFilesystem"] is True


def hadolint(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "hadolint"), str(path)], capture_output=True, text=True, check=False
    )


def test_the_containerfile_passes_hadolint(tmp_path: Path) -> None:
    sloppy = tmp_path / "Containerfile"
    sloppy.write_text("FROM debian\nRUN apt-get update && apt-get install -y curl\n")
    assert hadolint(sloppy).returncode != 0  # the control: it does lint
    done = hadolint(MANIFESTS / "Containerfile")
    assert done.returncode == 0, done.stdout + done.stderr


SYSTEMD_ANALYZE = shutil.which("systemd-analyze")
EXPOSURE_LIMIT = 20
needs_systemd_analyze = pytest.mark.skipif(
    SYSTEMD_ANALYZE is None, reason="systemd-analyze is not installed"
)


def unit_copy(tmp_path: Path, text: str) -> Path:
    """The unit as a file systemd-analyze can verify here: its ExecStart pointed at this
    venv's ``provisioner`` (the unit's own path exists only on a host installed as the
    docs say)."""
    unit = tmp_path / "provisioner-worker@.service"
    unit.write_text(text.replace("/opt/provisioner/venv/bin/provisioner", str(BIN / "provisioner")))
    return unit


def analyze(*args: str) -> subprocess.CompletedProcess[str]:
    assert SYSTEMD_ANALYZE is not None
    return subprocess.run(
        [SYSTEMD_ANALYZE, *args], capture_output=True, text=True, check=False, timeout=60
    )


@needs_systemd_analyze
def test_the_systemd_unit_verifies_and_is_hardened(tmp_path: Path) -> None:
    text = (DEPLOY / "systemd" / "provisioner-worker@.service").read_text()
    unit = unit_copy(tmp_path, text)
    verified = analyze("verify", str(unit))
    assert verified.returncode == 0, verified.stderr
    assert verified.stderr == "", verified.stderr  # no warning either (unknown keys, say)
    # systemd counts exposure in tenths: 20 is the "2.0" it prints (this unit: 1.2, "OK").
    review = analyze("security", "--offline=true", f"--threshold={EXPOSURE_LIMIT}", str(unit))
    assert review.returncode == 0, review.stdout
    # The control: the same unit without its hardening is over the threshold.
    bare = "\n".join(
        line
        for line in text.splitlines()
        if line.startswith(("[", "Description", "Type", "ExecStart", "User", "Group"))
    )
    (tmp_path / "loose").mkdir()
    loose = unit_copy(tmp_path / "loose", bare)
    loose_review = analyze(
        "security", "--offline=true", f"--threshold={EXPOSURE_LIMIT}", str(loose)
    )
    assert loose_review.returncode != 0
