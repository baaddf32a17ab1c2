"""Prometheus metrics of one worker process, and the HTTP endpoint that serves them.

Every worker process serves ``/metrics``, ``/healthz`` and ``/readyz`` on its own port
(``PROVISIONER_METRICS_PORT``; the supervisor gives child N the port + N) and address
(``PROVISIONER_METRICS_ADDRESS``, loopback by default), so that each process is a scrape
target of its own and a dead one shows up as ``up == 0``.  Labels
are bounded sets (event types, outcomes, error codes, step kinds, LDAP operations):
tenant and message ids never become labels.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Generic, TypeVar
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    make_wsgi_app,
)
from prometheus_client.metrics import MetricWrapperBase

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)

M = TypeVar("M", bound=MetricWrapperBase)


class Children(Generic[M]):
    """A labelled metric whose children are resolved once per set of label values:
    prometheus-client's ``labels`` checks the values and takes a lock on every call, and
    a message makes about fifteen such calls.  The label sets are bounded (see above),
    so the map stays small."""

    def __init__(self, metric: M) -> None:
        self.metric = metric
        self._children: dict[tuple[str, ...], M] = {}

    def labels(self, *values: str) -> M:
        child = self._children.get(values)
        if child is None:
            child = self._children[values] = self.metric.labels(*values)
        return child

    def collect(self) -> Any:
        return self.metric.collect()


class Metrics:
    """The worker's instruments, in a registry of their own."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        # The process's CPU seconds, memory and file descriptors (process_*), as in
        # prometheus_client's default registry: the cost of a worker in its own terms.
        ProcessCollector(registry=r)
        self.messages = Children(
            Counter(
                "provisioner_messages",
                "Messages ended, by type and outcome.",
                ["type", "outcome"],
                registry=r,
            )
        )
        self.processing = Children(
            Histogram(
                "provisioner_processing_seconds",
                "Time to handle one message, by type.",
                ["type"],
                buckets=LATENCY_BUCKETS,
                registry=r,
            )
        )
        self.steps = Children(
            Histogram(
                "provisioner_step_seconds",
                "Time of one provisioning step.",
                ["step"],
                buckets=LATENCY_BUCKETS,
                registry=r,
            )
        )
        self.retries = Children(
            Counter(
                "provisioner_retries",
                "Retries scheduled, by type and cause.",
                ["type", "code"],
                registry=r,
            )
        )
        self.dead_letters = Children(
            Counter(
                "provisioner_dead_letters",
                "Messages dead-lettered, by reason.",
                ["reason"],
                registry=r,
            )
        )
        self.duplicates = Children(
            Counter(
                "provisioner_duplicates",
                "Duplicates answered without effect, by type.",
                ["type"],
                registry=r,
            )
        )
        self.compensations = Children(
            Counter(
                "provisioner_compensations",
                "Rollbacks of all-or-nothing jobs, by type and result.",
                ["type", "result"],
                registry=r,
            )
        )
        self.in_flight = Gauge(
            "provisioner_in_flight_messages", "Messages being handled now.", registry=r
        )
        self.ldap_operations = Children(
            Counter(
                "provisioner_ldap_operations",
                "LDAP operations, by operation and result.",
                ["operation", "result"],
                registry=r,
            )
        )
        self.ldap_latency = Children(
            Histogram(
                "provisioner_ldap_operation_seconds",
                "LDAP operation latency, by operation.",
                ["operation"],
                buckets=LATENCY_BUCKETS,
                registry=r,
            )
        )
        self.last_success = Gauge(
            "provisioner_last_success_timestamp_seconds",
            "When this worker last applied or answered a message.",
            registry=r,
        )

    # -- the engine's observer

    def on_step(self, step: object, seconds: float) -> None:
        self.steps.labels(type(step).__name__).observe(seconds)

    def on_rollback(self, event_type: str, leftovers: Sequence[str]) -> None:
        self.compensations.labels(event_type, "incomplete" if leftovers else "complete").inc()


class _Quiet(WSGIRequestHandler):
    def log_message(self, *_args: object) -> None:
        """Scrapes are not worth a log line each."""


class Endpoint:
    """``/metrics``, ``/healthz`` and ``/readyz`` on ``host``:``port``, served from a daemon
    thread.  ``/healthz`` answers whether the process is live (its loop turns: a restart
    would help if not); ``/readyz`` whether it is ready for work (consuming from the
    broker, and its DC answering: traffic and scale-in decisions go by it)."""

    def __init__(
        self,
        metrics: Metrics,
        port: int,
        live: Callable[[], bool],
        ready: Callable[[], bool],
        host: str = "127.0.0.1",
    ) -> None:
        metrics_app = make_wsgi_app(metrics.registry)
        probes = {
            "/healthz": (live, b"live\n", b"not live\n"),
            "/readyz": (ready, b"ready\n", b"not ready\n"),
        }

        def app(environ: dict[str, Any], start: Callable[..., Any]) -> Iterable[bytes]:
            probe = probes.get(str(environ.get("PATH_INFO")))
            if probe is not None:
                check, yes, no = probe
                ok = check()
                start(
                    "200 OK" if ok else "503 Service Unavailable", [("Content-Type", "text/plain")]
                )
                return [yes if ok else no]
            result: Iterable[bytes] = metrics_app(environ, start)
            return result

        server_class = _WSGIServer6 if ":" in host else WSGIServer
        self._server: WSGIServer = make_server(
            host, port, app, server_class=server_class, handler_class=_Quiet
        )
        self.port = self._server.server_port
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class _WSGIServer6(WSGIServer):
    address_family = socket.AF_INET6
