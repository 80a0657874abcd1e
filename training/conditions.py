"""What happens around the callee's voice before the codec: other people talking behind
them, steady noise, packets lost on the way. Drawn per recording from its own random
generator, so one seed gives one corpus.

Background talk is what the models got most wrong on calls unlike the corpus (a person
answering with an office or a television behind them was taken for a greeting): the
voice activity detector counts the background as speech, and the talker's pauses vanish.
It is drawn for greetings and live answers alike, so that it tells the classifier
nothing about the answer, only that timing is less to be trusted. Music behind the
callee (a radio, a shop, a greeting recorded over music) comes from Asterisk's
music-on-hold tracks (Debian's asterisk-moh-opsound-wav), a held-out share of them
kept for the held-out side.
"""

from __future__ import annotations

import random
import wave
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soxr

from training.voices import FloatAudio, Voice, VoiceError

NONE, NOISE, BABBLE, MUSIC = "none", "noise", "babble", "music"
# Where Debian's asterisk-moh-opsound-wav puts its music-on-hold tracks.
ASTERISK_MOH = Path("/usr/share/asterisk/moh")
MUSIC_RATE = 8000  # music tracks are kept at this rate
FRAME_S = 0.020  # a lost packet takes this much audio with it


@dataclass(frozen=True)
class Condition:
    # NONE, NOISE (the channel's band noise), BABBLE (other talkers) or MUSIC
    background: str
    background_db: float  # the talker's level over the background, dB (inf for NONE)
    talkers: int  # other voices in the background (BABBLE only)
    lost_share: float  # share of 20 ms frames lost (zeroed), 0 for none

    @classmethod
    def sample(cls, rng: random.Random, talk: bool = True, music: bool = True) -> Condition:
        """One recording's condition: 30% nothing, 25% band noise, 30% background talk,
        15% music (without ``music``, no music and the rest in proportion). ``talk=False``
        for recorded announcements, which no one talks or plays music behind."""
        top = 1.0 if talk and music else 0.85 if talk else 0.55
        draw = rng.random() * top
        lost = rng.uniform(0.01, 0.05) if rng.random() < 0.25 else 0.0
        if draw < 0.30:
            return cls(NONE, float("inf"), 0, lost)
        if draw < 0.55:
            return cls(NOISE, rng.choice([40.0, 30.0, 20.0, 15.0, 10.0]), 0, lost)
        if draw < 0.85:
            return cls(BABBLE, rng.uniform(0.0, 20.0), rng.randint(1, 3), lost)
        return cls(MUSIC, rng.uniform(5.0, 25.0), 0, lost)

    @property
    def name(self) -> str:
        """The condition's kind for reports: ``babble``, ``noise``, ``none``, with
        ``+lost`` when frames were lost."""
        return self.background + ("+lost" if self.lost_share else "")


def background_of(name: str) -> str:
    """The background of a condition's ``name`` (``babble+lost`` -> ``babble``)."""
    return name.split("+")[0]


def babble(
    voices: Sequence[Voice],
    texts: Callable[[random.Random], str],
    rate: int,
    samples: int,
    talkers: int,
    rng: random.Random,
) -> FloatAudio:
    """``talkers`` voices drawn from ``voices``, each saying texts one after another
    with short gaps from a random start, mixed at ``rate`` and cut to ``samples``."""
    mix = np.zeros(samples, np.float32)
    for _ in range(talkers):
        voice = rng.choice(list(voices))
        at = -int(rng.uniform(0.0, 2.0) * rate)  # already talking when the call starts
        while at < samples:
            speech = voice.speak(texts(rng), rng)
            if voice.rate != rate:
                speech = soxr.resample(speech, voice.rate, rate).astype(np.float32)
            start, end = max(at, 0), min(at + len(speech), samples)
            if end > start:
                mix[start:end] += speech[start - at : end - at]
            at += len(speech) + int(rng.uniform(0.1, 0.8) * rate)
    return mix


def music_tracks(folder: Path) -> dict[str, FloatAudio]:
    """The 16-bit mono WAV tracks in ``folder`` by file name, as float audio at 8 kHz
    (a folder that is missing or holds none is an error)."""
    if not folder.is_dir():
        raise VoiceError(
            f"no music folder {folder} (Debian: apt-get install asterisk-moh-opsound-wav)"
        )
    tracks: dict[str, FloatAudio] = {}
    for path in sorted(folder.glob("*.wav")):
        try:
            with wave.open(str(path)) as w:
                rate, width, channels = w.getframerate(), w.getsampwidth(), w.getnchannels()
                frames = w.readframes(w.getnframes())
        except (OSError, EOFError, wave.Error) as exc:
            raise VoiceError(f"music track {path}: {exc}") from exc
        if width != 2 or channels != 1:
            raise VoiceError(
                f"music track {path}: expected 16-bit mono, got {8 * width}-bit x {channels}"
            )
        audio = np.frombuffer(frames, "<i2").astype(np.float32) / 32768.0
        if rate != MUSIC_RATE:
            audio = soxr.resample(audio, rate, MUSIC_RATE).astype(np.float32)
        tracks[path.name] = audio
    if not tracks:
        raise VoiceError(f"no .wav music tracks in {folder}")
    return tracks


def music_excerpt(
    tracks: Sequence[FloatAudio], rate: int, samples: int, rng: random.Random
) -> FloatAudio:
    """``samples`` of one of ``tracks`` at ``rate``, from a random point (looped if short)."""
    track = rng.choice(list(tracks))
    need = int(samples * MUSIC_RATE / rate) + 1
    start = rng.randrange(max(len(track) - need, 1))
    piece = np.resize(track[start:], need)  # cut to length, or repeated when short
    out = soxr.resample(piece, MUSIC_RATE, rate).astype(np.float32) if rate != MUSIC_RATE else piece
    return np.resize(out, samples).astype(np.float32)


def speech_rms(talker: FloatAudio) -> float:
    """RMS over a talker's speech: the samples above 1% of its peak (0.05 if none)."""
    speech = talker[np.abs(talker) > 0.01 * (float(np.max(np.abs(talker))) or 1.0)]
    return float(np.sqrt(np.mean(speech**2))) if len(speech) else 0.05


def mix_below(talker: FloatAudio, background: FloatAudio, db: float) -> FloatAudio:
    """``talker`` with ``background`` added ``db`` below it (RMS over the talker's speech)."""
    talker_rms = speech_rms(talker)
    background_rms = float(np.sqrt(np.mean(background**2))) or 1.0
    scaled = background * (talker_rms / background_rms / 10 ** (db / 20))
    return (talker + scaled).astype(np.float32)


def lose_frames(pcm: np.ndarray, rate: int, share: float, rng: random.Random) -> np.ndarray:
    """A copy of ``pcm`` with ``share`` of its 20 ms frames zeroed (lost packets that
    the far end replaced with silence)."""
    out = pcm.copy()
    frame = int(FRAME_S * rate)
    count = len(out) // frame
    for index in rng.sample(range(count), round(share * count)):
        out[index * frame : (index + 1) * frame] = 0
    return out
