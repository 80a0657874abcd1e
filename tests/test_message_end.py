"""Tones in the call session: fax, SIT and a beep after speech decide MACHINE, and a
machine's greeting is watched to its end. Real piper speech and generated tones, a fake clock and a
scripted engine answer."""

from __future__ import annotations

import numpy as np
import pytest

from bridge.audio import AudioChunk, AudioFormat, Encoding
from bridge.audio.codecs import encode_from_int16, float_to_int16
from bridge.session import (
    AnalysisRequest,
    AnalysisResult,
    CallSession,
    Cause,
    Decision,
    DecisionPolicy,
    MessageEnd,
    MessageEndKind,
    MessageEndPolicy,
    Status,
    TimingFeatures,
)
from bridge.session.call import Step
from bridge.tones.tracker import SIT_WAIT_S
from training import tones as signal

RATE = 8000
ULAW = AudioFormat(Encoding.ULAW, RATE)
SPEECH = TimingFeatures(0.3, 1.5, 0.2, 1, 2.0)
GREETING = "Hi, you have reached the Miller family. Please leave a message."


class Call:
    """A session fed 20 ms mu-law frames of float audio on a fake clock."""

    def __init__(self, **policy: object) -> None:
        self.now = 100.0
        self.session = CallSession("c1", ULAW, DecisionPolicy(**policy), self.now)  # type: ignore[arg-type]
        self.fed_s = 0.0

    def play(self, audio: np.ndarray) -> list[Step]:
        """Feed all of ``audio``; return every non-None output in order."""
        data = encode_from_int16(Encoding.ULAW, float_to_int16(audio))
        out: list[Step] = []
        for i in range(0, len(data), 160):
            self.now += 0.02
            step = self.session.feed(AudioChunk(ULAW, data[i : i + 160]), self.now)
            self.fed_s += len(data[i : i + 160]) / RATE
            if step is not None:
                out.append(step)
        return out

    def answer(self, request: Step, proba_human: float) -> Step:
        assert isinstance(request, AnalysisRequest)
        result = AnalysisResult("hi you have reached", proba_human, SPEECH, compute_ms=10.0)
        return self.session.on_result(result, self.now)


def silence(seconds: float) -> np.ndarray:
    return signal.silence(seconds, RATE)


def test_a_fax_answer_tone_decides_machine_fax_at_once() -> None:
    call = Call()
    out = call.play(np.concatenate([silence(0.3), signal.fax_ced(RATE, 3.0)]))
    decision = out[0]
    assert isinstance(decision, Decision)
    assert (decision.status, decision.cause) == (Status.MACHINE, Cause.FAX)
    assert 0.8 <= decision.decision_audio_s <= 1.0  # 500 ms of the tone, then the report
    assert decision.amd_cause == f"FAX-{round(decision.decision_audio_s * 1000)}"
    assert decision.label == "machine"
    assert len(out) == 1  # nothing more once decided


def test_a_fax_tone_at_the_very_end_of_a_recording_is_still_fax() -> None:
    """Audio reaches the tone detector 100 ms at a time until the decision: the end
    of the stream hands over what gathered, so a tone in it still decides."""
    call = Call()
    audio = np.concatenate([silence(0.3), signal.fax_ced(RATE, 0.6)])
    steps = call.play(audio[: len(audio) - len(audio) % 160 - 160 * 3])  # 60 ms held back
    assert not any(isinstance(s, Decision) for s in steps)
    call.play(audio[len(audio) - len(audio) % 160 - 160 * 3 :])
    decision = call.session.end_of_stream(call.now)
    assert isinstance(decision, Decision) and decision.cause is Cause.FAX, decision


def test_sit_while_the_engine_works_decides_and_the_late_answer_is_moot(speech_audio) -> None:  # type: ignore[no-untyped-def]
    call = Call()
    out = call.play(np.concatenate([speech_audio("Hello?"), silence(1.9)]))
    assert isinstance(out[0], AnalysisRequest)
    request = out[0]
    out = call.play(np.concatenate([signal.sit(RATE), silence(0.3)]))
    assert isinstance(out[0], Decision) and out[0].cause is Cause.SIT
    assert out[0].status is Status.MACHINE
    assert call.answer(request, 0.95) is None
    assert call.session.decision is out[0]


