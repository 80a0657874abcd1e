"""The call session state machine, driven by a fake clock and a scripted engine."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.audio import AudioChunk, AudioFormat, Encoding
from bridge.errors import ConfigError
from bridge.session import (
    AnalysisRequest,
    AnalysisResult,
    CallSession,
    Cause,
    Decision,
    DecisionPolicy,
    SessionState,
    Status,
    TimingFeatures,
)

ULAW = AudioFormat(Encoding.ULAW, 8000)
FRAME = AudioChunk(ULAW, b"\xff" * 160)  # 20 ms of mu-law silence
SPEECH = TimingFeatures(0.3, 1.2, 0.5, 1, 2.0)
NO_SPEECH = TimingFeatures(2.0, 0.0, 2.0, 0, 2.0)


def result(p: float, timing: TimingFeatures = SPEECH, text: str = "hello") -> AnalysisResult:
    return AnalysisResult(transcript=text, proba_human=p, timing=timing, compute_ms=12.0)


def feed_until_request(session: CallSession, clock: list[float]) -> AnalysisRequest:
    for _ in range(1000):
        clock[0] += 0.02
        out = session.feed(FRAME, clock[0])
        if out is not None:
            return out
    raise AssertionError("no request")


@pytest.fixture
def clock() -> list[float]:
    return [100.0]


def new_session(clock, **policy) -> CallSession:
    return CallSession("call-1", ULAW, DecisionPolicy(**policy), clock[0])


def test_first_request_when_the_window_closes(clock):
    session = new_session(clock)
    request = feed_until_request(session, clock)
    assert request.audio_s == pytest.approx(2.0)
    assert request.final is False
    assert session.state is SessionState.ANALYZING
    # 2 s of 8 kHz input is ~2 s at 16 kHz, less the resampler's ~60 ms delay
    assert 1.9 * 16000 < len(request.clip) <= 2.0 * 16000
    assert request.clip.dtype == np.float32


@pytest.mark.parametrize(("p", "status"), [(0.93, Status.HUMAN), (0.05, Status.MACHINE)])
def test_confident_answer_decides(clock, p, status):
    session = new_session(clock)
    feed_until_request(session, clock)
    clock[0] += 0.03
    decision = session.on_result(result(p), clock[0])
    assert isinstance(decision, Decision)
    assert decision.status is status
    assert decision.cause is Cause.CLASSIFIER
    assert decision.elapsed_ms == pytest.approx(30.0)
    assert decision.compute_ms == 12.0
    assert decision.decision_audio_s == pytest.approx(2.0)
    assert decision.transcript == "hello"
    assert decision.confidence == pytest.approx(max(p, 1 - p))
    assert decision.amd_cause == f"CLASSIFIER-{round(max(p, 1 - p) * 100)}-2000"
    assert session.state is SessionState.DECIDED
    assert session.feed(FRAME, clock[0]) is None


def test_unsure_asks_again_each_step_then_notsure(clock):
    session = new_session(clock)
    asked_at = []
    request = feed_until_request(session, clock)
    while True:
        asked_at.append(round(request.audio_s, 2))
        out = session.on_result(result(0.6), clock[0])
        if isinstance(out, Decision):
            break
        assert out is None
        request = feed_until_request(session, clock)
    assert asked_at == [2.0, 3.0, 4.0, 5.0, 6.0, 7.0]
    assert out.status is Status.NOTSURE
    assert out.cause is Cause.LOWCONFIDENCE
    assert out.amd_cause == "LOWCONFIDENCE-60-7000"
    assert out.label == "notsure"


def test_the_last_ask_accepts_the_final_threshold_and_earlier_ones_do_not(clock):
    session = new_session(clock, final_threshold=0.7)
    asked_at = []
    request = feed_until_request(session, clock)
    while True:
        asked_at.append((round(request.audio_s, 2), request.final))
        out = session.on_result(result(0.25), clock[0])  # MACHINE at 0.75
        if isinstance(out, Decision):
            break
        request = feed_until_request(session, clock)
    assert asked_at == [
        (2.0, False),
        (3.0, False),
        (4.0, False),
        (5.0, False),
        (6.0, False),
        (7.0, True),
    ]
    assert out.status is Status.MACHINE and out.amd_cause == "CLASSIFIER-75-7000"
    # below it even there: NOTSURE, as before
    session = new_session(clock, final_threshold=0.7)
    for _ in range(6):
        feed_until_request(session, clock)
        out = session.on_result(result(0.35), clock[0])
    assert out.status is Status.NOTSURE and out.amd_cause == "LOWCONFIDENCE-65-7000"


def test_a_final_threshold_above_the_threshold_changes_nothing():
    policy = DecisionPolicy(threshold=0.7, final_threshold=0.9)
    assert policy.accepts(0.72, True, final=True) and policy.accepts(0.72, True)
    assert not policy.accepts(0.72, False, final=True), "no speech, no answer"


def test_a_later_confident_answer_decides(clock):
    session = new_session(clock)
    feed_until_request(session, clock)
    assert session.on_result(result(0.55), clock[0]) is None
    feed_until_request(session, clock)
    decision = session.on_result(result(0.1), clock[0])
    assert decision.status is Status.MACHINE
    assert decision.decision_audio_s == pytest.approx(3.0)


def test_silence_through_the_maximum_window_is_notsure_silence(clock):
    session = new_session(clock, initial_silence_s=30.0)  # only the last ask ends it
    while True:
        feed_until_request(session, clock)
        # Even a confident probability is not trusted without speech.
        out = session.on_result(result(0.98, NO_SPEECH, "you"), clock[0])
        if out is not None:
            break
    assert (out.status, out.cause) == (Status.NOTSURE, Cause.SILENCE)
    assert out.amd_cause == "SILENCE-7000"
    # decided without the classifier: no confidence, nor Whisper's words for noise
    assert out.confidence is None and out.proba_human is None and out.transcript == ""
    assert out.summary()["confidence"] is None


def test_dead_air_is_notsure_silence_at_the_first_ask_past_the_initial_silence(clock):
    session = new_session(clock, initial_silence_s=3.5)
    asked_at = []
    while True:
        asked_at.append(round(feed_until_request(session, clock).audio_s, 2))
        out = session.on_result(result(0.98, NO_SPEECH, "you"), clock[0])
        if out is not None:
            break
    assert asked_at == [2.0, 3.0, 4.0]
    assert (out.status, out.amd_cause) == (Status.NOTSURE, "SILENCE-4000")
    assert out.confidence is None and out.transcript == ""


def test_speech_past_the_initial_silence_is_asked_about_as_before(clock):
    session = new_session(clock, initial_silence_s=2.0)
    feed_until_request(session, clock)
    assert session.on_result(result(0.6), clock[0]) is None  # unsure, but speech: ask again
    feed_until_request(session, clock)
    decision = session.on_result(result(0.9), clock[0])
    assert decision.status is Status.HUMAN and decision.amd_cause == "CLASSIFIER-90-3000"


def test_audio_arriving_during_analysis_is_kept_and_may_trigger_the_next_request(clock):
    session = new_session(clock)
    feed_until_request(session, clock)
    for _ in range(60):  # 1.2 s while the engine is busy
        clock[0] += 0.02
        assert session.feed(FRAME, clock[0]) is None
    nxt = session.on_result(result(0.6), clock[0])
    assert isinstance(nxt, AnalysisRequest)
    assert nxt.audio_s == pytest.approx(3.2)


def test_hangup_before_decision(clock):
    session = new_session(clock)
    for _ in range(40):
        clock[0] += 0.02
        session.feed(FRAME, clock[0])
    decision = session.hangup(clock[0])
    assert (decision.status, decision.cause) == (Status.HANGUP, Cause.HANGUP)
    assert decision.amd_cause == "HANGUP-800"
    assert decision.label == "notsure"
    assert session.hangup(clock[0]) is None


def test_result_after_hangup_is_ignored(clock):
    session = new_session(clock)
    feed_until_request(session, clock)
    session.hangup(clock[0])
    assert session.on_result(result(0.99), clock[0]) is None
    assert session.decision.status is Status.HANGUP


def test_hangup_after_decision_keeps_the_decision(clock):
    session = new_session(clock)
    feed_until_request(session, clock)
    session.on_result(result(0.99), clock[0])
    assert session.hangup(clock[0]) is None
    assert session.decision.status is Status.HUMAN


def test_no_audio_timeout(clock):
    session = new_session(clock, no_audio_timeout_s=3.0)
    assert session.check_timeouts(clock[0] + 2.9) is None
    decision = session.check_timeouts(clock[0] + 3.0)
    assert (decision.status, decision.cause) == (Status.NOTSURE, Cause.NOAUDIO)
    assert decision.amd_cause == "NOAUDIO-0"


def test_audio_that_stops_early_is_analysed_after_the_timeout(clock):
    session = new_session(clock, no_audio_timeout_s=3.0)
    for _ in range(50):  # 1 s, then the trunk sends nothing (silence suppression)
        clock[0] += 0.02
        assert session.feed(FRAME, clock[0]) is None
    assert session.check_timeouts(clock[0] + 2.9) is None
    request = session.check_timeouts(clock[0] + 3.0)
    assert isinstance(request, AnalysisRequest) and request.final
    assert request.audio_s == pytest.approx(1.0)
    assert session.check_timeouts(clock[0] + 9.0) is None  # asked once


def test_no_audio_timeout_does_not_fire_while_analyzing(clock):
    session = new_session(clock, no_audio_timeout_s=1.0)
    feed_until_request(session, clock)
    assert session.check_timeouts(clock[0] + 10) is None


def test_end_of_stream_without_audio_is_noaudio(clock):
    session = new_session(clock)
    decision = session.end_of_stream(clock[0])
    assert (decision.status, decision.cause) == (Status.NOTSURE, Cause.NOAUDIO)


def test_end_of_stream_with_short_audio_asks_a_final_question(clock):
    session = new_session(clock)
    for _ in range(50):  # 1 s
        clock[0] += 0.02
        session.feed(FRAME, clock[0])
    request = session.end_of_stream(clock[0])
    assert isinstance(request, AnalysisRequest)
    assert request.final is True
    assert len(request.clip) == pytest.approx(16000, abs=2)  # the resampler was flushed
    decision = session.on_result(result(0.6), clock[0])
    assert (decision.status, decision.cause) == (Status.NOTSURE, Cause.LOWCONFIDENCE)


def test_end_of_stream_during_analysis_makes_that_answer_final(clock):
    session = new_session(clock)
    feed_until_request(session, clock)
    assert session.end_of_stream(clock[0]) is None
    decision = session.on_result(result(0.6), clock[0])
    assert decision.status is Status.NOTSURE


def test_engine_error_is_notsure_error(clock):
    session = new_session(clock)
    feed_until_request(session, clock)
    decision = session.on_error(TimeoutError("deadline"), clock[0])
    assert (decision.status, decision.cause) == (Status.NOTSURE, Cause.ERROR)


def test_buffer_is_bounded_and_overflow_counted(clock):
    session = new_session(clock, max_window_s=3.0, window_s=2.0)
    request = feed_until_request(session, clock)
    for _ in range(3000):  # 60 s more while the engine never answers
        clock[0] += 0.02
        session.feed(FRAME, clock[0])
    assert session.audio_s == pytest.approx(3.0)
    assert session.dropped_s > 56
    assert session._buffer.nbytes <= (3.0 + 0.25) * 16000 * 4
    assert request.audio_s == pytest.approx(2.0)


def test_decided_session_frees_its_buffer(clock):
    session = new_session(clock)
    feed_until_request(session, clock)
    session.on_result(result(0.99), clock[0])
    assert session._buffer.nbytes == 0


@pytest.mark.parametrize(
    "policy",
    [
        {"window_s": 0.1},
        {"window_s": 6.0, "max_window_s": 5.0},
        {"max_window_s": 31.0},
        {"threshold": 0.4},
        {"threshold": 1.0},
        {"final_threshold": 0.45},
        {"final_threshold": 1.0},
        {"step_s": 0},
        {"no_audio_timeout_s": 0},
        {"initial_silence_s": 0},
    ],
)
def test_policy_rejects_bad_values(policy):
    with pytest.raises(ConfigError):
        DecisionPolicy(**policy)


events = st.lists(
    st.one_of(
        st.tuples(st.just("audio"), st.binary(min_size=0, max_size=900)),
        st.tuples(st.just("result"), st.floats(0, 1)),
        st.tuples(st.just("silent_result"), st.floats(0, 1)),
        st.tuples(st.just("error"), st.none()),
        st.tuples(st.just("tick"), st.floats(0, 10)),
        st.tuples(st.just("hangup"), st.none()),
    ),
    max_size=80,
)


@settings(max_examples=150, deadline=None)
@given(events, st.sampled_from([AudioFormat(Encoding.SLIN, 8000), ULAW]))
def test_any_event_sequence_ends_in_exactly_one_decision(script, fmt):
    now = 0.0
    session = CallSession("fuzz", fmt, DecisionPolicy(), now)
    decisions = []
    in_flight = False
    for kind, value in script:
        now += 0.02
        out = None
        if kind == "audio":
            out = session.feed(AudioChunk(fmt, value), now)
        elif kind in ("result", "silent_result") and in_flight:
            timing = SPEECH if kind == "result" else NO_SPEECH
            out = session.on_result(result(value, timing), now)
            in_flight = False
        elif kind == "error" and in_flight:
            out = session.on_error(RuntimeError("x"), now)
            in_flight = False
        elif kind == "tick":
            out = session.check_timeouts(now + value)
        elif kind == "hangup":
            out = session.hangup(now)
        if isinstance(out, AnalysisRequest):
            assert not in_flight
            in_flight = True
        elif isinstance(out, Decision):
            decisions.append(out)
    if session.state is not SessionState.DECIDED:
        out = session.end_of_stream(now)
        while isinstance(out, AnalysisRequest) or (out is None and in_flight):
            out = session.on_result(result(0.6), now)
            in_flight = False
        if isinstance(out, Decision):
            decisions.append(out)
    assert len(decisions) == 1
    assert session.decision is decisions[0]
    assert 0.0 <= decisions[0].decision_audio_s <= 5.0


def test_with_fill_stalls_time_without_frames_is_silence_and_reaches_the_window(clock):
    """A PBX that sends nothing while the channel is quiet: once audio has started,
    each check counts the wall-clock gap (past 0.5 s of jitter) as silence."""
    session = CallSession("call-1", ULAW, DecisionPolicy(), clock[0], fill_stalls=True)
    clock[0] += 0.6
    assert session.check_timeouts(clock[0]) is None, "nothing before the first frame"
    for _ in range(50):  # 1 s of audio, then nothing
        clock[0] += 0.02
        assert session.feed(FRAME, clock[0]) is None
    assert session.check_timeouts(clock[0] + 0.4) is None, "jitter, not a stall"
    request = session.check_timeouts(clock[0] + 1.1)
    assert isinstance(request, AnalysisRequest)
    assert request.audio_s == pytest.approx(2.1)
    assert len(request.clip) == pytest.approx(2.1 * 16000, abs=1600)
    # the same without fill_stalls: nothing until the no-audio timeout
    plain = new_session(clock)
    for _ in range(50):
        clock[0] += 0.02
        plain.feed(FRAME, clock[0])
    assert plain.check_timeouts(clock[0] + 1.1) is None


def test_a_repeated_ask_carries_what_the_last_one_heard(clock):
    session = new_session(clock)
    first = feed_until_request(session, clock)
    assert first.heard_before is None
    assert session.on_result(result(0.6, text="hello who"), clock[0]) is None
    second = feed_until_request(session, clock)
    assert second.heard_before is not None
    assert second.heard_before.transcript == "hello who"
    assert second.heard_before.audio_s == pytest.approx(first.audio_s)
