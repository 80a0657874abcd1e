"""The call session state machine.

A ``CallSession`` is driven by four inputs (audio, end of stream, hang-up, the
engine's result) and a clock passed in by the caller; it answers with an
``AnalysisRequest`` to run, a final ``Decision``, a ``MessageEnd``, or nothing.
It never blocks and never touches a socket, so transports, the CLI and tests
drive it alike::

    LISTENING --window closes--> ANALYZING --confident--> DECIDED
        ^                            |                      |
        +------not yet, ask again----+                      +-- watch_message_end():
                          (up to the maximum window, then NOTSURE)   BEEP/SILENCE/TIMEOUT

Beside the engine, every frame goes through a ``ToneTracker``: a fax or SIT
tone, or a beep after the callee's first sounds (a voicemail starting to record),
decides MACHINE at once (cause FAX, SIT or BEEP), whatever the engine is doing;
after a decision it keeps listening while the transport holds the call, so a
greeting's end can be watched for with everything heard so far.
"""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass, replace

import numpy as np

from bridge.audio import AudioChunk, AudioFormat, CallAudio
from bridge.audio.codecs import Float32Array
from bridge.audio.resampler import TARGET_RATE
from bridge.errors import ConfigError
from bridge.session.decision import AnalysisResult, Cause, Decision, EarlierHearing, Status
from bridge.session.message_end import MessageEnd, MessageEndKind, MessageEndPolicy, message_end
from bridge.tones import ToneEvent, ToneKind, ToneTracker
from bridge.tones.spectrum import RELAXED_BATCH_FRAMES
from bridge.tones.tracker import SIT_WAIT_S, could_start_sit

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DecisionPolicy:
    """When to analyse and when to accept an answer (see ``Settings``)."""

    window_s: float = 2.0  # first analysis after this much callee audio
    step_s: float = 1.0  # then again after each further step ...
    max_window_s: float = 7.0  # ... up to this, where NOTSURE is the answer
    threshold: float = 0.8  # confidence needed for HUMAN or MACHINE
    # ... and at the last ask (the maximum window, or the end of the stream), after
    # which the answer would be NOTSURE; the lower of the two applies there
    final_threshold: float = 0.7
    # no speech in this much callee audio: NOTSURE/SILENCE at the first ask at or after it
    # (dead air; Asterisk's AMD() has initialSilence, 2.5 s), not only at the last ask
    initial_silence_s: float = 4.0
    no_audio_timeout_s: float = 5.0  # wall seconds without audio before analysing what came
    tones: bool = True  # fax and SIT tones decide MACHINE; beeps can end a greeting
    beep_decides: bool = True  # with tones: a beep after the first sounds decides MACHINE
    message_end: MessageEndPolicy = MessageEndPolicy()

    def __post_init__(self) -> None:
        if not 0.2 <= self.window_s <= self.max_window_s:
            raise ConfigError("window must be at least 0.2 s and at most the maximum window")
        if self.max_window_s > 30.0:
            raise ConfigError("maximum window must be at most 30 s (Whisper's input length)")
        if self.step_s <= 0:
            raise ConfigError("step must be positive")
        if not 0.5 <= self.threshold < 1.0:
            raise ConfigError("threshold must be in [0.5, 1.0)")
        if not 0.5 <= self.final_threshold < 1.0:
            raise ConfigError("final threshold must be in [0.5, 1.0)")
        if self.no_audio_timeout_s <= 0:
            raise ConfigError("no-audio timeout must be positive")
        if self.initial_silence_s <= 0:
            raise ConfigError("initial silence must be positive")

    def accepts(self, proba_human: float, has_speech: bool, final: bool = False) -> bool:
        """Whether an answer is good enough to decide HUMAN or MACHINE on (``final``: at
        the last ask, where ``final_threshold`` is enough)."""
        needed = min(self.final_threshold, self.threshold) if final else self.threshold
        return has_speech and max(proba_human, 1.0 - proba_human) >= needed

    def ends_in_silence(self, audio_s: float, has_speech: bool, final: bool = False) -> bool:
        """Whether an ask about ``audio_s`` of callee audio that found no speech ends the
        call as NOTSURE/SILENCE: at the last ask, or at or past ``initial_silence_s``."""
        return not has_speech and (final or audio_s >= self.initial_silence_s)


