"""Every worker process serves /metrics, /healthz and /readyz, with bounded labels, on the
address it is given."""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import urllib.error
import urllib.request
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from tests.support import broker, engine
from tests.support.platform import SuitePlatform, fleet, wait_for


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def healthz(port: int, path: str = "/healthz", host: str = "127.0.0.1") -> int:
    """The status a probe gets (503 included); 0 when nothing answers."""
    try:
        return int(urllib.request.urlopen(f"http://{host}:{port}{path}", timeout=5).status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except (urllib.error.URLError, OSError):
        return 0


def value(
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str
) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_a_worker_counts_what_it_does(
    platform: SuitePlatform, results: str, tmp_path: Path
) -> None:
    port = free_port()
    tenant = f"mx-{secrets.token_hex(3)}"
    data = engine.tenant_data(tenant, admin_password="Metric-Passw0rd!")
    line = {"type": "tenant.created", "idempotency_key": f"{tenant}-k", "data": data}
    events = tmp_path / "events.jsonl"
    events.write_text("\n".join(json.dumps({**line, "id": f"{tenant}-{n}"}) for n in (1, 2)))
    with platform.worker(tmp_path / "w.log", {"PROVISIONER_METRICS_PORT": str(port)}):
        assert healthz(port) == 200
        assert platform.provisioner("publish", "--file", str(events)).returncode == 0
        broker.publish_raw("provisioning.events", "tenant.created", b"\xc1", message_id=tenant)
        wait_for(lambda: broker.depth(results) == 3, 30)
        samples = scrape(port)
    assert (
        value(samples, "provisioner_messages_total", type="tenant.created", outcome="succeeded")
        == 1
    )
    assert (
        value(samples, "provisioner_messages_total", type="tenant.created", outcome="duplicate")
        == 1
    )
    assert (
        value(samples, "provisioner_messages_total", type="unknown", outcome="dead_lettered") == 1
    )
    assert value(samples, "provisioner_duplicates_total", type="tenant.created") == 1
    assert value(samples, "provisioner_dead_letters_total", reason="malformed_msgpack") == 1
    assert value(samples, "provisioner_processing_seconds_count", type="tenant.created") == 2
    assert value(samples, "provisioner_step_seconds_count", step="CreateEntry") >= 4
    assert (
        value(samples, "provisioner_ldap_operations_total", operation="add", result="success") >= 6
    )
    assert value(samples, "provisioner_ldap_operation_seconds_count", operation="add") >= 6
    assert value(samples, "provisioner_in_flight_messages") == 0
    assert value(samples, "provisioner_last_success_timestamp_seconds") > 0
    assert value(samples, "process_cpu_seconds_total") > 0  # the process's own cost
    assert value(samples, "process_resident_memory_bytes") > 10_000_000
    for _, labels in samples:  # no tenant and no message id ever becomes a label
        assert all(tenant not in v for _, v in labels), labels


def test_each_process_of_a_fleet_is_a_target_of_its_own(
    platform: SuitePlatform, tmp_path: Path
) -> None:
    base = free_port()
    while healthz(base + 1) or not _free(base + 1):
        base = free_port()
    with fleet(
        platform, tmp_path / "fleet.log", 2, {"PROVISIONER_METRICS_PORT": str(base)}
    ) as running:
        wait_for(lambda: healthz(base) == 200 and healthz(base + 1) == 200, 30)
        served = {int(str(e["port"])) for e in running.events("metrics.serving")}
        assert served == {base, base + 1}
        victim = next(int(str(e["pid"])) for e in running.events("supervisor.child_started"))
        os.kill(victim, signal.SIGKILL)
        # Its port is dark until the supervisor's replacement serves it again.
        wait_for(lambda: len(running.events("metrics.serving")) == 3, 30)
        wait_for(lambda: healthz(base) == 200 and healthz(base + 1) == 200, 30)


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def test_live_and_ready_are_told_apart_and_follow_the_dc(
    platform: SuitePlatform, tmp_path: Path
) -> None:
    """With the DC stopped, the worker stays live (a restart would not help) and stops
    being ready; with the DC back, it is ready again, untouched by a restart."""
    port = free_port()
    with platform.worker(tmp_path / "w.log", {"PROVISIONER_METRICS_PORT": str(port)}) as process:
        wait_for(lambda: healthz(port, "/readyz") == 200, 30)
        assert healthz(port) == 200
        stopped = platform.script("samba-stop")
        assert stopped.returncode == 0, stopped.stderr
        try:
            wait_for(lambda: healthz(port, "/readyz") == 503, 30)
            assert healthz(port) == 200  # live all along
        finally:
            started = platform.script("samba-start")
            assert started.returncode == 0, started.stderr
        wait_for(lambda: healthz(port, "/readyz") == 200, 60)
        assert process.poll() is None  # the same process throughout


def test_the_endpoint_listens_on_the_address_it_is_given(
    platform: SuitePlatform, tmp_path: Path
) -> None:
    port = free_port()
    overrides = {"PROVISIONER_METRICS_PORT": str(port), "PROVISIONER_METRICS_ADDRESS": "127.0.0.9"}
    with platform.worker(tmp_path / "w.log", overrides):
        wait_for(lambda: healthz(port, host="127.0.0.9") == 200, 30)
        assert healthz(port, "/metrics", host="127.0.0.9") == 200
        assert healthz(port, host="127.0.0.1") == 0  # nothing on the default address
        lines = (tmp_path / "w.log").read_text().splitlines()
        serving = [json.loads(line) for line in lines if '"metrics.serving"' in line]
        assert serving == [serving[0]]
        assert (serving[0]["address"], serving[0]["port"]) == ("127.0.0.9", port)
