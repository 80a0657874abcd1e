"""A call session driven by a live stream: audio keeps arriving while the engine works.

Transports that must keep reading (AudioSocket has to be answered frame for
frame) hand each input to a ``LiveCall``; analysis runs in a task of its own,
``decided`` resolves once with the call's decision and, for a call that waits
for the end of a machine's greeting, ``message_end`` with that end (None when
the call hung up first or was no machine).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import Awaitable, Callable

from bridge.audio import AudioChunk
from bridge.metrics import Metrics
from bridge.session import AnalysisRequest, CallSession, Decision, DecisionPolicy, MessageEnd
from bridge.session.call import Step
from bridge.session.recording import Analyze, settle
from bridge.transports.admission import CallRegistry

# Publishes a call's decision, or later the end of its greeting, to the PBX
# (channel id, result); returns once done or given up, and never raises.
Publish = Callable[[str, Decision | MessageEnd], Awaitable[object]]
# Sends a result back on the call's own stream; never raises.
Announce = Callable[[Decision | MessageEnd], Awaitable[None]]
# Whether a call asked to wait for the end of the greeting (None: it did not say).
MessageEndRequested = Callable[[str], bool | None]


async def no_publish(call_id: str, result: Decision | MessageEnd) -> None:
    """For a service with no PBX link: the decision goes back on the stream only."""


def not_said(call_id: str) -> bool | None:
    return None


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
        self._analysis: asyncio.Task[Decision | MessageEnd | None] | None = None
        loop = asyncio.get_running_loop()
        self.decided: asyncio.Future[Decision] = loop.create_future()
        self.message_end: asyncio.Future[MessageEnd | None] = loop.create_future()

    def feed(self, chunk: AudioChunk) -> None:
        self._step(self.session.feed(chunk, self._clock()))

    def end_of_stream(self) -> None:
        self._step(self.session.end_of_stream(self._clock()))

    def hangup(self) -> None:
        self._step(self.session.hangup(self._clock()))

    def check_timeouts(self) -> None:
        self._step(self.session.check_timeouts(self._clock()))

    def watch_message_end(self) -> bool:
        """After the decision: wait for the greeting's end. False when there is
        nothing to wait for (not a MACHINE decided by the engine, tones off)."""
        self._step(self.session.watch_message_end(self._clock()))
        return self.session.watching or self.session.message_end is not None

    def release(self) -> None:
        """The transport is done with the call: stop listening for tones."""
        self.session.release()
        self._resolve()

    def abort(self) -> None:
        """The service is stopping: end the call now (NOTSURE/SHUTDOWN, or TIMEOUT
        for a greeting being watched)."""
        self._step(self.session.abort(self._clock()))

    def fail(self, error: BaseException) -> None:
        """Something outside the engine broke the call: NOTSURE/ERROR."""
        self._step(self.session.on_error(error, self._clock()))

    async def aclose(self) -> None:
        """Stop an analysis still running (the call is over either way)."""
        if self._analysis is not None and not self._analysis.done():
            self._analysis.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._analysis

    def _step(self, step: Step) -> None:
        if isinstance(step, AnalysisRequest):
            self._analysis = asyncio.create_task(self._run(step))
            return
        self._resolve()

    async def _run(self, request: AnalysisRequest) -> Decision | MessageEnd | None:
        decision = await settle(self.session, request, self._analyze, self._timeout_s, self._clock)
        self._resolve()
        return decision

    def _resolve(self) -> None:
        decision = self.session.decision
        if decision is not None and not self.decided.done():
            self.decided.set_result(decision)
        if self.session.watch_over and not self.message_end.done():
            self.message_end.set_result(self.session.message_end)


class StreamHandler:
    """What a transport's handler (one per listener) holds for all its calls: how to
    analyse and publish them, how many are open, and how connections ended."""

    def __init__(
        self,
        analyze: Analyze,
        policy: DecisionPolicy,
        analysis_timeout_s: float,
        publish: Publish | None = None,
        message_end_default: bool = False,
    ) -> None:
        self.analyze = analyze
        self.policy = policy
        self.analysis_timeout_s = analysis_timeout_s
        self.publish = publish or no_publish
        self.message_end_default = message_end_default
        self.active = 0
        self.outcomes: collections.Counter[str] = collections.Counter()
        # Shared by the service's handlers; on its own, a handler admits every call.
        self.calls = CallRegistry()
        self.metrics: Metrics | None = None

    def refused(self, transport: str) -> None:
        self.outcomes["refused_overload"] += 1
        if self.metrics is not None:
            self.metrics.refused.labels(transport).inc()

    def live_call(self, session: CallSession, clock: Callable[[], float]) -> LiveCall:
        return LiveCall(session, self.analyze, self.analysis_timeout_s, clock)

    async def conclude(
        self,
        call: LiveCall,
        publish_as: str | None,
        watch: bool | None,
        announce: Announce | None = None,
    ) -> None:
        """Publish the call's decision (then ``announce`` it on the stream); when the
        call asked (``watch``, or the service's default when it did not say) and it
        is a machine, wait for the greeting's end and publish and announce that too.
        Returns when the call may be released."""
        decision = await call.decided
        watching = (self.message_end_default if watch is None else watch) and (
            call.watch_message_end()  # before publishing: no audio goes unheard
        )
        if publish_as is not None:
            await self.publish(publish_as, decision)
        if announce is not None:
            await announce(decision)
        self.outcomes[decision.status.value] += 1
        if not watching:
            return
        end = await call.message_end
        if end is None:
            self.outcomes["message_end_hangup"] += 1
            return
        self.outcomes["message_end_" + end.kind.value] += 1
        if publish_as is not None:
            await self.publish(publish_as, end)
        if announce is not None:
            await announce(end)