class SessionState(enum.Enum):
    LISTENING = "listening"
    ANALYZING = "analyzing"
    DECIDED = "decided"


@dataclass(frozen=True)
class AnalysisRequest:
    """A clip the engine should analyse for this call."""

    call_id: str
    clip: Float32Array  # 16 kHz mono float32, the callee audio from the start
    audio_s: float  # callee audio time this clip covers
    final: bool  # the last chance: below the threshold means NOTSURE
    heard_before: EarlierHearing | None = None  # this call's previous analysis, if any


# What an input to the session may produce.
Step = AnalysisRequest | Decision | MessageEnd | None

# Audio missing for longer than this is silence (a PBX that sends nothing while a
# voicemail records, or on a quiet channel): for a call that waits for a greeting's
# end, and on streams whose transport says so (``fill_stalls``) all along. Shorter
# gaps are jitter: the audio comes late, and filling them would shift what follows.
STALL_S = 0.5

# Until a call is decided, its audio reaches the tone detector and the resampler in
# pieces of this length rather than frame by frame (fax and SIT tones are reported up
# to this much later; an analysis takes what has gathered first).
GATHER_S = 0.1

# Audio shorter than this cannot hold a word; an end of stream before it is NOAUDIO.
MIN_ANALYSIS_S = 0.1


