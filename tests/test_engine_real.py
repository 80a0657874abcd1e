"""The real engine (embedded tiny.en, silero VAD, committed classifier) on piper speech
that went through a mu-law channel."""

import asyncio

import numpy as np
import pytest

from bridge.audio import AudioFormat, CallAudio, Encoding
from bridge.cli.audio_files import read_audio_file
from bridge.engine.asr import AsrOptions, ShortContextWhisper
from bridge.engine.batcher import BatchingEngine
from bridge.engine.models import embedded_whisper_dir
from bridge.session import DecisionPolicy, Status
from bridge.session.recording import decide_recording

HUMAN_OPENER = "Hello? Who's this?"
MACHINE_GREETING = (
    "Hi, you've reached Tom Baker. I'm not able to answer right now, "
    "so leave your name and number after the tone."
)
CARRIER = "The subscriber you are trying to reach is unavailable. Please leave a message."


def clip_16k(path, seconds: float) -> np.ndarray:
    fmt, data = read_audio_file(path)
    call = CallAudio(fmt)
    audio = np.concatenate([call.push(data), call.flush()])
    return audio[: int(seconds * 16000)]


def words(text: str) -> set[str]:
    return {w.strip(".,?!").lower() for w in text.split()}


def test_transcribes_telephone_speech_without_padding(detector, speech_wav):
    clip = clip_16k(speech_wav(MACHINE_GREETING, total_s=3.0), 2.0)
    [result] = detector.analyze_batch([clip])
    assert {"you've", "reached"} <= words(result.transcript), result.transcript  # names vary
    assert not result.asr_looped
    assert result.timing.has_speech
    assert 0.2 < result.timing.initial_silence_s < 0.5  # 0.3 s of lead-in silence
    assert result.timing.speech_s > 1.2


def test_padding_to_30s_still_decodes_the_same_words(speech_wav):
    clip = clip_16k(speech_wav(HUMAN_OPENER, total_s=2.0), 2.0)
    model_dir = embedded_whisper_dir()
    short = ShortContextWhisper(model_dir, AsrOptions()).transcribe_batch([clip])[0]
    padded = ShortContextWhisper(model_dir, AsrOptions(pad_to_30s=True)).transcribe_batch([clip])[0]
    # piper's synthesis is not seeded (onnxruntime noise), so the opener is sometimes
    # heard as "Oh, who's this?": ask for a word of it, and the same words both ways.
    opener = {"hello", "who's", "this"}
    assert words(short.text) & opener and words(padded.text) & opener
    assert len(words(short.text) & words(padded.text)) >= 2


def test_batch_gives_each_clip_its_own_answer(detector, speech_wav):
    human = clip_16k(speech_wav(HUMAN_OPENER, total_s=2.0), 2.0)
    machine = clip_16k(speech_wav(MACHINE_GREETING, total_s=2.0), 2.0)
    alone = [detector.analyze_batch([c])[0] for c in (human, machine)]
    together = detector.analyze_batch([human, machine, human])
    assert [r.transcript for r in together] == [alone[0].transcript, alone[1].transcript] + [
        alone[0].transcript
    ]
    assert together[0].proba_human == pytest.approx(alone[0].proba_human, abs=1e-6)
    assert together[1].proba_human == pytest.approx(alone[1].proba_human, abs=1e-6)
    assert together[0].batch_size == 3


def test_silence_has_no_speech_and_no_words(detector):
    rng = np.random.default_rng(0)
    hiss = (rng.normal(0, 0.002, 32000)).astype(np.float32)
    [result] = detector.analyze_batch([hiss])
    assert not result.timing.has_speech
    assert len(result.transcript.split()) <= 1


@pytest.mark.parametrize(
    ("text", "total_s", "status"),
    [
        (HUMAN_OPENER, 5.0, Status.HUMAN),
        ("Hello, she's not here right now. Can I take a message?", 5.0, Status.HUMAN),
        (MACHINE_GREETING, 6.0, Status.MACHINE),
        (CARRIER, 6.0, Status.MACHINE),
    ],
)
def test_mu_law_call_through_the_session_gets_the_right_status(
    detector, speech_wav, text, total_s, status
):
    path = speech_wav(text, total_s=total_s)
    fmt, data = read_audio_file(path)
    assert fmt == AudioFormat(Encoding.SLIN, 8000)

    async def run():
        engine = BatchingEngine(detector.analyze_batch, max_batch=4, max_wait_s=0.002)
        try:
            return await decide_recording("t", fmt, data, DecisionPolicy(), engine.analyze)
        finally:
            await engine.aclose()

    decision = asyncio.run(run())
    assert decision.status is status, decision
    assert 2.0 <= decision.decision_audio_s <= 5.0
    assert decision.elapsed_ms is not None and decision.compute_ms is not None


def test_an_ask_that_heard_only_silence_since_the_last_keeps_its_transcript(detector, speech_wav):
    """Whisper runs again only when something was said since the call's last ask: a
    person who said "Hello? Who's this?" and waits costs the VAD and the classifier,
    not another transcription. Speech that goes on past the earlier clip is heard anew."""
    from bridge.session import EarlierHearing

    opener = clip_16k(speech_wav(HUMAN_OPENER, total_s=4.0), 4.0)
    greeting = clip_16k(speech_wav(MACHINE_GREETING, total_s=4.0), 4.0)
    first_human, first_machine = detector.analyze_batch([opener[:40000], greeting[:32000]])
    later = detector.analyze_batch(
        [opener, greeting],
        [
            EarlierHearing(first_human.transcript, 2.5),
            EarlierHearing(first_machine.transcript, 2.0),
        ],
    )
    assert later[0].asr_reused and later[0].transcript == first_human.transcript
    assert later[0].timing.clip_s == pytest.approx(4.0)  # timing is measured anew
    assert not later[1].asr_reused, "the greeting went on after 2 s"
    assert len(later[1].transcript) > len(first_machine.transcript)


@pytest.mark.parametrize(
    ("speech_end_s", "earlier_s", "reused"),
    [(1.2, 2.0, True), (1.85, 2.0, False), (2.6, 2.0, False), (None, 2.0, True)],
)
def test_nothing_new_needs_silence_at_the_end_of_the_earlier_clip(speech_end_s, earlier_s, reused):
    from bridge.engine.detector import nothing_new
    from bridge.session import EarlierHearing, TimingFeatures

    if speech_end_s is None:
        timing = TimingFeatures(3.0, 0.0, 3.0, 0, 3.0)
    else:
        timing = TimingFeatures(0.3, speech_end_s - 0.3, 3.0 - speech_end_s, 1, 3.0)
    assert nothing_new(timing, EarlierHearing("hello", earlier_s)) is reused
    assert nothing_new(timing, None) is False
