"""The corpus's channel conditions (training.conditions) and the foreground timing the
engine computes from them (bridge.engine.vad): measured on signals made here."""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np
import pytest

from bridge.engine.vad import WINDOW, foreground_timing, timing_from_probabilities
from training.conditions import (
    BABBLE,
    MUSIC,
    NOISE,
    NONE,
    Condition,
    babble,
    lose_frames,
    mix_below,
    music_excerpt,
    music_tracks,
)
from training.corpus import (
    BACKGROUND_ANSWER_SHARE,
    TEST,
    TRAIN,
    background_talk,
    load_chatter,
    split_chatter,
    split_music,
)
from training.manifests import background_band
from training.texts import Template
from training.voices import VoiceError


def rms_db(x: np.ndarray) -> float:
    return 10 * float(np.log10(np.mean(x.astype(np.float64) ** 2)))


def test_conditions_cover_talk_music_noise_and_quiet_and_announcements_get_no_talk():
    rng = random.Random(3)
    drawn = [Condition.sample(rng) for _ in range(2000)]
    shares = {
        kind: sum(c.background == kind for c in drawn) / 2000
        for kind in (NONE, NOISE, BABBLE, MUSIC)
    }
    assert shares[NONE] == pytest.approx(0.30, abs=0.04)
    assert shares[NOISE] == pytest.approx(0.25, abs=0.04)
    assert shares[BABBLE] == pytest.approx(0.30, abs=0.04)
    assert shares[MUSIC] == pytest.approx(0.15, abs=0.03)
    talk = [c for c in drawn if c.background == BABBLE]
    assert all(0.0 <= c.background_db <= 20.0 and 1 <= c.talkers <= 3 for c in talk)
    music = [c for c in drawn if c.background == MUSIC]
    assert all(5.0 <= c.background_db <= 25.0 for c in music)
    lost = [c.lost_share for c in drawn if c.lost_share]
    assert len(lost) / 2000 == pytest.approx(0.25, abs=0.04)
    assert all(0.01 <= s <= 0.05 for s in lost)
    assert "+lost" in Condition(NONE, float("inf"), 0, 0.02).name
    quiet = {Condition.sample(rng, talk=False).background for _ in range(500)}
    assert quiet == {NONE, NOISE}, "no one talks or plays music behind an announcement"
    without_music = [Condition.sample(rng, music=False) for _ in range(2000)]
    assert {c.background for c in without_music} == {NONE, NOISE, BABBLE}
    assert sum(c.background == BABBLE for c in without_music) / 2000 == pytest.approx(
        0.30 / 0.85, abs=0.04
    )


def write_track(path, audio: np.ndarray, rate: int = 8000, channels: int = 1) -> None:
    import wave

    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes((audio * 32767).astype("<i2").tobytes())


def test_music_tracks_are_read_at_8_khz_and_excerpts_fill_the_recording(tmp_path):
    ramp = np.linspace(-0.5, 0.5, 16000).astype(np.float32)  # 1 s at 16 kHz
    write_track(tmp_path / "a.wav", ramp, rate=16000)
    write_track(tmp_path / "b.wav", np.full(4000, 0.25, np.float32))
    (tmp_path / "notes.txt").write_text("not a track")
    tracks = music_tracks(tmp_path)
    assert sorted(tracks) == ["a.wav", "b.wav"]
    assert len(tracks["a.wav"]) == pytest.approx(8000, abs=2)
    # 3 s at 16 kHz from tracks of 0.5-1 s: looped to length
    piece = music_excerpt([tracks["b.wav"]], 16000, 48000, random.Random(1))
    assert len(piece) == 48000
    assert np.allclose(piece[100:-100], 0.25, atol=0.01)
    sides = split_music(tracks, 0.25, seed=1)
    assert len(sides[TRAIN]) == len(sides[TEST]) == 1, "one of two tracks is held out"
    assert split_music({"a.wav": tracks["a.wav"]}, 0.25, 1)[TEST] == []


def test_a_stereo_track_an_empty_or_missing_folder_are_refused_with_their_names(tmp_path):
    with pytest.raises(VoiceError, match="no .wav music tracks in"):
        music_tracks(tmp_path)
    with pytest.raises(VoiceError, match="asterisk-moh-opsound-wav"):
        music_tracks(tmp_path / "missing")
    write_track(tmp_path / "stereo.wav", np.zeros(800, np.float32), channels=2)
    with pytest.raises(VoiceError, match="stereo.wav"):
        music_tracks(tmp_path)


def test_background_is_mixed_the_stated_decibels_below_the_talker():
    rng = np.random.default_rng(0)
    talker = (0.2 * np.sin(np.arange(16000) * 0.3)).astype(np.float32)
    background = rng.normal(0, 0.5, 16000).astype(np.float32)
    mixed = mix_below(talker, background, 12.0)
    assert rms_db(talker) - rms_db(mixed - talker) == pytest.approx(12.0, abs=0.1)


@dataclass
class Counting:
    """A voice that says 0.5 s of a constant per text, and counts the texts."""

    name: str = "counting"
    rate: int = 8000
    said: int = 0

    def speak(self, text: str, rng: random.Random) -> np.ndarray:
        self.said += 1
        return np.full(4000, 0.1, np.float32)


def test_babble_talks_all_along_the_recording():
    voice = Counting(rate=16000)  # resampled to the talker's rate
    out = babble([voice], lambda rng: "words", 8000, 8000 * 6, 2, random.Random(1))
    assert len(out) == 8000 * 6
    talking = np.abs(out) > 0.01
    assert talking.mean() > 0.5, "two talkers with short gaps fill most of the time"
    assert voice.said >= 6


