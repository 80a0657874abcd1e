"""The AudioSocket listener: one TCP connection per call from Asterisk's ``AudioSocket()``.

Per connection: read the call id, then audio; answer the audio with as much
silence, 100 ms at a time (one write per 20 ms frame was the media path's largest
cost; the call's media keeps flowing towards the callee either way); feed the call
session; once
it decides, hand the decision to the PBX link (which sets the channel
variables) and only then send a hangup message, so ``AudioSocket()`` returns
and the dialplan reads ``AMDSTATUS``. A connection that closes first is a
hang-up. Whatever one connection does, the others go on.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import socket
from collections.abc import Callable
from dataclasses import dataclass

from bridge.audio import AudioChunk
from bridge.audio.chunk import SLIN_8K
from bridge.errors import ProtocolError
from bridge.protocols import audiosocket as wire
from bridge.session import CallSession, DecisionPolicy
from bridge.session.recording import Analyze
from bridge.transports.admission import OVERLOAD
from bridge.transports.call_log import log_call
from bridge.transports.live_call import (
    LiveCall,
    MessageEndRequested,
    Publish,
    StreamHandler,
    not_said,
)

log = logging.getLogger(__name__)

READ_BYTES = 8192
# Largest message accepted from Asterisk: 100 ms of 48 kHz slin is 9600 bytes;
# frames are normally 20 ms. Larger claims end the connection as a protocol error.
MAX_FRAME_BYTES = 16384
# Silence not yet taken by Asterisk past which we stop adding more.
MAX_UNSENT_BYTES = 64 * 1024
# Once the call's rate is known, the reader wakes for this much audio at a time (three
# 20 ms frames): waking per frame was the largest part of the media path's cost left.
# An analysis window's last frame is seen up to 40 ms later; when frames stop, the
# quiet watch takes what is waiting.
READ_BATCH_S = 0.06
# The audio received is answered with silence once this much of it is owed.
SILENCE_BATCH_S = 0.1
# How often a quiet stream is checked (its silence counts towards the call's
# windows; a beep's end shows only in what follows it) and kept alive: Asterisk's
# AudioSocket() ends after 2 s with nothing from either side, and a quiet channel
# (a Local channel in Wait(), a trunk with silence suppression) sends nothing.
STALL_CHECK_S = 0.1


@dataclass(frozen=True)
class AudioSocketLimits:
    first_message_timeout_s: float = 5.0  # connection to call id
    release_timeout_s: float = 2.0  # writing the hangup message, then Asterisk closing


class AudioSocketHandler(StreamHandler):
    """One instance per listener; ``handle`` runs once per connection."""

    def __init__(
        self,
        analyze: Analyze,
        policy: DecisionPolicy,
        analysis_timeout_s: float,
        publish: Publish | None = None,
        limits: AudioSocketLimits = AudioSocketLimits(),
        message_end_default: bool = False,
        message_end_requested: MessageEndRequested = not_said,
    ) -> None:
        super().__init__(analyze, policy, analysis_timeout_s, publish, message_end_default)
        self.limits = limits
        # Asterisk cannot say it on the AudioSocket; the dialplan says it in its
        # AMDStart event, which the AMI link keeps.
        self.message_end_requested = message_end_requested
        self._quiet_watch = _QuietWatch(STALL_CHECK_S)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.active += 1
        try:
            await self._handle(reader, writer)
        except Exception:
            self.outcomes["internal_error"] += 1
            log.exception("AudioSocket connection failed")
        finally:
            self.active -= 1
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        parser = wire.Parser(MAX_FRAME_BYTES)
        try:
            call_id, early, broken = await asyncio.wait_for(
                _read_call_id(reader, parser), self.limits.first_message_timeout_s
            )
        except (asyncio.TimeoutError, ProtocolError, ConnectionError) as exc:
            self.outcomes["no_call_id"] += 1
            log.warning("AudioSocket connection from %s dropped: %s", _peer(writer), _why(exc))
            return
        loop = asyncio.get_running_loop()
        connection = _Connection(call_id, writer, self, loop.time)
        token = self.calls.admit(connection.abort)
        if token is None:
            await self._refuse(call_id, writer)
            return
        self._quiet_watch.add(connection)
        try:
            await connection.run(reader, parser, early, broken)
        finally:
            self._quiet_watch.discard(connection)
            await connection.aclose()
            self.calls.leave(token)

    async def _refuse(self, call_id: str, writer: asyncio.StreamWriter) -> None:
        """At the concurrency limit: NOTSURE/OVERLOAD on the channel, and the call goes on."""
        self.refused("audiosocket")
        log.warning("call %s refused: %d calls open (AMD_MAX_CALLS)", call_id, self.calls.active)
        await self.publish(call_id, OVERLOAD)
        writer.write(wire.encode_hangup())
        with contextlib.suppress(OSError, asyncio.TimeoutError):
            await asyncio.wait_for(writer.drain(), self.limits.release_timeout_s)


class _Connection:
    """One call's stream: reading, answering with silence, finishing."""

    def __init__(
        self,
        call_id: str,
        writer: asyncio.StreamWriter,
        handler: AudioSocketHandler,
        clock: Callable[[], float],
    ) -> None:
        self.call_id = call_id
        self.writer = writer
        self.handler = handler
        self.clock = clock
        self.call: LiveCall | None = None
        self.started = clock()
        self.last_read_at = self.started
        self.released = False
        self._silence_owed = 0  # bytes of audio received and not yet answered
        self._wake_bytes = 1  # the socket's SO_RCVLOWAT
        self._peer_closed = asyncio.Event()
        self._finisher: asyncio.Task[None] | None = None

    def _live(self, message: wire.Audio | None) -> LiveCall:
        """The call, created at its first audio frame (which fixes the rate)."""
        if self.call is None:
            fmt = message.format if message is not None else SLIN_8K
            session = CallSession(
                self.call_id, fmt, self.handler.policy, self.started, fill_stalls=True
            )
            self.call = self.handler.live_call(session, self.clock)
            self._finisher = asyncio.create_task(self._finish(self.call))
            if message is not None:
                self._batch_reads()
        return self.call

    async def run(
        self,
        reader: asyncio.StreamReader,
        parser: wire.Parser,
        early: list[wire.Message],
        broken: wire.AudioSocketError | None,
    ) -> None:
        pending = early
        while True:
            for message in wire.joined_audio(pending):
                if not self._on_message(message):
                    return
            if broken is not None:
                self._protocol_error(broken)
                return
            try:
                data = await reader.read(READ_BYTES)  # quiet spells: _QuietWatch
            except ConnectionError:
                data = b""
            self.last_read_at = self.clock()
            if self._wake_bytes == 1:  # lowered by the quiet watch
                self._batch_reads()
            if not data:
                self._live(None).hangup()  # Asterisk closes the socket when the channel hangs up
                return
            if self.released:
                pending = []  # audio still in flight after our hangup message: discard
                continue
            try:
                pending = parser.feed(data)
            except wire.AudioSocketError as exc:
                pending, broken = exc.messages, exc  # what came before the bad bytes counts

    def on_quiet(self) -> None:
        """Nothing came from Asterisk for a while: keep AudioSocket() alive, and let the
        session count the time (its silence, or the no-audio timeout)."""
        self._wake_every(1)  # frames held back by the batching come now
        self._keep_alive()
        no_audio_s = self.handler.policy.no_audio_timeout_s
        if self.call is not None or self.clock() - self.started >= no_audio_s:
            self._live(None).check_timeouts()  # no call before its first frame

    def _batch_reads(self) -> None:
        """Once the call's rate is known: wake the reader for ``READ_BATCH_S`` of audio."""
        if self.call is not None:
            self._wake_every(round(READ_BATCH_S * self.call.session.format.rate) * 2)

    def _wake_every(self, n_bytes: int) -> None:
        """Have the kernel wake the reader only once ``n_bytes`` are waiting (or the
        peer closed): a few frames per read instead of one. Where the option is
        missing, every frame wakes it, as before. A connection the peer has just closed
        has no socket left to set it on (uvloop's stand-in raises ValueError): its end
        is read as usual."""
        if n_bytes == self._wake_bytes:
            return
        self._wake_bytes = n_bytes
        sock = self.writer.get_extra_info("socket")
        with contextlib.suppress(OSError, AttributeError, ValueError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVLOWAT, n_bytes)

    def _protocol_error(self, exc: ProtocolError) -> None:
        self.handler.outcomes["protocol_error"] += 1
        log.warning("call %s: %s", self.call_id, exc)
        self._live(None).fail(exc)

    def _on_message(self, message: wire.Message) -> bool:
        """Act on one message; False when the stream is over."""
        if isinstance(message, wire.Audio):
            call = self._live(message)
            if message.format != call.session.format:
                self._protocol_error(
                    ProtocolError(f"audio rate changed mid-call to {message.format.rate} Hz")
                )
                return False
            self._answer_with_silence(message)
            call.feed(AudioChunk(message.format, message.data))
            return True
        if isinstance(message, wire.Hangup):
            self._live(None).hangup()
            return False
        if isinstance(message, wire.PeerError):
            self.handler.outcomes["peer_error"] += 1
            log.warning("call %s: Asterisk reported error %s", self.call_id, message.code.hex())
            self._live(None).fail(ProtocolError("Asterisk reported an AudioSocket error"))
            return False
        if isinstance(message, wire.CallId):
            log.debug("call %s: repeated call id ignored", self.call_id)
        return True  # DTMF is not used for detection

    def _keep_alive(self) -> None:
        """Asterisk ends AudioSocket() after 2 s with nothing from either side; while
        the far end sends nothing (a quiet channel, a voicemail recording), we send
        20 ms of silence (at 8 kHz until the first frame tells the call's rate)."""
        if self.released or self.writer.is_closing():
            return
        rate = self.call.session.format.rate if self.call is not None else SLIN_8K.rate
        self.writer.write(_silence(rate, 2 * rate // 50))

    def _answer_with_silence(self, message: wire.Audio) -> None:
        if self.released or self.writer.is_closing():
            return
        rate = message.format.rate
        self._silence_owed += len(message.data)
        if self._silence_owed < SILENCE_BATCH_S * rate * 2:
            return
        owed, self._silence_owed = self._silence_owed, 0
        transport = self.writer.transport
        if transport.get_write_buffer_size() > MAX_UNSENT_BYTES:
            self.handler.outcomes["silence_skipped"] += 1  # Asterisk is not reading
            return
        self.writer.write(_silence(rate, owed))

    async def _finish(self, call: LiveCall) -> None:
        await call.decided  # the AMDStart event that may ask to wait has come by now
        watch = self.handler.message_end_requested(self.call_id)
        try:
            await self.handler.conclude(call, self.call_id, watch)
        finally:
            call.release()
        log_call(call.session, "audiosocket", self.handler.metrics)
        if self.writer.is_closing():
            return
        self.released = True
        self.writer.write(wire.encode_hangup())
        # Closing with Asterisk's audio unread would make the kernel reset the
        # connection, and a reset can discard the hangup message before Asterisk
        # reads it. So: send, half-close, and read until Asterisk closes its side.
        with contextlib.suppress(asyncio.TimeoutError, OSError):
            await asyncio.wait_for(self._hand_back(), self.handler.limits.release_timeout_s)
        self.writer.close()  # wakes the reader if Asterisk never closed

    async def _hand_back(self) -> None:
        await self.writer.drain()
        if self.writer.can_write_eof():
            self.writer.write_eof()
        await self._peer_closed.wait()

    def abort(self) -> None:
        """The service is stopping: end the call now."""
        self._live(None).abort()

    async def aclose(self) -> None:
        """After ``run``: the reading is over (Asterisk closed, or the call ended)."""
        self._peer_closed.set()
        call = self._live(None)
        call.hangup()  # no-op once decided; a connection that ends undecided is a hang-up
        if self._finisher is not None:
            await self._finisher
        await call.aclose()


async def _read_call_id(
    reader: asyncio.StreamReader, parser: wire.Parser
) -> tuple[str, list[wire.Message], wire.AudioSocketError | None]:
    """Read until the first message; it must be the call id. Returns the id, any
    messages that arrived with it, and the error of bad bytes right behind them."""
    while True:
        data = await reader.read(READ_BYTES)
        if not data:
            raise ConnectionError("closed before sending the call id")
        try:
            messages = parser.feed(data)
        except wire.AudioSocketError as exc:
            if not exc.messages or not isinstance(exc.messages[0], wire.CallId):
                raise
            # A call id, then bad bytes: the call exists and ends as a protocol error.
            return str(exc.messages[0].id), exc.messages[1:], exc
        if messages:
            first, rest = messages[0], messages[1:]
            if not isinstance(first, wire.CallId):
                raise ProtocolError(f"first message must be the call id, not {first!r}"[:120])
            return str(first.id), rest, None


class _QuietWatch:
    """One ticker for all of a listener's connections: every ``period_s`` it tells
    those that read nothing for that long (``on_quiet``). A timer around every read
    cost more than the read (about 4 us each, 50 reads a second per call)."""

    def __init__(self, period_s: float) -> None:
        self.period_s = period_s
        self._connections: set[_Connection] = set()
        self._ticker: asyncio.Task[None] | None = None

    def add(self, connection: _Connection) -> None:
        self._connections.add(connection)
        if self._ticker is None:
            self._ticker = asyncio.create_task(self._tick())

    def discard(self, connection: _Connection) -> None:
        self._connections.discard(connection)
        if not self._connections and self._ticker is not None:
            self._ticker.cancel()  # nothing to watch: no timer left behind
            self._ticker = None

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(self.period_s)
            for connection in list(self._connections):
                if connection.clock() - connection.last_read_at >= self.period_s:
                    try:
                        connection.on_quiet()
                    except Exception:  # one connection's fault stays its own
                        log.exception("call %s: quiet check failed", connection.call_id)


@functools.lru_cache(maxsize=64)
def _silence(rate: int, length: int) -> bytes:
    """An audio message of ``length`` bytes of silence (frames come in a few sizes)."""
    return wire.encode_audio(rate, bytes(length))


def _peer(writer: asyncio.StreamWriter) -> str:
    peer = writer.get_extra_info("peername")
    return f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else "?"


def _why(exc: BaseException) -> str:
    if isinstance(exc, asyncio.TimeoutError):
        return "no call id in time"
    return str(exc) or type(exc).__name__
