"""The dashboard and the alert rules, proven on a real Prometheus scraping a real worker
and RabbitMQ.  No panel query is padded: each must return data of its own."""

from __future__ import annotations

import json
import secrets
import subprocess
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.test_metrics import free_port
from tests.support import broker, engine
from tests.support.platform import REPO, SuitePlatform, wait_for

PROMETHEUS_DIR = REPO / "deploy" / "prometheus"
DASHBOARD = REPO / "deploy" / "grafana" / "provisioning-fleet.json"
UNITS = {"ops", "s", "percentunit", "short", "bytes"}  # Grafana unit ids this dashboard may use


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["promtool", *args],
        cwd=PROMETHEUS_DIR,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_config_and_rules_pass_promtool() -> None:
    for args in (
        ("check", "config", "prometheus.yml"),
        ("check", "rules", "rules.yml"),
        ("test", "rules", "rules_test.yml"),
    ):
        result = promtool(*args)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "SUCCESS" in result.stdout + result.stderr


def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


def queries() -> list[tuple[str, str]]:
    return [(p["title"], t["expr"]) for p in dashboard()["panels"] for t in p["targets"]]


def test_the_dashboard_is_well_formed() -> None:
    board = dashboard()
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids))
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    for panel in board["panels"]:
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        assert panel["fieldConfig"]["defaults"]["unit"] in UNITS, panel["title"]
        assert panel["targets"], panel["title"]
    for title, expr in queries():
        assert "or vector(" not in expr.replace(" ", ""), title  # no padding
    titles = " ".join(p["title"].lower() for p in board["panels"])
    for needed in (
        "throughput",
        "latency",
        "error rate",
        "dead letters",
        "queue depth",
        "retries",
        "in flight",
        "ldap latency",
        "compensations",
        "worker cpu",
        "worker memory",
    ):
        assert needed in titles


class Prometheus:
    def __init__(self, port: int) -> None:
        self.base = f"http://127.0.0.1:{port}"

    def get(self, path: str, **params: str) -> Any:
        url = f"{self.base}{path}?{urllib.parse.urlencode(params)}"
        with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - http://127.0.0.1
            return json.loads(response.read())["data"]


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[tuple[Prometheus, int]]:
    """The project's scrape config and rules, aimed at a test worker's port, 1 s scrapes."""
    worker_port, port = free_port(), free_port()
    config = (PROMETHEUS_DIR / "prometheus.yml").read_text()
    config = config.replace('["127.0.0.1:9464", "127.0.0.1:9465"]', f'["127.0.0.1:{worker_port}"]')
    config = config.replace("scrape_interval: 15s", "scrape_interval: 1s")
    config = config.replace("evaluation_interval: 15s", "evaluation_interval: 1s")
    config = config.replace("  - rules.yml", f"  - {PROMETHEUS_DIR / 'rules.yml'}")
    assert f"127.0.0.1:{worker_port}" in config
    (tmp_path / "prometheus.yml").write_text(config)
    with (tmp_path / "prometheus.log").open("wb") as log:  # the child keeps its own handle
        process = subprocess.Popen(
            [
                "prometheus",
                f"--config.file={tmp_path / 'prometheus.yml'}",
                f"--storage.tsdb.path={tmp_path / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--log.level=warn",
            ],
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
    try:
        api = Prometheus(port)
        wait_for(lambda: _answers(api), 30)
        yield api, worker_port
    finally:
        process.terminate()
        process.wait(30)


def _answers(api: Prometheus) -> bool:
    try:
        api.get("/api/v1/status/buildinfo")
    except OSError:
        return False
    return True


def test_every_panel_has_data_and_the_rules_are_loaded(
    platform: SuitePlatform,
    results: str,
    tmp_path: Path,
    prometheus: tuple[Prometheus, int],
) -> None:
    api, worker_port = prometheus
    tenant = f"ob-{secrets.token_hex(3)}"
    fine = {
        "type": "tenant.created",
        "idempotency_key": f"{tenant}-k",
        "data": engine.tenant_data(tenant, admin_password="Observed-Passw0rd!"),
    }
    rolled_back = {
        "type": "tenant.created",
        "idempotency_key": f"{tenant}-x",  # too short
        "data": engine.tenant_data(f"{tenant}x", admin_password="Sh0rt!"),
    }
    early = {
        "type": "user.created",
        "idempotency_key": f"{tenant}-early",
        "data": {"tenant": f"{tenant}-nope", "username": "u", "given_name": "U", "surname": "U"},
    }
    events = tmp_path / "events.jsonl"
    events.write_text("\n".join(json.dumps(x) for x in (fine, fine, rolled_back, early)) + "\n")
    overrides = {
        "PROVISIONER_METRICS_PORT": str(worker_port),
        "PROVISIONER_RETRY_DELAYS": "0.5",
        "PROVISIONER_RETRY_ATTEMPTS": "3",
    }
    with platform.worker(tmp_path / "w.log", overrides):
        wait_for(lambda: _targets_up(api), 30)
        assert platform.provisioner("publish", "--file", str(events)).returncode == 0
        broker.publish_raw("provisioning.events", "tenant.created", b"\xc1", message_id=tenant)
        seen: list[str] = []

        def answered() -> bool:
            seen.extend(m.routing_key for m in broker.drain(results))
            return len(seen) >= len(EXPECTED_RESULTS)

        wait_for(answered, 60, interval=0.5)
        assert sorted(seen) == sorted(EXPECTED_RESULTS)
        empty: list[str] = []

        def all_have_data() -> bool:
            empty.clear()
            for title, expr in queries():
                result = api.get("/api/v1/query", query=expr.replace("$__rate_interval", "30s"))
                if not result["result"]:
                    empty.append(f"{title}: {expr}")
            return not empty

        try:
            wait_for(all_have_data, 60, interval=2)
        except TimeoutError:
            pytest.fail("panels without data:\n" + "\n".join(empty))
    rules = [r for g in api.get("/api/v1/rules")["groups"] for r in g["rules"]]
    assert sorted(r["name"] for r in rules) == [
        "ProvisionerDeadLettersGrowing",
        "ProvisionerLatencyHigh",
        "ProvisionerNoSuccess",
        "ProvisionerWorkerDown",
    ]
    assert all(r["health"] == "ok" for r in rules), rules


# succeeded and duplicate, a rollback, two retries and the exhausted one, the poison.
EXPECTED_RESULTS = [
    "tenant.created.succeeded",
    "tenant.created.duplicate",
    "tenant.created.dead_lettered",
    "user.created.retry_scheduled",
    "user.created.retry_scheduled",
    "user.created.dead_lettered",
    "unknown.dead_lettered",
]


def _targets_up(api: Prometheus) -> bool:
    targets = api.get("/api/v1/targets")["activeTargets"]
    return {t["labels"]["job"] for t in targets if t["health"] == "up"} == {
        "provisioner",
        "rabbitmq",
    }
