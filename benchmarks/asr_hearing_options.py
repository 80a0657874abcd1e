"""What Whisper hears of the held-out recordings under decoding options the service has
(silence appended to each clip, beam search) and one it does not (only the loudest
voice let through), against the service's defaults, in the same run.

    python benchmarks/asr_hearing_options.py --recordings build/defaults/corpus/manifest.csv \
        [--whisper-model embedded-short] [--windows 2,3,4,5] [--json out.json]

Each held-out recording (``split`` test) is cut at each window and decoded on the clip
alone, as the service does; it is scored as ``amd-train asr-eval --recordings`` scores
it: the text's words heard in order and the words written that the text does not say,
per recording, in all and per background band, with the seconds each option took.

The foreground gate lowers by 20 dB every 32 ms window that the VAD's foreground rule
(``bridge.engine.vad.foreground_flags``, with the gate's dB in place of its 9) does
not count as the loudest voice, with a linear ramp between windows, before Whisper hears
the clip. Nothing is asserted; the figures are in ``docs/accuracy.md``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bridge.audio.resampler import TARGET_RATE
from bridge.engine import vad
from bridge.engine.asr import AsrOptions
from bridge.engine.models import resolve_whisper_model
from training.asr_eval import RecordingText, load_recordings, score_recordings
from training.manifests import read_classification_manifest
from training.whisper_cli import parse_windows

GATE_ATTENUATION_DB = 20.0


def foreground_gate(timer: vad.SpeechTimer, gate_db: float) -> Callable[[np.ndarray], np.ndarray]:
    """The clip with everything but the loudest voice lowered by ``GATE_ATTENUATION_DB``."""

    def gate(clip: np.ndarray) -> np.ndarray:
        flags = vad.speech_flags(timer.speech_probabilities(clip), timer.threshold)
        if not flags.any():
            return clip
        foreground, _ = vad.foreground_flags(flags, vad.window_levels_db(clip), gate_db)
        window_gain = np.where(foreground, 1.0, 10 ** (-GATE_ATTENUATION_DB / 20))
        centres = (np.arange(len(window_gain)) + 0.5) * vad.WINDOW
        gain = np.interp(np.arange(len(clip)), centres, window_gain)
        return (clip * gain).astype(np.float32)

    return gate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--recordings", type=Path, required=True, help="amd-train corpus's manifest.csv"
    )
    parser.add_argument("--whisper-model", default="embedded-short")
    parser.add_argument("--windows", default="2,3,4,5")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    windows = parse_windows(args.windows)
    report = read_classification_manifest(args.recordings)
    report.rows = [r for r in report.rows if r.split == "test"]
    recordings = load_recordings(report, max(windows))
    model = resolve_whisper_model(args.whisper_model)
    options: dict[str, AsrOptions] = {
        "defaults": AsrOptions(),
        "0.25 s of silence appended": AsrOptions(tail_silence_s=0.25),
        "0.5 s of silence appended": AsrOptions(tail_silence_s=0.5),
        "1.0 s of silence appended": AsrOptions(tail_silence_s=1.0),
        "beam of 4": AsrOptions(beam_size=4),
    }
    out: dict[str, Any] = {"recordings": len(recordings), "model": str(model), "options": {}}
    print(f"{len(recordings)} held-out recordings; per recording, heard / not said")
    for name, opts in options.items():
        t0 = time.perf_counter()
        result = score_recordings(model, recordings, windows, False, options=opts)
        out["options"][name] = _show(name, result, time.perf_counter() - t0)
    timer = vad.SpeechTimer()
    for gate_db in (9.0, 6.0):
        name = f"foreground gate at {gate_db:g} dB"
        t0 = time.perf_counter()
        gate = foreground_gate(timer, gate_db)
        result = {}
        for w in windows:  # the gate sees only the window, as the service would
            cut = [
                RecordingText(gate(r.audio[: int(w * TARGET_RATE)]), r.reference, r.background)
                for r in recordings
            ]
            result |= score_recordings(model, cut, (w,), False)
        out["options"][name] = _show(name, result, time.perf_counter() - t0)
    if args.json:
        args.json.write_text(json.dumps(out, indent=2) + "\n")


def _show(name: str, result: dict[str, Any], seconds: float) -> dict[str, Any]:
    cells = []
    for window, w in result.items():
        bands = w["by_background"]
        cell = f"{window}s {w['heard_per_recording']:.2f}/{w['not_said_per_recording']:.2f}"
        for band in ("none", "talk 0-10 dB below"):
            if band in bands:
                b = bands[band]
                cell += (
                    f" [{band}: {b['heard_per_recording']:.2f}/{b['not_said_per_recording']:.2f}]"
                )
        cells.append(cell)
    print(f"{name} ({seconds:.0f} s)\n  " + "\n  ".join(cells), flush=True)
    return {"seconds": seconds, "windows": result}


if __name__ == "__main__":
    main()
