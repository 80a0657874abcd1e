"""Decision compute latency of the engine against faster-whisper's transcribe(), and
throughput against batch size, on the same 2 s telephone clips.

    python benchmarks/engine_latency.py [--clips 40] [--threads 2] [--device cpu]
        [--whisper-model embedded|FOLDER]

Clips: the project's opener templates spoken by piper, through a mu-law
telephone channel, cut to the first 2.0 s at 16 kHz. Every figure is
measured in this run; nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time

import numpy as np

from bridge.audio import AudioFormat, CallAudio, Encoding
from bridge.audio.codecs import encode_from_int16
from bridge.engine.asr import AsrOptions, ShortContextWhisper
from bridge.engine.detector import Detector
from bridge.engine.models import (
    default_classifier_path,
    overlay_model_files,
    resolve_whisper_model,
)
from training.synth import PiperSpeaker, render
from training.telephone import PHONE_RATE, ChannelParams, telephone
from training.texts import load_templates


def make_clips(n: int, seed: int, window_s: float) -> list[np.ndarray]:
    speaker = PiperSpeaker()
    templates = load_templates()
    rng = random.Random(seed)
    clips = []
    for template in rng.sample(templates, n):
        _, audio = render(speaker, template, rng, min_seconds=window_s + 0.5)
        pcm = telephone(audio, speaker.rate, ChannelParams(30.0, -6.0, Encoding.ULAW), seed)
        call = CallAudio(AudioFormat(Encoding.SLIN, PHONE_RATE))
        x = np.concatenate([call.push(encode_from_int16(Encoding.SLIN, pcm)), call.flush()])
        clips.append(x[: int(window_s * 16000)])
    return clips


def percentiles(ms: list[float]) -> dict[str, float]:
    q = np.percentile(ms, [50, 90, 99])
    return {
        "p50": round(float(q[0]), 1),
        "p90": round(float(q[1]), 1),
        "p99": round(float(q[2]), 1),
    }


def timed(fn, *args) -> float:  # type: ignore[no-untyped-def]
    t0 = time.perf_counter()
    fn(*args)
    return (time.perf_counter() - t0) * 1000


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--clips", type=int, default=40)
    ap.add_argument("--window", type=float, default=2.0)
    ap.add_argument("--threads", type=int, default=0, help="CTranslate2 intra threads (0: default)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--compute-type", default="default")
    ap.add_argument("--batches", default="1,2,4,8,16,32")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument(
        "--whisper-model",
        default="embedded-short",
        help="'embedded-short', 'embedded' or a CTranslate2 model folder",
    )
    ap.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    args = ap.parse_args()

    clips = make_clips(args.clips, args.seed, args.window)
    model_dir = resolve_whisper_model(args.whisper_model)
    opts = AsrOptions(device=args.device, compute_type=args.compute_type, threads=args.threads)
    detector = Detector(model_dir, default_classifier_path(), opts)
    padded = ShortContextWhisper(model_dir, AsrOptions(**{**opts.__dict__, "pad_to_30s": True}))
    report: dict[str, object] = {
        "clips": len(clips),
        "window_s": args.window,
        "device": args.device,
        "compute_type": detector.info.compute_type,
        "threads": args.threads,
    }

    for c in clips[:3]:  # warm-up
        detector.analyze_batch([c])
    engine_ms = [timed(detector.analyze_batch, [c]) for c in clips]
    report["engine_batch1_ms"] = percentiles(engine_ms)

    padded.transcribe_batch([clips[0]])
    padded_ms = [timed(padded.transcribe_batch, [c]) for c in clips]
    report["asr_padded_30s_batch1_ms"] = percentiles(padded_ms)

    from faster_whisper import WhisperModel

    # The same weights for faster-whisper: an overlay is put together as the engine does.
    files = overlay_model_files(model_dir)
    fw = WhisperModel(
        str(model_dir),
        device=args.device,
        compute_type=detector.info.compute_type,
        cpu_threads=args.threads,
        files=files,
    )

    def fw_transcribe(clip: np.ndarray) -> str:
        segments, _ = fw.transcribe(
            clip,
            language="en",
            beam_size=1,
            without_timestamps=True,
            vad_filter=False,
            condition_on_previous_text=False,
        )
        return " ".join(s.text for s in segments)

    fw_transcribe(clips[0])
    fw_ms = [timed(fw_transcribe, c) for c in clips]
    report["faster_whisper_transcribe_ms"] = percentiles(fw_ms)
    report["speedup_p50_vs_transcribe"] = round(
        statistics.median(fw_ms) / statistics.median(engine_ms), 1
    )

    throughput = {}
    for size in (int(b) for b in args.batches.split(",")):
        batch = [clips[i % len(clips)] for i in range(size)]
        detector.analyze_batch(batch)
        runs = [timed(detector.analyze_batch, batch) for _ in range(max(1, 64 // size))]
        per_clip = statistics.median(runs) / size
        throughput[size] = {
            "per_clip_ms": round(per_clip, 1),
            "clips_per_s": round(1000 / per_clip, 1),
        }
    report["batch_throughput"] = throughput

    sample = detector.analyze_batch(clips[:5])
    report["sample_transcripts"] = [r.transcript for r in sample]

    if args.json:
        print(json.dumps(report, indent=2))
        return
    print(
        f"{len(clips)} clips of {args.window} s, {args.device} {detector.info.compute_type}, "
        f"threads={args.threads or 'default'}"
    )
    print("decision compute per clip (ms)          p50     p90     p99")
    for name, key in [
        ("engine, batch 1 (VAD+ASR+classifier)", "engine_batch1_ms"),
        ("ASR padded to 30 s, batch 1", "asr_padded_30s_batch1_ms"),
        ("faster-whisper transcribe()", "faster_whisper_transcribe_ms"),
    ]:
        p = report[key]
        assert isinstance(p, dict)
        print(f"  {name:<38}{p['p50']:>7}{p['p90']:>8}{p['p99']:>8}")
    print(f"  engine vs transcribe() at p50: {report['speedup_p50_vs_transcribe']}x less per clip")
    print("throughput against batch size")
    for size, t in throughput.items():
        print(f"  batch {size:>3}: {t['per_clip_ms']:>6} ms/clip  {t['clips_per_s']:>7} clips/s")
    print("sample transcripts:", report["sample_transcripts"])


if __name__ == "__main__":
    main()
