"""The drift gauge: the audit's findings by kind, as a Prometheus textfile.

``provisioner audit --metrics-file F`` writes it (atomically) for node_exporter's
textfile collector or any scrape that reads files; the kinds are a bounded set, and
tenants never become labels.
"""

from __future__ import annotations

from collections import Counter

from prometheus_client import CollectorRegistry, Gauge, write_to_textfile

from workers.ops.audit import Finding

KINDS = ("platform", "tenant_missing", "object_missing", "dacl", "not_member", "outsider")


def write(path: str, findings: list[Finding]) -> None:
    registry = CollectorRegistry()
    drift = Gauge(
        "provisioner_drift_findings",
        "Differences the last audit found, by kind.",
        ["kind"],
        registry=registry,
    )
    counts = Counter(f.kind for f in findings)
    for kind in KINDS:
        drift.labels(kind).set(counts.get(kind, 0))
    last = Gauge(
        "provisioner_audit_last_run_timestamp_seconds",
        "When the audit last ran.",
        registry=registry,
    )
    last.set_to_current_time()
    write_to_textfile(path, registry)
