"""One log line per call, with the decision and its timings (JSON fields in ``extra``)."""

from __future__ import annotations

import logging

from bridge.metrics import Metrics
from bridge.session import CallSession, Decision

log = logging.getLogger("bridge.calls")


def log_call(session: CallSession, transport: str, metrics: Metrics | None = None) -> None:
    d: Decision | None = session.decision
    if d is None:
        return
    if metrics is not None:
        metrics.call_done(session, transport)
    log.info(
        "call %s (%s): %s %s after %.2f s of audio",
        session.call_id,
        transport,
        d.status.value,
        d.amd_cause,
        d.decision_audio_s,
        extra={
            "call_id": session.call_id,
            "transport": transport,
            **d.summary(),
            "compute_ms": d.compute_ms,
            "dropped_s": session.dropped_s,
            **(session.message_end.summary() if session.message_end is not None else {}),
        },
    )