class CallSession:
    """One call's audio buffer, clock and decision rules."""

    def __init__(
        self,
        call_id: str,
        fmt: AudioFormat,
        policy: DecisionPolicy,
        now: float,
        fill_stalls: bool = False,
    ) -> None:
        """``fill_stalls``: once audio has started, wall-clock time without any counts as
        silence, so the call is decided on its own clock (for PBXs that send no frames
        while a channel is quiet: Asterisk's AudioSocket() on a Local channel's Wait(),
        trunks with silence suppression or DTX)."""
        self.call_id = call_id
        self.fill_stalls = fill_stalls
        self.format = fmt
        self.policy = policy
        self.state = SessionState.LISTENING
        self.decision: Decision | None = None
        self.dropped_s = 0.0  # audio past the maximum window, not buffered
        self._audio = CallAudio(fmt)
        # Bounded buffer: the maximum window at 16 kHz plus the resampler's delay.
        self._capacity = int((policy.max_window_s + 0.25) * TARGET_RATE)
        self._buffer = np.zeros(self._capacity, dtype=np.float32)
        self._filled = 0
        self._next_checkpoint = policy.window_s
        self._last_audio_at = now
        self._request_at: float | None = None
        self._request_final = False
        self._requested_audio_s = 0.0
        self._heard: EarlierHearing | None = None
        self._ended = False
        # Until a greeting's end is awaited, tones are reported up to 100 ms late
        # (fax and SIT are not in a hurry) for less CPU.
        self.tones = ToneTracker(fmt.rate, RELAXED_BATCH_FRAMES) if policy.tones else None
        self.watching = False  # waiting for the end of a machine's greeting
        self.message_end: MessageEnd | None = None
        self.watch_over = False  # the watch ended (with ``message_end``, or None on hang-up)
        self._stall_filled_at = now
        # Until the decision: input-rate samples not yet given to the tone detector and
        # the resampler (``_hear``), at most GATHER_S of them.
        self._untoned: list[Float32Array] = []
        self._pending_beep: ToneEvent | None = None  # a beep that may be SIT's start
        self._untoned_samples = 0
        self._unresampled: list[Float32Array] = []
        self._gather_samples = round(GATHER_S * fmt.rate)

    @property
    def audio_s(self) -> float:
        """Callee audio received so far (input clock, excludes dropped audio)."""
        return min(self._audio.input_seconds, self.policy.max_window_s)

    # --- inputs -----------------------------------------------------------

    def feed(self, chunk: AudioChunk, now: float) -> Step:
        """Add callee audio; returns a request when an analysis window closes, a
        decision when a fax or SIT tone settles the call, or the greeting's end."""
        if self._ended or (self.state is SessionState.DECIDED and self.tones is None):
            return None
        self._last_audio_at = now
        before = self._audio.input_seconds
        samples = self._audio.decode(chunk.data, chunk.format)
        return self._hear(samples, before, chunk.duration, now)

    def _hear(self, samples: Float32Array, before: float, duration: float, now: float) -> Step:
        """Samples at the input rate, received (or stood for by a stall) from ``before``.

        Until the call is decided, samples gather for ``GATHER_S`` before the tone
        detector and the resampler see them (the per-frame work was most of the media
        path's cost); an analysis takes whatever has gathered first. While a greeting's
        end is watched for, every frame goes to the tone detector at once."""
        if self.state is SessionState.DECIDED:
            if self.tones is not None:
                self._tones_catch_up()  # what gathered before the decision comes first
                self.tones.feed(samples)
            return self._check_message_end()
        if before >= self.policy.max_window_s:
            self.dropped_s += duration
        else:
            self._unresampled.append(samples)
        if self.tones is not None:
            self._untoned.append(samples)
            self._untoned_samples += len(samples)
            if self._untoned_samples >= self._gather_samples:
                tone = self._tones_catch_up()
                if tone is not None:
                    return self._decide_on_tone(tone)
        return self._maybe_request(now)

    def _tones_catch_up(self, end: bool = False) -> ToneEvent | None:
        """Give the tone detector what gathered (and, at the ``end`` of the stream, have
        it analyse what it holds back); the tone it found that decides the call, if any:
        fax or SIT, or (``beep_decides``) a beep after the callee's first sounds."""
        if self.tones is None:
            return None
        found = self.tones.feed(_joined(self._untoned)) if self._untoned else []
        self._untoned.clear()
        self._untoned_samples = 0
        if end:
            found += self.tones.end()
        for tone in found:
            if tone.kind in (ToneKind.FAX, ToneKind.SIT):
                return tone
            if self._beep_decides(tone):
                if not could_start_sit(tone):
                    return tone
                self._pending_beep = self._pending_beep or tone  # unless SIT follows
        pending = self._pending_beep
        if pending is not None and (end or self.tones.audio_s >= pending.end_s + SIT_WAIT_S):
            self._pending_beep = None
            return replace(pending, detected_s=self.tones.audio_s)
        return None

    def _beep_decides(self, tone: ToneEvent) -> bool:
        first_sound = self.tones.first_speech_s if self.tones is not None else None
        return (
            tone.kind is ToneKind.BEEP
            and self.policy.beep_decides
            and first_sound is not None
            and first_sound < tone.start_s
        )

    def _resample_gathered(self) -> None:
        if self._unresampled:
            self._append(self._audio.resample(_joined(self._unresampled)))
            self._unresampled.clear()

    def watch_message_end(self, now: float) -> MessageEnd | None:
        """After a MACHINE decision by the engine (or by the greeting's beep): keep
        listening until the greeting ends. Returns the end if it already came;
        otherwise ``feed`` and the timeouts return it later. Other decisions (and no
        tone tracker) end the watch at once with no result."""
        decision = self.decision
        if self.watching:
            return None  # already watching
        if (
            self.watch_over
            or self.tones is None
            or decision is None
            or decision.status is not Status.MACHINE
            or decision.cause not in (Cause.CLASSIFIER, Cause.BEEP)
        ):
            self._end_watch(None)
            return None
        self._tones_catch_up()  # decided: a fax or SIT tone found now changes nothing
        self.watching = True
        self.tones.hurry()
        self._last_audio_at = now
        if self._ended:  # no more audio is coming: what was heard is all there is
            return self._check_message_end() or self._timeout_message_end()
        return self._check_message_end()

    def release(self) -> None:
        """The transport let the call go: stop the tone tracker, end any watch."""
        self.tones = None
        self._end_watch(None)

    def end_of_stream(self, now: float) -> Step:
        """The source ended without a hang-up (a file's end, a client's flush).

        What was received is analysed as the final clip; with too little audio
        the answer is NOTSURE/NOAUDIO.
        """
        if self.watching and not self._ended:
            self._ended = True
            if self.tones is not None:
                self.tones.end()
            return self._check_message_end() or self._timeout_message_end()
        if self.state is SessionState.DECIDED or self._ended:
            return None
        self._ended = True
        tone = self._tones_catch_up(end=True)  # the last audio may complete a tone
        if tone is not None:
            return self._decide_on_tone(tone)
        self._resample_gathered()
        self._append(self._audio.flush())
        if self.state is SessionState.ANALYZING:
            self._request_final = True  # the answer in flight is the last one
            return None
        if self.audio_s < MIN_ANALYSIS_S:
            return self._decide(Decision(Status.NOTSURE, Cause.NOAUDIO, self.audio_s))
        return self._request(now, final=True)

    def hangup(self, now: float) -> Decision | None:
        """The callee hung up; HANGUP unless a decision was already taken (a watch
        for the greeting's end ends with no result)."""
        if self.state is SessionState.DECIDED:
            self._end_watch(None)
            return None
        return self._decide(Decision(Status.HANGUP, Cause.HANGUP, self.audio_s))

    def check_timeouts(self, now: float) -> Step:
        """Call periodically. When the PBX stopped sending audio (a stream that ended
        without saying so, or silence suppression on the trunk), what was heard is
        analysed as the final clip, as at an end of stream; with nothing heard the
        answer is NOTSURE/NOAUDIO. A watch for the greeting's end times out."""
        if self.watching:
            if now - self._last_audio_at >= self.policy.no_audio_timeout_s:
                return self._timeout_message_end()
            return self._fill_stall(now)
        if self.state is SessionState.DECIDED or self._ended:
            return None
        if self.fill_stalls and self._audio.input_seconds > 0:
            return self._fill_stall(now)
        if self.state is not SessionState.LISTENING:
            return None
        if now - self._last_audio_at >= self.policy.no_audio_timeout_s:
            log.info("call %s: no audio for %.1f s", self.call_id, now - self._last_audio_at)
            return self.end_of_stream(now)
        return None

    def on_result(self, result: AnalysisResult, now: float) -> Step:
        """The engine answered the request in flight."""
        if self.state is not SessionState.ANALYZING:
            return None  # decided meanwhile (hang-up, timeout): the answer is moot
        assert self._request_at is not None
        elapsed_ms = (now - self._request_at) * 1000.0
        audio_s = self._requested_audio_s
        p = result.proba_human
        if self.policy.accepts(p, result.timing.has_speech, final=self._request_final):
            status = Status.HUMAN if p >= 0.5 else Status.MACHINE
            return self._decide(self._from_result(status, Cause.CLASSIFIER, result, elapsed_ms))
        if self.policy.ends_in_silence(audio_s, result.timing.has_speech, self._request_final):
            # Decided without the classifier: no confidence, and no transcript
            # (Whisper's words for noise, "." or "you", are not something heard).
            silent = replace(
                self._from_result(Status.NOTSURE, Cause.SILENCE, result, elapsed_ms),
                proba_human=None,
                transcript="",
            )
            return self._decide(silent)
        if self._request_final:
            return self._decide(
                self._from_result(Status.NOTSURE, Cause.LOWCONFIDENCE, result, elapsed_ms)
            )
        self.state = SessionState.LISTENING
        self._heard = EarlierHearing(result.transcript, audio_s)
        self._next_checkpoint = min(audio_s + self.policy.step_s, self.policy.max_window_s)
        if self._ended:
            return self._request(now, final=True)
        return self._maybe_request(now)

    def abort(self, now: float) -> Step:
        """The service is stopping: NOTSURE/SHUTDOWN unless decided; a watch for the
        greeting's end ends as TIMEOUT (what was heard is all there will be)."""
        if self.watching:
            return self._timeout_message_end()
        if self.state is SessionState.DECIDED:
            return None
        return self._decide(Decision(Status.NOTSURE, Cause.SHUTDOWN, self.audio_s))

    def on_error(self, error: BaseException, now: float) -> Decision | None:
        """The engine failed or timed out for this call: NOTSURE/ERROR."""
        if self.state is SessionState.DECIDED:
            return None
        log.warning("call %s: analysis failed: %r", self.call_id, error)
        return self._decide(Decision(Status.NOTSURE, Cause.ERROR, self.audio_s))

    # --- internals --------------------------------------------------------

    def _decide_on_tone(self, tone: ToneEvent) -> Decision:
        cause = {ToneKind.FAX: Cause.FAX, ToneKind.SIT: Cause.SIT}.get(tone.kind, Cause.BEEP)
        log.info("call %s: %s tone at %.2f s", self.call_id, tone.kind.value, tone.start_s)
        return self._decide(Decision(Status.MACHINE, cause, tone.detected_s))

    def _fill_stall(self, now: float) -> Step:
        """A stream that pauses is heard as silence: a PBX sends nothing while a
        voicemail records (Asterisk's Local channels) or while a channel is quiet,
        a beep's end shows only in the audio after it, and a call must still reach
        its analysis windows."""
        gap = now - max(self._last_audio_at, self._stall_filled_at)
        if gap < STALL_S or (self.state is SessionState.DECIDED and self.tones is None):
            return None
        self._stall_filled_at = now
        before = self._audio.input_seconds
        return self._hear(self._audio.silence(round(gap * self.format.rate)), before, gap, now)

    def _check_message_end(self) -> MessageEnd | None:
        if not self.watching or self.tones is None:
            return None
        end = message_end(self.tones, self.policy.message_end)
        if end is not None:
            self._end_watch(end)
        return end

    def _timeout_message_end(self) -> MessageEnd:
        heard = self.tones.audio_s if self.tones is not None else self._audio.input_seconds
        end = MessageEnd(MessageEndKind.TIMEOUT, heard)
        self._end_watch(end)
        return end

    def _end_watch(self, end: MessageEnd | None) -> None:
        if self.watch_over:
            return
        self.watching = False
        self.watch_over = True
        self.message_end = end
        self.tones = None

    def _append(self, samples: Float32Array) -> None:
        room = self._capacity - self._filled
        take = min(room, len(samples))
        self._buffer[self._filled : self._filled + take] = samples[:take]
        self._filled += take

    def _maybe_request(self, now: float) -> AnalysisRequest | None:
        if self.state is not SessionState.LISTENING:
            return None
        if self._audio.input_seconds + 1e-9 < self._next_checkpoint:
            return None
        final = self._next_checkpoint >= self.policy.max_window_s
        return self._request(now, final=final)

    def _request(self, now: float, final: bool) -> AnalysisRequest:
        self._resample_gathered()
        self.state = SessionState.ANALYZING
        self._request_at = now
        self._request_final = final
        self._requested_audio_s = self.audio_s
        clip = self._buffer[: self._filled].copy()
        return AnalysisRequest(self.call_id, clip, self._requested_audio_s, final, self._heard)

    def _from_result(
        self, status: Status, cause: Cause, result: AnalysisResult, elapsed_ms: float
    ) -> Decision:
        return Decision(
            status=status,
            cause=cause,
            decision_audio_s=self._requested_audio_s,
            proba_human=result.proba_human,
            transcript=result.transcript,
            elapsed_ms=elapsed_ms,
            compute_ms=result.compute_ms,
            timing=result.timing,
        )

    def _decide(self, decision: Decision) -> Decision:
        self._unresampled.clear()  # the clip is no longer needed
        self.state = SessionState.DECIDED
        self.decision = decision
        self._buffer = np.zeros(0, dtype=np.float32)  # free the audio at once
        self._filled = 0
        self._capacity = 0
        return decision


def _joined(pieces: list[Float32Array]) -> Float32Array:
    return pieces[0] if len(pieces) == 1 else np.concatenate(pieces)