# What voicemail greetings and carriers say; background talk that says it makes a person's
# room sound like a machine (it did: humans under loud talk were taken for machines).
GREETING_WORDS = ("leave a message", "you've reached", "you have reached", "the tone", "beep")


def test_the_projects_background_talk_is_everyday_talk_not_greetings():
    lines = load_chatter()
    assert len(lines) >= 150 and len(set(lines)) == len(lines)
    assert not [x for x in lines if any(w in x.lower() for w in GREETING_WORDS)]
    assert not [x for x in lines if x.startswith("#")], "comment lines are not talk"


def test_background_sentences_are_held_out_with_the_held_out_voices():
    lines = load_chatter()
    sides = split_chatter(lines, 0.25, seed=1)
    assert not set(sides[TRAIN]) & set(sides[TEST])
    assert sorted(sides[TRAIN] + sides[TEST]) == sorted(lines)
    assert len(sides[TEST]) == pytest.approx(0.25 * len(lines), abs=2)
    assert split_chatter(lines, 0.25, seed=1) == sides, "the same seed, the same split"
    assert split_chatter(lines, 0.25, seed=2) != sides


def test_background_talk_says_chatter_and_now_and_then_a_live_answer_never_a_greeting():
    templates = [
        Template("m1", "machine", "You have reached the machine, leave a message."),
        Template("h1", "human", "Hello? | Who is calling, {name}?"),
    ]
    chatter = ["Did you see the game?", "Pass me the stapler."]
    draw = background_talk(chatter, templates)
    rng = random.Random(3)
    said = [draw(rng) for _ in range(2000)]
    answers = [s for s in said if s not in chatter]
    assert len(answers) / len(said) == pytest.approx(BACKGROUND_ANSWER_SHARE, abs=0.03)
    assert all(a.startswith("Hello?   Who is calling, ") for a in answers), "pauses not read"
    assert not [a for a in answers if "{" in a], "slots are filled"
    assert set(chatter) <= set(said)


def test_background_talk_without_chatter_or_answers_still_talks():
    machine = [Template("m1", "machine", "Hi, it's {name}, leave a message.")]
    human = [Template("h1", "human", "Hello? | Who is this?")]
    rng = random.Random(4)
    assert {background_talk([], human)(rng) for _ in range(5)} == {"Hello?   Who is this?"}
    only = background_talk([], machine)(rng)
    assert only.startswith("Hi, it's ") and "{" not in only
    assert {background_talk(["A line."], machine)(rng) for _ in range(20)} == {"A line."}


def test_lost_frames_are_that_share_of_whole_20_ms_frames():
    pcm = np.full(8000 * 10, 1000, np.int16)
    out = lose_frames(pcm, 8000, 0.03, random.Random(2))
    frames = out.reshape(-1, 160)
    lost = np.all(frames == 0, axis=1)
    assert lost.sum() == 15  # 3% of 500
    assert np.all(frames[~lost] == 1000)
    assert np.all(pcm == 1000), "the input is left alone"


def test_foreground_timing_finds_the_talkers_pause_under_quieter_talk():
    """A talker (0 dB) speaks 0.5 s, then only quieter talk (-15 dB) goes on: the VAD
    calls it all speech; the foreground ends with the talker."""
    windows = 94  # 3 s of 32 ms windows
    flags = np.ones(windows, bool)
    levels = np.full(windows, -35.0, np.float32)
    levels[10:26] = -20.0  # the talker
    flags[:10] = True
    overall = timing_from_probabilities(np.ones(windows, np.float32), windows * 0.032, 0.5)
    assert overall.trailing_silence_s == pytest.approx(0.0)
    fg = foreground_timing(overall, flags, levels)
    # the talker's 16 windows and the 4 (0.13 s) either side of them, their onset and fade
    assert fg.foreground_speech_s == pytest.approx(24 * 0.032)
    assert fg.foreground_trailing_s == pytest.approx((windows - 30) * 0.032)
    assert fg.foreground_segments == 1
    assert fg.background_speech_s == pytest.approx((windows - 24) * 0.032)
    assert fg.snr_db == pytest.approx(15.0)


def test_with_levels_the_vad_timing_carries_the_foreground():
    levels = np.full(60, -60.0, np.float32)
    levels[5:20] = -20.0
    probs = np.zeros(60, np.float32)
    probs[5:20] = 0.9
    timing = timing_from_probabilities(probs, 60 * WINDOW / 16000, 0.5, levels)
    assert timing.foreground_speech_s == pytest.approx(timing.speech_s)
    assert timing.foreground_segments == timing.segments == 1
    assert timing.background_speech_s == 0.0
    assert timing.snr_db == pytest.approx(40.0)


def test_reports_group_voices_by_family():
    from training.manifests import voice_family

    assert voice_family("en-gb-scotland+m1") == "en-gb-scotland"
    assert voice_family("joe-low") == voice_family("joe") == "joe"
    assert voice_family("allison") == "allison"


def test_reports_band_the_background_by_how_loud_it_is():
    assert background_band("babble", 4.2) == "talk 0-10 dB below"
    assert background_band("babble+lost", 10.0) == "talk 10+ dB below"
    assert background_band("music", 7.5) == "music 0-15 dB below"
    assert background_band("noise+lost", 31.0) == "noise SNR 25+ dB"
    assert background_band("none+lost", float("inf")) == "none"
    assert background_band("babble", None) is None, "a manifest without the level"
    assert background_band("tv", 5.0) is None, "a condition this project does not make"
