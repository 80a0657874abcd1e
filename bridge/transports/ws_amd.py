"""The ``/ws/amd`` endpoint on asyncio: WebSocket frames into one call session each."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import uuid

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from bridge.audio import AudioChunk
from bridge.engine.batcher import BatchingEngine
from bridge.errors import ProtocolError
from bridge.metrics import Metrics
from bridge.protocols.amd_ws import (
    decision_message,
    error_message,
    message_end_message,
    parse_request_path,
    parse_text_message,
)
from bridge.session import CallSession, DecisionPolicy
from bridge.session.call import Step
from bridge.session.recording import settle
from bridge.transports.admission import OVERLOAD, CallRegistry
from bridge.transports.audio_fork import STALL_CHECK_S
from bridge.transports.call_log import log_call
from bridge.transports.deadline import within
from bridge.transports.refusal import close_discarding

log = logging.getLogger(__name__)


class AmdWebSocketHandler:
    """One instance per server; ``handle`` runs once per connection."""

    def __init__(
        self,
        engine: BatchingEngine,
        policy: DecisionPolicy,
        analysis_timeout_s: float,
        message_end_default: bool = False,
    ) -> None:
        self.engine = engine
        self.policy = policy
        self.analysis_timeout_s = analysis_timeout_s
        self.message_end_default = message_end_default
        self.calls = CallRegistry()  # the service's, shared with the other transports
        self.metrics: Metrics | None = None
        self.outcomes: collections.Counter[str] = collections.Counter()
        self.active = 0  # connections open now
        self._closing: set[asyncio.Task[None]] = set()

    async def handle(self, ws: ServerConnection) -> None:
        self.active += 1
        try:
            await self._handle(ws)
        finally:
            self.active -= 1

    async def _handle(self, ws: ServerConnection) -> None:
        try:
            params = parse_request_path(ws.request.path if ws.request else "")
        except ProtocolError as exc:
            self.outcomes["refused"] += 1
            log.warning("/ws/amd connection refused: %s", exc)
            with contextlib.suppress(ConnectionClosed):
                await ws.send(error_message(str(exc)))
            await close_discarding(ws, 1008, "bad stream parameters")
            return
        loop = asyncio.get_running_loop()
        call_id = params.call_id or uuid.uuid4().hex
        session = CallSession(call_id, params.format, self.policy, loop.time())
        watch = self.message_end_default if params.message_end is None else params.message_end

        def stop() -> None:  # the service is stopping: decide now, then say goodbye
            session.abort(loop.time())
            task = asyncio.create_task(self._goodbye(ws, session))
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)

        token = self.calls.admit(stop)
        if token is None:
            self.outcomes["refused_overload"] += 1
            if self.metrics is not None:
                self.metrics.refused.labels("ws_amd").inc()
            with contextlib.suppress(ConnectionClosed):
                await ws.send(decision_message("final", OVERLOAD))
            await close_discarding(ws, 1013, "at capacity")
            return
        try:
            await self._converse(ws, session, watch)
        except ConnectionClosed:
            session.hangup(loop.time())  # HANGUP unless already decided
        finally:
            session.release()
            self.calls.leave(token)
            if session.decision is not None:
                self.outcomes[session.decision.status.value] += 1
            log_call(session, "ws_amd", self.metrics)

    async def _goodbye(self, ws: ServerConnection, session: CallSession) -> None:
        if session.decision is not None:
            with contextlib.suppress(ConnectionClosed):
                await ws.send(decision_message("final", session.decision))
        await ws.close(1001, "service stopping")

    async def _converse(self, ws: ServerConnection, session: CallSession, watch: bool) -> None:
        loop = asyncio.get_running_loop()
        early_sent = end_sent = False
        while True:
            flushed = False
            step: Step
            timeout = STALL_CHECK_S if session.watching else self.policy.no_audio_timeout_s
            try:
                message = await within(ws.recv(), timeout)
            except asyncio.TimeoutError:
                if session.decision is not None and not session.watching:
                    flushed = True  # decided and the client went quiet: finish
                step = session.check_timeouts(loop.time())
            else:
                if isinstance(message, bytes):
                    step = session.feed(AudioChunk(session.format, message), loop.time())
                else:
                    try:
                        parse_text_message(message)
                    except ProtocolError as exc:
                        await ws.send(error_message(str(exc)))
                        continue
                    flushed = True
                    step = session.end_of_stream(loop.time())
            await settle(session, step, self.engine.analyze, self.analysis_timeout_s, loop.time)
            decision = session.decision
            if decision is not None and not early_sent:
                await ws.send(decision_message("early", decision))
                early_sent = True
                if watch:
                    session.watch_message_end(loop.time())
                else:
                    session.release()  # nothing more to listen for
            if session.message_end is not None and not end_sent:
                await ws.send(message_end_message(session.message_end))
                end_sent = True
            if session.audio_s >= self.policy.max_window_s and not session.watching:
                flushed = True  # the maximum window: nothing more will change the answer
            if flushed and decision is not None:
                await ws.send(decision_message("final", decision))
                await ws.close()
                return
