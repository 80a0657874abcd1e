"""``amd-train asr-eval``: word error rate of Whisper models on short clips, decoded
on the clip alone (as the service does) and padded to 30 s (as Whisper was trained).

Clips come from an ASR manifest whose transcription is everything said in the
clip (``amd-train corpus`` writes such clips to ``asr.csv``). Text is compared
after lower-casing and dropping punctuation; digits are spelled out, since
Whisper writes "5" where a prompt's text says "five".
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bridge.engine.asr import AsrOptions, ShortContextWhisper
from training.manifests import AsrManifest, background_band

_DIGITS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]


def normalize(text: str) -> list[str]:
    text = text.lower().replace("-", " ")
    text = re.sub(r"\d", lambda m: f" {_DIGITS[int(m.group())]} ", text)
    text = re.sub(r"[^a-z' ]+", " ", text)
    return [w.strip("'") for w in text.split() if w.strip("'")]


def word_errors(reference: Sequence[str], hypothesis: Sequence[str]) -> int:
    """Levenshtein distance over words (substitutions, insertions, deletions)."""
    previous = list(range(len(hypothesis) + 1))
    for i, ref in enumerate(reference, start=1):
        current = [i]
        for j, hyp in enumerate(hypothesis, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ref != hyp)))
        previous = current
    return previous[-1]


NOT_GIVEN = "not given"  # a manifest without condition columns, or a recorded prompt


@dataclass(frozen=True)
class ClipText:
    audio: np.ndarray
    reference: str
    background: str = NOT_GIVEN  # ``manifests.background_band`` of the clip's condition


def load(manifest: AsrManifest, clip_s: float) -> list[ClipText]:
    return [
        ClipText(pcm, row.text, background_band(row.condition, row.background_db) or NOT_GIVEN)
        for row, pcm in manifest.clips(clip_s)
    ]


def by_background(counts: Sequence[tuple[str, int, int]]) -> dict[str, dict[str, Any]]:
    """Word error rate per background band, from ``(band, word errors, reference words)``
    per clip."""
    bands: dict[str, list[int]] = {}
    for band, errors, words in counts:
        totals = bands.setdefault(band, [0, 0, 0])
        totals[0] += errors
        totals[1] += words
        totals[2] += 1
    return {
        band: {"wer": errors / max(words, 1), "clips": clips, "words": words}
        for band, (errors, words, clips) in sorted(bands.items())
    }


def score(
    model_dir: Path, clips: Sequence[ClipText], pad_to_30s: bool, batch: int = 16
) -> dict[str, Any]:
    asr = ShortContextWhisper(model_dir, AsrOptions(pad_to_30s=pad_to_30s))
    errors = words = looped = 0
    examples = []
    counts = []
    for i in range(0, len(clips), batch):
        part = clips[i : i + batch]
        for clip, out in zip(part, asr.transcribe_batch([c.audio for c in part]), strict=True):
            ref, hyp = normalize(clip.reference), normalize(out.text)
            e = word_errors(ref, hyp)
            errors, words, looped = errors + e, words + len(ref), looped + out.looped
            counts.append((clip.background, e, len(ref)))
            if e and len(examples) < 8:
                examples.append({"reference": clip.reference, "heard": out.text})
    return {
        "wer": errors / max(words, 1),
        "clips": len(clips),
        "words": words,
        "looped": looped,
        "by_background": by_background(counts),
        "examples": examples,
    }
