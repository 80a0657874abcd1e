"""``amd-train asr-eval``: word error rate of Whisper models on short clips, decoded
on the clip alone (as the service does) and padded to 30 s (as Whisper was trained);
and what they hear of whole recordings cut at the service's decision windows.

Clips come from an ASR manifest whose transcription is everything said in the
clip (``amd-train corpus`` writes such clips to ``asr.csv``). Text is compared
after lower-casing and dropping punctuation; digits are spelled out, since
Whisper writes "5" where a prompt's text says "five".

A recording's text goes on past a window, and how much of it falls inside is not
known, so a window has no word error rate. It is measured by the text's words the
model wrote there in the text's order (``words_in_order``) and by the words it wrote
that are not those (``written - heard``). A model that stops early, or that writes
the room instead of the talker, shows on the longer windows, which clips of 2 s
cannot see.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from bridge.audio.resampler import TARGET_RATE
from bridge.engine.asr import AsrOptions, ShortContextWhisper
from bridge.errors import AudioFileError
from training.manifests import AsrManifest, ManifestReport, background_band, read_16k

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


def _in_order_by_prefix(reference: Sequence[str], hypothesis: Sequence[str]) -> list[int]:
    """For each prefix of ``reference`` (one word, two, ...), how many of its words
    ``hypothesis`` holds in the same order (the longest common subsequence)."""
    previous = [0] * (len(hypothesis) + 1)
    found = []
    for ref in reference:
        current = [0]
        for j, hyp in enumerate(hypothesis, start=1):
            current.append(previous[j - 1] + 1 if ref == hyp else max(previous[j], current[j - 1]))
        previous = current
        found.append(previous[-1])
    return found


def words_in_order(reference: Sequence[str], hypothesis: Sequence[str]) -> int:
    """How many of ``reference``'s words ``hypothesis`` holds in the same order (the
    longest common subsequence)."""
    found = _in_order_by_prefix(reference, hypothesis)
    return found[-1] if found else 0


def heard_prefix_length(reference: Sequence[str], hypothesis: Sequence[str]) -> int:
    """How many of ``reference``'s words lead up to the last one ``hypothesis`` holds in
    order: the shortest prefix of ``reference`` that has as many words in common with
    ``hypothesis``, in order, as the whole (0 when none is heard)."""
    found = _in_order_by_prefix(reference, hypothesis)
    return found.index(found[-1]) + 1 if found and found[-1] else 0


def heard_script(script: str, heard: str) -> str:
    """``script``'s words, as written, up to the last one ``heard`` has in order: what a
    cut of the recording says according to its script, where ``heard`` (a decoding of
    the cut) says how far it goes. Empty when ``heard`` has none of the script's words."""
    words = script.replace("|", " ").split()
    pieces = [normalize(word) for word in words]  # a word may normalise to none or several
    length = heard_prefix_length([p for piece in pieces for p in piece], normalize(heard))
    kept, count = [], 0
    for word, piece in zip(words, pieces, strict=True):
        if count >= length:
            break
        kept.append(word)
        count += len(piece)
    return " ".join(kept).rstrip(",;:")


@dataclass(frozen=True)
class RecordingText:
    audio: np.ndarray  # 16 kHz, cut at the longest window
    reference: str  # everything the recording says
    background: str = NOT_GIVEN


def load_recordings(report: ManifestReport, longest_s: float) -> list[RecordingText]:
    """The manifest's recordings with their text; an unreadable file goes to
    ``report.bad`` with its reason."""
    out = []
    for row in report.rows:
        if row.path is None or not row.text:
            report.bad.append(
                ({"path": str(row.path or ""), "text": row.text or ""}, "no path or no text")
            )
            continue
        try:
            audio = read_16k(row.path)
        except AudioFileError as exc:
            report.bad.append(({"path": str(row.path), "text": row.text}, str(exc)))
            continue
        band = dict(row.facets).get("background", NOT_GIVEN)
        out.append(RecordingText(audio[: int(longest_s * TARGET_RATE)], row.text, band))
    return out


def _heard_totals(counts: Sequence[tuple[int, int, int]]) -> dict[str, Any]:
    """Per recording on average: reference words heard in order, words written that are
    not those, and the share of the reference's words heard; from ``(heard, written,
    reference words)`` per recording."""
    n = max(len(counts), 1)
    heard = sum(c[0] for c in counts)
    return {
        "recordings": len(counts),
        "heard_per_recording": heard / n,
        "not_said_per_recording": sum(c[1] - c[0] for c in counts) / n,
        "share_of_text_heard": heard / max(sum(c[2] for c in counts), 1),
    }


def score_recordings(
    model_dir: Path,
    recordings: Sequence[RecordingText],
    windows: Sequence[float],
    pad_to_30s: bool,
    batch: int = 16,
    options: AsrOptions | None = None,
) -> dict[str, Any]:
    """What the model hears of each recording cut at each window, overall and per
    background band (decoded with ``options``, the service's defaults if not given)."""
    asr = ShortContextWhisper(model_dir, replace(options or AsrOptions(), pad_to_30s=pad_to_30s))
    out: dict[str, Any] = {}
    for window in windows:
        counts: dict[str, list[tuple[int, int, int]]] = {}
        examples: list[dict[str, str]] = []
        for i in range(0, len(recordings), batch):
            part = recordings[i : i + batch]
            clips = [r.audio[: int(window * TARGET_RATE)] for r in part]
            for rec, heard in zip(part, asr.transcribe_batch(clips), strict=True):
                ref, hyp = normalize(rec.reference), normalize(heard.text)
                found = words_in_order(ref, hyp)
                for key in ("all", rec.background):
                    counts.setdefault(key, []).append((found, len(hyp), len(ref)))
                if found < len(hyp) and len(examples) < 4:
                    examples.append({"reference": rec.reference, "heard": heard.text})
        out[f"{window:g}"] = _heard_totals(counts.pop("all", [])) | {
            "by_background": {band: _heard_totals(c) for band, c in sorted(counts.items())},
            "examples": examples,
        }
    return out
