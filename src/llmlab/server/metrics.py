"""Prometheus metrics of one server: ``GET /metrics`` in the text exposition format.

Each app has its own registry (on ``app.state.lab.metrics``), never the process-global one,
so tests build many apps. What is counted: HTTP requests by route template, method and
status (an ASGI middleware, so every route and mounted app is covered); prompt and
completion tokens, time to first token and time between streamed pieces, per model
(recorded where a generation starts and ends, :mod:`.state`); and, read at scrape time
from each loaded model's scheduler, queue depth and busy/free batch slots. Every series of
the configured models exists with value 0 from start-up, so dashboards and alerts see a 0,
not a gap. ``/metrics`` sits behind the API key when keys are set.
"""
from __future__ import annotations

import time
from typing import Any, Iterable

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from ..errors import MissingDependencyError
from .auth import api_key

#: seconds; decode steps of a small model on a CPU are 5-50 ms, a first token up to seconds
TTFT_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
ITL_BUCKETS = (0.002, 0.005, 0.01, 0.02, 0.035, 0.05, 0.075, 0.1, 0.2, 0.5, 1.0)
UNMATCHED = "unmatched"


def _prometheus() -> Any:
    try:
        import prometheus_client
    except ImportError as e:  # pragma: no cover - part of the ui extra
        raise MissingDependencyError("prometheus_client", purpose="the server's /metrics", extra="ui") from e
    return prometheus_client


class _SchedulerCollector:
    """Gauges read at scrape time from the loaded models' schedulers (0 for configured, unloaded ones)."""

    def __init__(self, lab: Any, models: list[str]):
        self.lab = lab
        self.models = models

    def describe(self) -> list[Any]:
        return []  # no registration-time scrape

    def collect(self) -> Iterable[Any]:
        from prometheus_client.core import GaugeMetricFamily

        queue = GaugeMetricFamily("llmlab_queue_depth", "requests waiting for a batch slot", labels=["model"])
        busy = GaugeMetricFamily("llmlab_slots_busy", "batch slots decoding a request", labels=["model"])
        free = GaugeMetricFamily("llmlab_slots_free", "batch slots free for a request", labels=["model"])
        active = GaugeMetricFamily("llmlab_requests_active", "requests being decoded", labels=["model"])
        seen = set()
        for m in self.lab.pool.loaded():
            load = m.get("load") or {}
            slots = load.get("slots", 0)
            queue.add_metric([m["name"]], load.get("waiting", 0))
            busy.add_metric([m["name"]], slots - load.get("free_slots", slots))
            free.add_metric([m["name"]], load.get("free_slots", 0))
            active.add_metric([m["name"]], load.get("active", 0))
            seen.add(m["name"])
        for name in self.models:
            if name not in seen:
                for fam in (queue, busy, free, active):
                    fam.add_metric([name], 0)
        in_flight = GaugeMetricFamily("llmlab_requests_in_flight", "generation requests admitted by the server")
        in_flight.add_metric([], self.lab.admission.in_flight)
        return [queue, busy, free, active, in_flight]


class ServerMetrics:
    """The server's registry and the instruments the rest of the server records into."""

    def __init__(self, lab: Any, models: list[str]):
        pc = _prometheus()
        self.registry = pc.CollectorRegistry()
        r = self.registry
        self.requests = pc.Counter("llmlab_http_requests", "HTTP requests by route template, method and status",
                                   ["route", "method", "status"], registry=r)
        self.tokens = pc.Counter("llmlab_tokens", "tokens by model; direction in = prompt, out = completion",
                                 ["model", "direction"], registry=r)
        self.ttft = pc.Histogram("llmlab_time_to_first_token_seconds", "request start to its first streamed piece",
                                 ["model"], buckets=TTFT_BUCKETS, registry=r)
        self.itl = pc.Histogram("llmlab_inter_token_seconds", "time between two streamed pieces of one request",
                                ["model"], buckets=ITL_BUCKETS, registry=r)
        r.register(_SchedulerCollector(lab, models))
        for name in models:
            self._touch(name)

    def _touch(self, model: str) -> None:
        """Create a model's series at 0 (labels() alone makes them exist)."""
        self.tokens.labels(model, "in")
        self.tokens.labels(model, "out")
        self.ttft.labels(model)
        self.itl.labels(model)

    def touch_routes(self, openapi_paths: dict[str, Any]) -> None:
        """Create ``route × method × 200`` request series at 0 for every documented operation."""
        for path, ops in openapi_paths.items():
            for method in ops:
                if method in ("get", "post", "put", "patch", "delete"):
                    self.requests.labels(path, method.upper(), "200")

    # -- recording (each call is a lock and an add: cheap enough per streamed piece) --------------------
    def request(self, route: str, method: str, status: int) -> None:
        self.requests.labels(route, method, str(status)).inc()

    def first_token(self, model: str, seconds: float) -> None:
        self.ttft.labels(model).observe(seconds)

    def inter_token(self, model: str, seconds: float) -> None:
        self.itl.labels(model).observe(seconds)

    def usage(self, model: str, prompt_tokens: int, completion_tokens: int) -> None:
        self.tokens.labels(model, "in").inc(max(0, prompt_tokens))
        self.tokens.labels(model, "out").inc(max(0, completion_tokens))

    def exposition(self) -> tuple[bytes, str]:
        pc = _prometheus()
        return pc.generate_latest(self.registry), pc.CONTENT_TYPE_LATEST


class RequestMetrics:
    """ASGI middleware: counts every HTTP request by its route template (never the raw path,
    which would let any client create series), method and final status."""

    def __init__(self, app: Any, metrics: ServerMetrics):
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = {"code": 500}

        async def counting_send(message: Any) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, counting_send)
        finally:
            route = getattr(scope.get("route"), "path", None) or UNMATCHED
            self.metrics.request(route, scope.get("method", "GET"), status["code"])


router = APIRouter(tags=["server"])


@router.get("/metrics", dependencies=[Depends(api_key)], response_class=Response,
            responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}},
                             "description": "Prometheus text format"}})
async def metrics(request: Request) -> Response:
    """Prometheus metrics (text format): requests, tokens, queue depth, slots, TTFT and inter-token times."""
    body, content_type = request.app.state.lab.metrics.exposition()
    return Response(body, media_type=content_type)


class Clock:
    """Times one stream's pieces for the histograms: first piece, then the gaps between pieces."""

    def __init__(self, metrics: ServerMetrics, model: str):
        self.metrics, self.model = metrics, model
        self.start = time.perf_counter()
        self.last: float | None = None

    def piece(self) -> None:
        now = time.perf_counter()
        if self.last is None:
            self.metrics.first_token(self.model, now - self.start)
        else:
            self.metrics.inter_token(self.model, now - self.last)
        self.last = now