def test_tones_off_leaves_fax_to_the_engine() -> None:
    call = Call(tones=False)
    out = call.play(np.concatenate([silence(0.3), signal.fax_ced(RATE, 3.0)]))
    assert all(isinstance(step, AnalysisRequest) for step in out)
    assert call.session.watch_message_end(call.now) is None


def machine(call: Call, greeting: np.ndarray) -> Decision:
    """Play ``greeting`` until the first analysis; the engine says machine."""
    out = call.play(greeting)
    request = next(step for step in out if isinstance(step, AnalysisRequest))
    decision = call.answer(request, 0.05)
    assert isinstance(decision, Decision) and decision.status is Status.MACHINE
    return decision


def test_the_greetings_beep_ends_the_watch(speech_audio) -> None:  # type: ignore[no-untyped-def]
    call = Call()
    greeting = speech_audio(GREETING)
    machine(call, greeting[: 2 * RATE])
    assert call.session.watch_message_end(call.now) is None
    assert call.session.watching
    rest = np.concatenate(
        [greeting[2 * RATE :], silence(0.4), signal.tones((1000.0,), 0.5, RATE), silence(1.0)]
    )
    beep_end = len(greeting) / RATE + 0.9
    out = call.play(rest)
    assert len(out) == 1 and isinstance(out[0], MessageEnd)
    end = out[0]
    assert end.kind is MessageEndKind.BEEP
    assert end.beep_end_s == pytest.approx(beep_end, abs=0.03)
    assert 0 < end.audio_s - beep_end < 0.1
    assert end.variables() == {
        "AMDMESSAGEEND": "BEEP",
        "AMDBEEPMS": str(round(end.beep_end_s * 1000)),
    }
    assert call.session.watch_over and not call.session.watching
    assert call.session.message_end is end


def short_greeting_and_beep(speech_audio, freq_hz: float, after_s: float):  # type: ignore[no-untyped-def]
    """Speech ("Leave a message."), 0.2 s, a 0.3 s beep at ``freq_hz``, ``after_s`` of
    silence; and the audio time the beep ends."""
    short = speech_audio("Leave a message.", lead_s=0.1)
    beep = signal.tones((freq_hz,), 0.3, RATE)
    audio = np.concatenate([short, silence(0.2), beep, silence(after_s)])
    return audio, len(short) / RATE + 0.5


def test_a_beep_heard_before_the_decision_ends_the_watch_at_once(speech_audio) -> None:  # type: ignore[no-untyped-def]
    call = Call(beep_decides=False)
    audio, beep_end = short_greeting_and_beep(speech_audio, 850.0, 2.0)
    machine(call, audio)
    end = call.session.watch_message_end(call.now)
    assert end is not None and end.kind is MessageEndKind.BEEP
    assert end.beep_end_s == pytest.approx(beep_end, abs=0.03)


def test_a_beep_after_the_first_words_decides_machine_before_the_engine(speech_audio) -> None:  # type: ignore[no-untyped-def]
    call = Call()
    audio, beep_end = short_greeting_and_beep(speech_audio, 850.0, 2.0)
    out = call.play(audio)
    assert not any(isinstance(step, AnalysisRequest) for step in out)  # before 2 s of audio
    [decision] = [step for step in out if isinstance(step, Decision)]
    assert (decision.status, decision.cause) == (Status.MACHINE, Cause.BEEP)
    assert beep_end < decision.decision_audio_s < beep_end + 0.35  # one gathered batch
    assert decision.amd_cause == f"BEEP-{round(decision.decision_audio_s * 1000)}"
    end = call.session.watch_message_end(call.now)  # the greeting's end is the beep
    assert end is not None and end.kind is MessageEndKind.BEEP
    assert end.beep_end_s == pytest.approx(beep_end, abs=0.03)


def test_a_beep_shaped_like_sits_first_tone_waits_for_the_rest(speech_audio) -> None:  # type: ignore[no-untyped-def]
    call = Call()
    audio, beep_end = short_greeting_and_beep(speech_audio, 985.0, 2.5)
    out = call.play(audio)
    [decision] = [step for step in out if isinstance(step, Decision)]
    assert decision.cause is Cause.BEEP
    assert decision.decision_audio_s >= beep_end + SIT_WAIT_S


