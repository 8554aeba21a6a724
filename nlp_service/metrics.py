"""Prometheus metrics, one registry per app (so several apps can live in one test process)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from nlp_service.worker_metrics import WorkerMetrics

LATENCY_BUCKETS = (0.005, 0.01, 0.02, 0.03, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0)


class Metrics:
    """The service's counters and histograms (names ``nlp_*`` with unit suffixes)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "nlp_http_requests_total", "HTTP requests", ["method", "route", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "nlp_http_request_duration_seconds",
            "HTTP request latency",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.batch_size = Histogram(
            "nlp_inference_batch_size",
            "Texts per encoder batch",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
            registry=self.registry,
        )
        self.queue_time = Histogram(
            "nlp_inference_queue_seconds",
            "Time a text waits before its batch starts",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.batch_time = Histogram(
            "nlp_inference_batch_seconds",
            "Encoder + heads time per batch",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.texts = Counter("nlp_texts_analyzed_total", "Texts analysed", registry=self.registry)
        self.queue_depth = Gauge("nlp_inference_queue_depth", "Texts waiting", registry=self.registry)
        self.worker = WorkerMetrics(self.registry)  # the embedded worker's jobs and deliveries
