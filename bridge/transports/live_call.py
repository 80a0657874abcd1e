"""A call session driven by a live stream: audio keeps arriving while the engine works.

Transports that must keep reading (AudioSocket has to be answered frame for
frame) hand each input to a ``LiveCall``; analysis runs in a task of its own,
and ``decided`` resolves once with the call's decision.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import Awaitable, Callable

from bridge.audio import AudioChunk
from bridge.session import AnalysisRequest, CallSession, Decision, DecisionPolicy
from bridge.session.recording import Analyze, settle

# Publishes a call's decision to the PBX (channel id, decision); returns once done
# or given up, and never raises.
Publish = Callable[[str, Decision], Awaitable[object]]


async def no_publish(call_id: str, decision: Decision) -> None:
    """For a service with no PBX link: the decision goes back on the stream only."""


class LiveCall:
    def __init__(
        self,
        session: CallSession,
        analyze: Analyze,
        analysis_timeout_s: float,
        clock: Callable[[], float],
    ) -> None:
        self.session = session
        self._analyze = analyze
        self._timeout_s = analysis_timeout_s
        self._clock = clock
        self._analysis: asyncio.Task[Decision | None] | None = None
        self.decided: asyncio.Future[Decision] = asyncio.get_running_loop().create_future()

    def feed(self, chunk: AudioChunk) -> None:
        self._step(self.session.feed(chunk, self._clock()))

    def end_of_stream(self) -> None:
        self._step(self.session.end_of_stream(self._clock()))

    def hangup(self) -> None:
        self._step(self.session.hangup(self._clock()))

    def check_timeouts(self) -> None:
        self._step(self.session.check_timeouts(self._clock()))

    def fail(self, error: BaseException) -> None:
        """Something outside the engine broke the call: NOTSURE/ERROR."""
        self._step(self.session.on_error(error, self._clock()))

    async def aclose(self) -> None:
        """Stop an analysis still running (the call is over either way)."""
        if self._analysis is not None and not self._analysis.done():
            self._analysis.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._analysis

    def _step(self, step: AnalysisRequest | Decision | None) -> None:
        if isinstance(step, AnalysisRequest):
            self._analysis = asyncio.create_task(self._run(step))
            return
        self._resolve()

    async def _run(self, request: AnalysisRequest) -> Decision | None:
        decision = await settle(self.session, request, self._analyze, self._timeout_s, self._clock)
        self._resolve()
        return decision

    def _resolve(self) -> None:
        decision = self.session.decision
        if decision is not None and not self.decided.done():
            self.decided.set_result(decision)


class StreamHandler:
    """What a transport's handler (one per listener) holds for all its calls: how to
    analyse and publish them, how many are open, and how connections ended."""

    def __init__(
        self,
        analyze: Analyze,
        policy: DecisionPolicy,
        analysis_timeout_s: float,
        publish: Publish | None = None,
    ) -> None:
        self.analyze = analyze
        self.policy = policy
        self.analysis_timeout_s = analysis_timeout_s
        self.publish = publish or no_publish
        self.active = 0
        self.outcomes: collections.Counter[str] = collections.Counter()

    def live_call(self, session: CallSession, clock: Callable[[], float]) -> LiveCall:
        return LiveCall(session, self.analyze, self.analysis_timeout_s, clock)
