"""The ``/ws/audio-fork`` endpoint: one WebSocket from FreeSWITCH's mod_audio_fork per call.

Per connection: take the stream's rate, mix and channel uuid from the URL and
the metadata frame, feed the callee's audio to a call session (analysis runs
beside the reading, so the module's buffer never backs up), and once it
decides hand the decision to the PBX link (which sets the channel variables),
then send it as a ``json`` frame (a ``mod_audio_fork::json`` event in
FreeSWITCH) and close. A connection that closes first is a hang-up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from bridge.audio import AudioChunk
from bridge.errors import ProtocolError
from bridge.protocols import audio_fork as wire
from bridge.session import CallSession, Decision, MessageEnd
from bridge.transports.admission import OVERLOAD
from bridge.transports.call_log import log_call
from bridge.transports.deadline import within
from bridge.transports.live_call import LiveCall, StreamHandler
from bridge.transports.refusal import close_discarding

log = logging.getLogger(__name__)

FIRST_MESSAGE_TIMEOUT_S = 5.0
CLOSE_TIMEOUT_S = 2.0
# While a call waits for a greeting's end, how often a quiet stream is checked.
STALL_CHECK_S = 0.1


class AudioForkHandler(StreamHandler):
    """One instance per HTTP server; ``handle`` runs once per fork connection."""

    async def handle(self, ws: ServerConnection) -> None:
        self.active += 1
        try:
            await self._handle(ws)
        except ConnectionClosed as exc:  # closed before the call started: nothing to decide
            if (reason := _too_large(exc)) is not None:
                self.outcomes["protocol_error"] += 1
                log.warning("audio fork connection dropped: %s", reason)
        except Exception:
            self.outcomes["internal_error"] += 1
            log.exception("audio fork connection failed")
        finally:
            self.active -= 1

    async def _handle(self, ws: ServerConnection) -> None:
        try:
            params = wire.params_from_path(ws.request.path if ws.request else "")
            first: str | bytes | None = await asyncio.wait_for(ws.recv(), FIRST_MESSAGE_TIMEOUT_S)
            if isinstance(first, str):
                params = wire.params_with_metadata(params, first)
                first = None
        except (ProtocolError, asyncio.TimeoutError) as exc:
            reason = str(exc) if isinstance(exc, ProtocolError) else "no data in time"
            self.outcomes["refused"] += 1
            log.warning("audio fork connection refused: %s", reason)
            with contextlib.suppress(ConnectionClosed):
                await ws.send(wire.error_message(reason))
            await close_discarding(ws, 1008, reason)
            return
        if params.uuid is None:
            self.outcomes["no_uuid"] += 1
            log.warning("audio fork call without a channel uuid: its variables cannot be set")
        loop = asyncio.get_running_loop()
        call_id = params.uuid or uuid.uuid4().hex
        session = CallSession(call_id, params.format, self.policy, loop.time())
        call = self.live_call(session, loop.time)
        token = self.calls.admit(call.abort)
        if token is None:
            await self._refuse(ws, params)
            return
        finisher = asyncio.create_task(self._finish(ws, call, params))
        try:
            await self._read(ws, call, params, first)
        finally:
            call.hangup()  # no-op once decided; a fork that ends undecided is a hang-up
            await finisher
            await call.aclose()
            self.calls.leave(token)

    async def _refuse(self, ws: ServerConnection, params: wire.ForkParams) -> None:
        """At the concurrency limit: NOTSURE/OVERLOAD on the channel and the fork, then
        close with 1013 (try again later)."""
        self.refused("audio_fork")
        log.warning("audio fork %s refused: %d calls open", params.uuid, self.calls.active)
        if params.uuid is not None:
            await self.publish(params.uuid, OVERLOAD)
        with contextlib.suppress(ConnectionClosed):
            await ws.send(wire.result_message(OVERLOAD, params.uuid))
        await close_discarding(ws, 1013, "at capacity")

    async def _read(
        self, ws: ServerConnection, call: LiveCall, params: wire.ForkParams, first: bytes | None
    ) -> None:
        fmt = params.format
        left = wire.LeftChannel(params.channels)
        message: str | bytes | None = first
        while True:
            if isinstance(message, bytes):
                if message:
                    call.feed(AudioChunk(fmt, left.feed(message)))
                else:  # graceful-shutdown: no more audio is coming
                    call.end_of_stream()
            elif message is not None:
                self.outcomes["text_ignored"] += 1  # uuid_audio_fork ... send_text
            watching = call.session.watching
            timeout = STALL_CHECK_S if watching else self.policy.no_audio_timeout_s
            try:
                message = await within(ws.recv(), timeout)
            except asyncio.TimeoutError:
                call.check_timeouts()
                message = None
            except ConnectionClosed as exc:
                if (reason := _too_large(exc)) is not None:
                    self.outcomes["protocol_error"] += 1
                    log.warning("call %s: %s", call.session.call_id, reason)
                    call.fail(ProtocolError(f"frame too large: {reason}"))
                return

    async def _finish(self, ws: ServerConnection, call: LiveCall, params: wire.ForkParams) -> None:
        async def announce(result: Decision | MessageEnd) -> None:
            with contextlib.suppress(ConnectionClosed):
                await ws.send(wire.result_message(result, params.uuid))

        try:
            await self.conclude(call, params.uuid, params.message_end, announce)
        finally:
            call.release()
        log_call(call.session, "audio_fork", self.metrics)
        try:
            await asyncio.wait_for(ws.close(), CLOSE_TIMEOUT_S)
        except asyncio.TimeoutError:  # the peer is gone without a word (half-open)
            self.outcomes["close_timeout"] += 1
            ws.transport.abort()


def _too_large(exc: ConnectionClosed) -> str | None:
    """Why we closed the connection, if it was for a frame past the size limit (1009)."""
    return exc.sent.reason if exc.sent is not None and exc.sent.code == 1009 else None
