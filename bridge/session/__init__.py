"""The call session: a plain object fed audio chunks and a clock, no sockets inside."""

from bridge.session.call import AnalysisRequest, CallSession, DecisionPolicy, SessionState
from bridge.session.decision import (
    AnalysisResult,
    Cause,
    Decision,
    EarlierHearing,
    Status,
    TimingFeatures,
)
from bridge.session.message_end import MessageEnd, MessageEndKind, MessageEndPolicy

__all__ = [
    "AnalysisRequest",
    "AnalysisResult",
    "CallSession",
    "Cause",
    "Decision",
    "DecisionPolicy",
    "EarlierHearing",
    "MessageEnd",
    "MessageEndKind",
    "MessageEndPolicy",
    "SessionState",
    "Status",
    "TimingFeatures",
]