def test_a_beep_before_any_sound_or_with_beeps_not_deciding_leaves_it_to_the_engine() -> None:
    for call, audio in (
        (Call(), np.concatenate([silence(0.3), signal.tones((850.0,), 0.3, RATE), silence(2.0)])),
        (
            Call(beep_decides=False),
            np.concatenate([silence(0.3), signal.tones((850.0,), 0.3, RATE)]),
        ),
    ):
        out = call.play(np.concatenate([audio, silence(2.0)]))
        assert out and all(isinstance(step, AnalysisRequest) for step in out)


def test_silence_after_the_greeting_ends_a_watch_without_a_beep(speech_audio) -> None:  # type: ignore[no-untyped-def]
    call = Call(message_end=MessageEndPolicy(silence_s=1.5))
    greeting = speech_audio(GREETING)
    machine(call, greeting[: 2 * RATE])
    call.session.watch_message_end(call.now)
    out = call.play(np.concatenate([greeting[2 * RATE :], silence(3.0)]))
    assert len(out) == 1 and isinstance(out[0], MessageEnd)
    assert out[0].kind is MessageEndKind.SILENCE
    assert out[0].beep_end_s is None
    assert out[0].variables()["AMDBEEPMS"] == ""
    speech_end = len(greeting) / RATE  # piper's last word fades out a little before
    assert speech_end + 1.0 <= out[0].audio_s <= speech_end + 1.8


def test_a_greeting_that_never_ends_times_out(speech_audio) -> None:  # type: ignore[no-untyped-def]
    call = Call(message_end=MessageEndPolicy(timeout_s=6.0))
    greeting = speech_audio(GREETING, lead_s=0.0)
    machine(call, greeting[: 2 * RATE])
    call.session.watch_message_end(call.now)
    out = call.play(np.tile(greeting, 3))
    ends = [step for step in out if isinstance(step, MessageEnd)]
    assert len(ends) == 1 and ends[0].kind is MessageEndKind.TIMEOUT
    assert ends[0].audio_s == pytest.approx(6.0, abs=0.05)


def test_a_watch_times_out_when_audio_stops_and_ends_on_hangup(speech_audio) -> None:  # type: ignore[no-untyped-def]
    call = Call(no_audio_timeout_s=2.0)
    greeting = speech_audio(GREETING)
    machine(call, greeting[: 2 * RATE])
    call.session.watch_message_end(call.now)
    assert call.session.check_timeouts(call.now + 1.0) is None
    end = call.session.check_timeouts(call.now + 2.5)
    assert isinstance(end, MessageEnd) and end.kind is MessageEndKind.TIMEOUT

    hung = Call()
    machine(hung, greeting[: 2 * RATE])
    hung.session.watch_message_end(hung.now)
    assert hung.session.hangup(hung.now) is None
    assert hung.session.watch_over and hung.session.message_end is None
    assert hung.play(silence(0.5)) == []


def test_only_an_engine_machine_is_watched(speech_audio) -> None:  # type: ignore[no-untyped-def]
    call = Call()
    out = call.play(np.concatenate([speech_audio("Hello?"), silence(1.9)]))
    human = call.answer(out[0], 0.97)
    assert isinstance(human, Decision) and human.status is Status.HUMAN
    assert call.session.watch_message_end(call.now) is None
    assert call.session.watch_over and not call.session.watching

    fax = Call()
    fax.play(np.concatenate([silence(0.3), signal.fax_ced(RATE, 1.0)]))
    assert fax.session.decision is not None and fax.session.decision.cause is Cause.FAX
    assert fax.session.watch_message_end(fax.now) is None


def test_end_of_stream_while_watching_gives_what_was_heard(speech_audio) -> None:  # type: ignore[no-untyped-def]
    call = Call()
    greeting = speech_audio(GREETING)
    machine(call, greeting[: 2 * RATE])
    call.session.watch_message_end(call.now)
    call.play(np.concatenate([greeting[2 * RATE :], signal.tones((1000.0,), 0.3, RATE)]))
    end = call.session.end_of_stream(call.now)  # the beep ran to the very end
    assert isinstance(end, MessageEnd) and end.kind is MessageEndKind.BEEP


def test_release_stops_listening() -> None:
    call = Call()
    call.play(silence(0.5))
    call.session.release()
    assert call.session.tones is None
    assert call.session.watch_message_end(call.now) is None
