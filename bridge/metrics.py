"""Prometheus metrics of one service, in a registry of its own (``GET /metrics``).

What is measured where it happens (decisions, greeting ends, refused calls,
engine batches) is recorded through ``Metrics``; counters the components keep
anyway (each handler's and PBX link's ``outcomes``, the open connections) are
read at scrape time, so the hot paths pay nothing for them.
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

from bridge.engine.batcher import BatchingEngine
from bridge.session import CallSession

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# Decision compute: 10 ms to 10 s (the analysis deadline); audio: the decision windows.
_COMPUTE_BUCKETS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0)
_AUDIO_BUCKETS = (0.5, 1.0, 2.0, 2.5, 3.0, 4.0, 5.0, 10.0, 30.0)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.decisions = Counter(
            "amd_decisions", "Calls decided", ["transport", "status", "cause"], registry=r
        )
        self.compute = Histogram(
            "amd_decision_compute_seconds",
            "Wall time from a call's analysis request to its result",
            ["transport"],
            buckets=_COMPUTE_BUCKETS,
            registry=r,
        )
        self.audio = Histogram(
            "amd_decision_audio_seconds",
            "Callee audio heard when the call was decided",
            ["transport", "status"],
            buckets=_AUDIO_BUCKETS,
            registry=r,
        )
        self.dropped = Counter(
            "amd_audio_dropped_seconds", "Audio past the maximum window, not buffered", registry=r
        )
        self.message_ends = Counter(
            "amd_message_ends", "Greetings watched to their end", ["transport", "kind"], registry=r
        )
        self.refused = Counter(
            "amd_calls_refused", "Calls refused at the concurrency limit", ["transport"], registry=r
        )
        self.batch_size = Histogram(
            "amd_engine_batch_size", "Clips per engine batch", buckets=_BATCH_BUCKETS, registry=r
        )
        self.queue_wait = Histogram(
            "amd_engine_queue_wait_seconds",
            "Time a clip waited for its batch to start",
            buckets=(0.001, 0.005, 0.01, 0.02, 0.05, 0.1, 0.5, 1.0, 5.0),
            registry=r,
        )
        self.active = Gauge("amd_calls_active", "Open call streams", ["transport"], registry=r)
        self.engine_queue = Gauge(
            "amd_engine_queue_clips", "Clips waiting for an engine batch", registry=r
        )
        self._outcomes = _OutcomeCollector()
        r.register(self._outcomes)

    def watch_active(self, transport: str, count: Callable[[], float]) -> None:
        self.active.labels(transport).set_function(count)

    def watch_outcomes(self, component: str, outcomes: collections.Counter[str]) -> None:
        """Export a component's outcome counter as ``amd_outcomes_total{component,outcome}``."""
        self._outcomes.sources[component] = outcomes

    def watch_engine(self, engine: BatchingEngine) -> None:
        self.engine_queue.set_function(lambda: engine.queued)
        self._outcomes.sources["engine"] = engine.stats.outcomes

    def call_done(self, session: CallSession, transport: str) -> None:
        decision = session.decision
        if decision is None:
            return
        self.decisions.labels(transport, decision.status.value, decision.cause.value).inc()
        self.audio.labels(transport, decision.status.value).observe(decision.decision_audio_s)
        if decision.elapsed_ms is not None:
            self.compute.labels(transport).observe(decision.elapsed_ms / 1000)
        if session.dropped_s:
            self.dropped.inc(session.dropped_s)
        if session.message_end is not None:
            self.message_ends.labels(transport, session.message_end.kind.value).inc()

    def batch_done(self, waits_s: Iterable[float]) -> None:
        waits = list(waits_s)
        self.batch_size.observe(len(waits))
        for wait in waits:
            self.queue_wait.observe(wait)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _OutcomeCollector(Collector):
    def __init__(self) -> None:
        self.sources: dict[str, collections.Counter[str]] = {}

    def collect(self) -> Iterable[Metric]:
        family = CounterMetricFamily(
            "amd_outcomes",
            "How connections and PBX commands ended, per component (publish_failed, "
            "command_timeout, protocol_error, ...)",
            labels=["component", "outcome"],
        )
        for component, outcomes in self.sources.items():
            for outcome, count in sorted(outcomes.items()):
                family.add_metric([component, outcome], count)
        yield family
