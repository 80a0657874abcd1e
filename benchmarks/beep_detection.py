"""Voicemail beep detection: detection rate, false alarms per hour of speech and
music, and the delay from a beep's end to the decision, against a naive detector
in the same run.

    python benchmarks/beep_detection.py [--beeps 300] [--greetings 40] [--seed 1]

Beeps: piper greetings (the project's machine templates) then a pause of
0.2-1.0 s, a beep of 400-2000 Hz lasting 0.1-1.5 s at -12 to +3 dB against the
speech's peak, and 2 s of quiet, through a telephone channel (band limit, noise
at 15-40 dB SNR or none, level change, mu-law or A-law), fed to the tracker in
20 ms frames at 8 kHz. A beep counts as found when exactly one BEEP comes and
its end is within 50 ms of the truth; the delay is the audio time the tracker
had received when it reported, less the beep's true end.

False alarms: every template (human and machine) spoken by piper through the
same channel; Asterisk's recorded prompts and its music on hold (Debian's
asterisk-core-sounds-en-wav and asterisk-moh-opsound-wav in the test Asterisk
root, when it can be built here); North American ringback, busy and dial tones
and DTMF. Target: >= 99 % found, < 1 false alarm per hour, < 100 ms delay.

The naive detector is the obvious alternative (what a simple Goertzel-style
beep detector does): a run of 100-1500 ms where one frequency of 400-2000 Hz
dominates and stays within 1.5 %, with none of the checks for speech harmonics,
steadiness, isolation or loudness against what came before.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
import wave
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.asterisk: the root

from bridge.audio.chunk import Encoding
from bridge.tones import ToneEvent, ToneKind, ToneTracker
from bridge.tones import tracker as rules
from training import tones as signal
from training.synth import PiperSpeaker
from training.telephone import PHONE_RATE, ChannelParams, telephone
from training.texts import fill, load_templates

RATE = PHONE_RATE
FRAME = RATE // 50  # 20 ms
TONE_PROMPTS = {"beep.wav", "confbridge-leave.wav"}  # prompts that hold a real tone


class NaiveBeepTracker(ToneTracker):
    """Frequency and duration only: what the checks in ToneTracker are for."""

    def _judge(self, run: rules._Run, next_tone: bool = False) -> list[ToneEvent]:
        start, end, freq = run.span()
        if (
            rules.BEEP_HZ[0] <= freq <= rules.BEEP_HZ[1]
            and rules.BEEP_S[0] - rules.HOP_S / 2 <= end - start <= rules.BEEP_S[1]
        ):
            return [ToneEvent(ToneKind.BEEP, start, end, freq, self.audio_s)]
        return []


def track(pcm: np.ndarray, naive: bool = False) -> tuple[list[ToneEvent], float]:
    """Events for int16 8 kHz audio fed in 20 ms frames, and the CPU seconds it took."""
    audio = pcm.astype(np.float32) / 32768
    tracker = NaiveBeepTracker(RATE) if naive else ToneTracker(RATE)
    t0 = time.process_time()
    for i in range(0, len(audio), FRAME):
        tracker.feed(audio[i : i + FRAME])
    tracker.end()
    return tracker.events, time.process_time() - t0


def channel(rng: random.Random) -> ChannelParams:
    return ChannelParams(
        snr_db=rng.choice([float("inf"), 40.0, 30.0, 20.0, 15.0]),
        gain_db=rng.uniform(-12.0, 0.0),
        codec=rng.choice([Encoding.ULAW, Encoding.ULAW, Encoding.ALAW]),
    )


def speak(speaker: PiperSpeaker, text: str, rng: random.Random) -> np.ndarray:
    import soxr

    audio = speaker.speak(fill(text, rng).replace("|", " "), rng)
    return np.asarray(soxr.resample(audio, speaker.rate, RATE), np.float32)


def beep_trials(speaker: PiperSpeaker, n: int, greetings: int, seed: int) -> dict[str, object]:
    rng = random.Random(seed)
    machine = [t for t in load_templates() if t.label == "machine"]
    spoken = [speak(speaker, t.text, rng) for t in rng.sample(machine, greetings)]
    found = {"ours": 0, "naive": 0}
    delays: list[float] = []
    end_errors: list[float] = []
    misses: list[dict[str, float]] = []
    for k in range(n):
        greeting = spoken[k % len(spoken)]
        peak = float(np.max(np.abs(greeting))) or 1.0
        freq, seconds = rng.uniform(400, 2000), rng.uniform(0.1, 1.5)
        level = 20 * np.log10(peak) + rng.uniform(-12.0, 3.0)
        gap = rng.uniform(0.2, 1.0)
        pieces = [greeting, signal.silence(gap, RATE), signal.tones((freq,), seconds, RATE, level)]
        audio = np.concatenate([*pieces, signal.silence(2.0, RATE)])
        truth_end = sum(len(p) for p in pieces) / RATE
        pcm = _through_channel(audio, channel(rng), k)
        for name in found:
            events, _ = track(pcm, naive=name == "naive")
            beeps = [e for e in events if e.kind is ToneKind.BEEP]
            hit = len(beeps) == 1 and abs(beeps[0].end_s - truth_end) <= 0.05
            found[name] += hit
            if name == "ours" and hit:
                delays.append(beeps[0].detected_s - truth_end)
                end_errors.append(beeps[0].end_s - truth_end)
            elif name == "ours":
                misses.append({"freq_hz": round(freq), "seconds": round(seconds, 3)})
    return {
        "beeps": n,
        "found_pct": {name: round(100 * hits / n, 2) for name, hits in found.items()},
        "delay_ms": _percentiles(delays),
        "end_error_ms": _percentiles(end_errors),
        "missed_examples": misses[:10],
    }


def _through_channel(audio: np.ndarray, params: ChannelParams, seed: int) -> np.ndarray:
    # telephone() scales the loudest sample to -3 dBFS less the gain: levels stay relative.
    return telephone(audio, RATE, params, seed)


def false_alarms(speaker: PiperSpeaker, seed: int, root: Path | None) -> dict[str, object]:
    rng = random.Random(seed + 1)
    sources: dict[str, list[np.ndarray]] = {"piper speech (every template)": []}
    for k, template in enumerate(load_templates()):
        audio = np.concatenate([speak(speaker, template.text, rng), signal.silence(0.5, RATE)])
        sources["piper speech (every template)"].append(_through_channel(audio, channel(rng), k))
    if root is not None:
        prompts = root / "usr/share/asterisk/sounds/en_US_f_Allison"
        files = sorted(p for p in prompts.rglob("*.wav") if p.name not in TONE_PROMPTS)
        sources["Asterisk prompts"] = [_read(p) for p in files]
        sources["Asterisk music on hold"] = [
            _read(p) for p in sorted((root / "usr/share/asterisk/moh").glob("*.wav"))
        ]
    tones = {
        "ringback": signal.ringback(RATE, cycles=10),
        "busy": signal.busy(RATE, cycles=60),
        "dial tone": signal.dial_tone(RATE, seconds=60.0),
        "DTMF": signal.dtmf("0123456789*#ABCD" * 10, RATE, on_s=0.1, off_s=0.1),
    }
    sources["call-progress tones and DTMF"] = [
        _through_channel(a, ChannelParams(30.0, -6.0, Encoding.ULAW), 0) for a in tones.values()
    ]
    report: dict[str, object] = {}
    cpu_total = audio_total = 0.0
    for name, clips in sources.items():
        hours = sum(len(c) for c in clips) / RATE / 3600
        counts = {"ours": 0, "naive": 0, "fax_or_sit": 0}
        for clip in clips:
            events, cpu = track(clip)
            cpu_total += cpu
            audio_total += len(clip) / RATE
            counts["ours"] += sum(e.kind is ToneKind.BEEP for e in events)
            counts["fax_or_sit"] += sum(e.kind is not ToneKind.BEEP for e in events)
            naive, _ = track(clip, naive=True)
            counts["naive"] += len(naive)
        report[name] = {
            "minutes": round(hours * 60, 1),
            "beeps_ours": counts["ours"],
            "beeps_naive": counts["naive"],
            "fax_or_sit_ours": counts["fax_or_sit"],
            "per_hour_ours": round(counts["ours"] / hours, 2),
            "per_hour_naive": round(counts["naive"] / hours, 1),
        }
    report["tracker_cpu_s_per_audio_hour"] = round(cpu_total / audio_total * 3600, 1)
    return report


def _read(path: Path) -> np.ndarray:
    import soxr

    with wave.open(str(path)) as w:
        x = np.frombuffer(w.readframes(w.getnframes()), np.int16)
        if w.getnchannels() > 1:
            x = x[:: w.getnchannels()]
        if w.getframerate() != RATE:
            y = soxr.resample(x.astype(np.float32) / 32768, w.getframerate(), RATE)
            x = np.clip(y * 32768, -32768, 32767).astype(np.int16)
    return x


def _percentiles(values: list[float]) -> dict[str, float] | None:
    if not values:
        return None
    ms = np.array(values) * 1000
    q = np.percentile(ms, [50, 95])
    return {
        "p50": round(float(q[0]), 1),
        "p95": round(float(q[1]), 1),
        "max": round(float(ms.max()), 1),
        "min": round(float(ms.min()), 1),
    }


def asterisk_root() -> Path | None:
    from tests.asterisk.root import ensure_root, why_not_supported

    if (reason := why_not_supported()) is not None:
        print(f"(no Asterisk root: {reason}; prompts and music skipped)", file=sys.stderr)
        return None
    try:
        return ensure_root()
    except Exception as exc:  # no network, no debootstrap: measure without it
        print(f"(no Asterisk root: {exc}; prompts and music skipped)", file=sys.stderr)
        return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--beeps", type=int, default=300)
    parser.add_argument("--greetings", type=int, default=40)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    speaker = PiperSpeaker()
    report = {
        "detection": beep_trials(speaker, args.beeps, args.greetings, args.seed),
        "false_alarms": false_alarms(speaker, args.seed, asterisk_root()),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
