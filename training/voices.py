"""The speakers a corpus is made with, all offline: piper's joe at several pitches,
Debian's espeak-ng voices and variants, and Asterisk's recorded prompts.

A voice has a ``name`` (what the corpus splits on), a ``rate`` and
``speak(text, rng)``; ``rng`` draws the speaking rate and variation, so one seed
gives one corpus.
"""

from __future__ import annotations

import gzip
import io
import random
import re
import shutil
import subprocess
import wave
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import numpy.typing as npt
import soxr

from training.synth import PiperSpeaker

FloatAudio = npt.NDArray[np.float32]

# Pitch factors for piper's single voice: each is its own "voice" for the split.
PIPER_PITCHES = {"joe": 1.0, "joe-low": 0.89, "joe-high": 1.13}
# espeak-ng languages and variants (``espeak-ng --voices``, ``--voices=variant``).
ESPEAK_LANGUAGES = ("en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-029", "en-us-nyc")
ESPEAK_VARIANTS = ("m1", "m3", "m7", "f1", "f2", "f4")
# Where Debian's asterisk-core-sounds-en-wav puts Allison's prompts, and their texts.
ASTERISK_SOUNDS = Path("/usr/share/asterisk/sounds/en_US_f_Allison")
ASTERISK_TEXTS = Path("/usr/share/doc/asterisk-core-sounds-en/core-sounds-en.txt.gz")


class Voice(Protocol):
    name: str
    rate: int

    def speak(self, text: str, rng: random.Random) -> FloatAudio: ...


class VoiceError(RuntimeError):
    """A voice that cannot be used here (espeak-ng missing, a voice it does not have)."""


@dataclass
class PiperPitchVoice:
    """piper's joe, pitch-shifted by resampling with the duration kept."""

    speaker: PiperSpeaker
    name: str
    pitch: float

    @property
    def rate(self) -> int:
        return self.speaker.rate

    def speak(self, text: str, rng: random.Random) -> FloatAudio:
        audio = self.speaker.speak(text, rng, length_factor=self.pitch)
        if self.pitch == 1.0:
            return audio
        # Played faster by `pitch`: higher by that factor, and as long as before
        # because it was rendered `pitch` times slower.
        return soxr.resample(audio, self.rate * self.pitch, self.rate).astype(np.float32)


@dataclass
class EspeakVoice:
    """A Debian espeak-ng voice (``en-gb-scotland+f2``), run as a subprocess."""

    name: str
    rate: int = 22050

    def speak(self, text: str, rng: random.Random) -> FloatAudio:
        exe = shutil.which("espeak-ng")
        if exe is None:
            raise VoiceError("espeak-ng is not installed (Debian: apt-get install espeak-ng)")
        args = [exe, "-v", self.name, "--stdout", "-s", str(rng.randint(145, 195))]
        args += ["-p", str(rng.randint(35, 65)), text]
        result = subprocess.run(args, capture_output=True, timeout=60, check=False)
        if result.returncode != 0 or not result.stdout:
            raise VoiceError(f"espeak-ng -v {self.name} failed: {result.stderr.decode()[:200]}")
        audio, rate = read_wav_bytes(result.stdout)
        if rate != self.rate:
            audio = soxr.resample(audio, rate, self.rate).astype(np.float32)
        return audio


def read_wav_bytes(data: bytes) -> tuple[FloatAudio, int]:
    # espeak-ng writes a streaming header whose sizes say 0x7fffffff: read what is there.
    with wave.open(io.BytesIO(data)) as w:
        rate, width = w.getframerate(), w.getsampwidth()
        frames = w.readframes(w.getnframes())
    if width != 2:
        raise VoiceError(f"expected 16-bit audio, got {8 * width}-bit")
    usable = len(frames) - len(frames) % 2
    return np.frombuffer(frames[:usable], "<i2").astype(np.float32) / 32768.0, rate


def piper_voices(speaker: PiperSpeaker) -> list[Voice]:
    return [PiperPitchVoice(speaker, name, p) for name, p in PIPER_PITCHES.items()]


def espeak_voices() -> list[Voice]:
    if shutil.which("espeak-ng") is None:
        raise VoiceError("espeak-ng is not installed (Debian: apt-get install espeak-ng)")
    return [EspeakVoice(f"{lang}+{v}") for lang in ESPEAK_LANGUAGES for v in ESPEAK_VARIANTS]


@dataclass(frozen=True)
class Prompt:
    name: str
    text: str
    path: Path


def asterisk_prompts(sounds: Path, texts: Path | None = None) -> dict[str, Prompt]:
    """Allison's prompts that have a WAV and a text in ``core-sounds-en.txt``."""
    texts = texts or _find_texts(sounds)
    if not sounds.is_dir():
        raise VoiceError(
            f"no Asterisk prompts in {sounds} (Debian: apt-get install asterisk-core-sounds-en-wav)"
        )
    opener = gzip.open if texts.suffix == ".gz" else open
    prompts: dict[str, Prompt] = {}
    with opener(texts, "rt", encoding="utf-8", errors="replace") as fh:
        for line in fh:
            name, sep, text = line.partition(":")
            text = re.sub(r"\(.*?\)|\[.*?\]", "", text).strip()
            wav = sounds / f"{name.strip()}.wav"
            if sep and text and wav.is_file():
                prompts[name.strip()] = Prompt(name.strip(), text, wav)
    return prompts


def _find_texts(sounds: Path) -> Path:
    # A root other than / (a chroot, a container export) keeps the doc beside its sounds.
    root = sounds
    for _ in range(8):
        candidate = root / "usr/share/doc/asterisk-core-sounds-en/core-sounds-en.txt.gz"
        if candidate.is_file():
            return candidate
        root = root.parent
    if ASTERISK_TEXTS.is_file():
        return ASTERISK_TEXTS
    raise VoiceError(f"no core-sounds-en.txt(.gz) found for {sounds}; pass its path")


def read_prompt(prompt: Prompt) -> tuple[FloatAudio, int]:
    return read_wav_bytes(prompt.path.read_bytes())
