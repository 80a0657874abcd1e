"""The service's decision rule replayed offline on the held-out calls: how often it asks,
at what threshold, and whether a confidence that depends on the call would be better
calibrated than the one scale the shipped classifier has.

    python benchmarks/decision_rule_replay.py --corpus build/defaults/corpus \
        [--whisper-model embedded-short] [--cache replay-cache.jsonl] [--json out.json]
        [--asr-tail-silence-s 0.0]

The corpus is what ``amd-train corpus`` writes (``manifest.csv`` with its fixed ``split``
column). Every recording is transcribed once, as ``amd-train classifier`` does it (the
training side at 2, 3, 4, 5, 6 and 7 s, but for the windows after the service's tone
detector would have decided, the held-out side every half second from 2 to 7 s),
with Whisper's mean log-probability per token, and cached in ``--cache`` (a JSON line per
ask, with a digest of the recording's file), so a second run takes seconds; a cache whose
recordings are not the corpus's files any more (a rebuilt corpus) is refused. The
classifier is fit on the training side as the shipped one is (TF-IDF + timing,
logistic), its log-odds scale on the held-out side.
Then, on the held-out calls, without the tone detector:

1. **Ask schedules and thresholds**: asks every second (the default) or every half
   second, at several ``AMD_THRESHOLD`` / ``AMD_FINAL_THRESHOLD`` pairs: right, wrong,
   NOTSURE and when the decisions came, so that schedules can be compared at equal
   error.
2. **A scale that depends on the call**: the log-odds scale as ``exp(a + b . x)``, ``x``
   some standardised inputs (timing, Whisper's log-probability), fit by log loss on the
   calls of half the held-out templates and measured on the other half, both ways; per
   variant the split-half log loss, the rule's outcome, and under loud background talk
   the decided calls' mean stated confidence against their share right.
3. Whisper's log-probability as an input of the classifier instead.
4. **A scale per window** (what ``amd-train classifier --calibrate`` fits): one scale for
   all asks against one per ask length, each fit on the calls of half the held-out
   templates and measured on the other half; the split-half log loss per window, the
   rule's outcome at each threshold pair, and the 2 s asks stated at 0.8 or more: their
   mean stated confidence against their share right.
5. **The maximum window** (``AMD_MAX_WINDOW_S``): the rule with its last ask at 5, 6 and
   7 s, scales per window as in 4: right, wrong, NOTSURE, decision mean, p50 and p90, and
   per label the share of calls still undecided after 5 s (those that wait longer).

Nothing is asserted; the figures are in ``docs/accuracy.md``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy.optimize import minimize

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bridge.cli.audio_files import read_audio_file
from bridge.engine.asr import AsrOptions
from bridge.engine.detector import Transcriber
from bridge.engine.models import resolve_whisper_model
from bridge.session.call import DecisionPolicy
from bridge.session.decision import TIMING_FEATURE_NAMES, TimingFeatures
from training.calibration import Ask, asks_of, fit_scale, fit_window_scales, template_halves
from training.classifier import Example, accepted_ask, fit
from training.manifests import as_16k, read_classification_manifest
from training.tone_asks import asked_windows, tone_decision_s

TRAIN_WINDOWS = (2.0, 3.0, 4.0, 5.0, 6.0, 7.0)
HELD_OUT_WINDOWS = (2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0, 5.5, 6.0, 6.5, 7.0)
MAX_WINDOWS = (5.0, 6.0, 7.0)
# The service's tone rules, watched to the last training window.
TONES = DecisionPolicy(max_window_s=max(TRAIN_WINDOWS))
SCHEDULES = {"every 1 s (default)": TRAIN_WINDOWS, "every 0.5 s": HELD_OUT_WINDOWS}
THRESHOLDS = ((0.78, 0.68), (0.8, 0.7), (0.82, 0.72), (0.84, 0.74), (0.86, 0.76))
LOGPROB = "whisper_logprob"
SCALE_INPUTS = {
    "nothing (shipped)": (),
    "snr_db": ("snr_db",),
    "snr_db, background_speech_s": ("snr_db", "background_speech_s"),
    "the ten timing inputs": TIMING_FEATURE_NAMES,
    "Whisper's log-probability": (LOGPROB,),
    "both": (*TIMING_FEATURE_NAMES, LOGPROB),
}
LOUD_TALK = "talk 0-10 dB below"
INPUT_LIMIT = 3.0  # standard deviations a scale input is clipped to
L2 = 0.01  # on the scale's slopes, not its level


@dataclass(frozen=True)
class Heard:
    """One ask of one recording: what Whisper wrote, how sure it was, the timing."""

    example: Example
    logprob: float
    background: str


class ScoringWhisper:
    """The CTranslate2 model with ``return_scores`` on: each result's score, the mean
    log-probability of its tokens, is kept for the caller (one thread at a time)."""

    def __init__(self, model: Any) -> None:
        self._model = model
        self.scores: list[float] = []
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._model, name)

    def generate(self, *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            results = self._model.generate(*args, **kwargs, return_scores=True)
            self.scores = [r.scores[0] for r in results]
            return results


def transcribe(
    corpus: Path, whisper_model: str, options: AsrOptions | None = None
) -> Iterator[dict[str, Any]]:
    """Every recording at its side's windows, as cache lines."""
    report = read_classification_manifest(corpus / "manifest.csv")
    transcriber = Transcriber(resolve_whisper_model(whisper_model), options or AsrOptions())
    scoring = ScoringWhisper(transcriber.asr.model)
    transcriber.asr.model = scoring
    for n, row in enumerate(report.rows, start=1):
        assert row.path is not None
        fmt, data = read_audio_file(row.path)
        windows = HELD_OUT_WINDOWS
        if row.split == "train":  # the asks amd-train classifier learns from
            windows = tuple(asked_windows(TRAIN_WINDOWS, tone_decision_s(fmt, data, TONES)))
            if not windows:
                continue
        audio = as_16k(fmt, data)
        digest = file_digest(row.path)
        heard = transcriber.hear_batch([audio[: int(w * 16000)] for w in windows])
        background = dict(row.facets).get("background", "")
        for window, h, score in zip(windows, heard, scoring.scores, strict=True):
            yield {
                "recording": str(row.path),
                "audio_sha256": digest,
                "window_s": window,
                "label": row.label,
                "group": row.group,
                "split": row.split,
                "background": background,
                "text": h.asr.text,
                "logprob": score,
                "timing": asdict(h.timing),
                "tail_silence_s": transcriber.asr.options.tail_silence_s,
            }
        if n % 200 == 0:
            print(f"transcribed {n} of {len(report.rows)} recordings", file=sys.stderr)


def file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def changed_recordings(lines: Sequence[dict[str, Any]]) -> list[str]:
    """The cached recordings whose file is gone or is not the one transcribed (or whose
    lines carry no digest: a cache made before they did)."""
    digests: dict[str, set[str | None]] = {}
    for line in lines:
        digests.setdefault(line["recording"], set()).add(line.get("audio_sha256"))
    changed = []
    for recording, made in digests.items():
        path = Path(recording)
        if None in made or not path.is_file() or made != {file_digest(path)}:
            changed.append(recording)
    return changed


def load(lines: Sequence[dict[str, Any]]) -> list[Heard]:
    return [
        Heard(
            Example(
                line["text"],
                TimingFeatures(**line["timing"]),
                int(line["label"] == "human"),
                line["group"],
                line["window_s"],
                line["recording"],
                line["split"],
            ),
            line["logprob"],
            line["background"],
        )
        for line in lines
    ]


def service_asks(
    cache: Path, parser: argparse.ArgumentParser
) -> tuple[list[dict[str, Any]], list[Heard], list[Heard]]:
    """A replay cache's lines, its training asks and its held-out asks at the windows the
    service asks at; a cache whose recordings changed is refused through ``parser``."""
    lines = [json.loads(line) for line in cache.read_text().splitlines()]
    changed = changed_recordings(lines)
    if changed:
        parser.error(f"{cache}: {len(changed)} recordings changed (e.g. {changed[0]})")
    heard = load(lines)
    train = [h for h in heard if h.example.split == "train"]
    held = [h for h in heard if h.example.split == "test" and h.example.window_s in TRAIN_WINDOWS]
    return lines, train, held


@dataclass
class Outcome:
    right: int = 0
    wrong: int = 0
    notsure: int = 0

    def share(self) -> tuple[float, float, float]:
        n = max(self.right + self.wrong + self.notsure, 1)
        return self.right / n, self.wrong / n, self.notsure / n


def replay(
    asks: Sequence[tuple[Heard, float]], policy: DecisionPolicy
) -> tuple[Outcome, list[float], dict[str, tuple[Outcome, list[float]]]]:
    """The session's rule on each call's asks ``(heard, proba_human)``: the outcome, the
    decision times, and per background the outcome with, for each decided call, its
    stated confidence minus 1 if it was right and 0 if wrong (the mean of those is how
    overconfident the decided calls were)."""
    calls: dict[str, list[tuple[Heard, float]]] = {}
    for heard, p in asks:
        calls.setdefault(heard.example.recording or "", []).append((heard, p))
    total, when = Outcome(), []
    by: dict[str, tuple[Outcome, list[float]]] = {}
    for call in calls.values():
        first = call[0][0]
        accepted = accepted_ask(
            [(h.example.window_s or 0.0, p, _has_speech(h)) for h, p in call], policy
        )
        band, gaps = by.setdefault(first.background, (Outcome(), []))
        for outcome in (total, band):
            if accepted is None:
                outcome.notsure += 1
            elif (accepted[1] >= 0.5) == (first.example.label == 1):
                outcome.right += 1
            else:
                outcome.wrong += 1
        if accepted is not None:
            when.append(accepted[0])
            right = (accepted[1] >= 0.5) == (first.example.label == 1)
            gaps.append(max(accepted[1], 1 - accepted[1]) - right)
    return total, when, by


def _has_speech(h: Heard) -> bool:
    return h.example.timing is not None and h.example.timing.has_speech


def raw_inputs(heard: Sequence[Heard], names: Sequence[str]) -> np.ndarray:
    """The named inputs of each ask: timing inputs and Whisper's log-probability."""
    rows = []
    for h in heard:
        assert h.example.timing is not None
        values = dict(zip(TIMING_FEATURE_NAMES, h.example.timing.as_vector(), strict=True))
        values[LOGPROB] = h.logprob
        rows.append([values[n] for n in names])
    return np.array(rows, dtype=np.float64).reshape(len(heard), len(names))


def standardised(x: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """Inputs as the scale takes them: standardised, then clipped."""
    return np.clip((x - mean) / std, -INPUT_LIMIT, INPUT_LIMIT)


def fit_input_scale(z: np.ndarray, y: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``(a, b...)`` of the scale ``exp(a + b . x)`` with the least log loss (L2 on b)."""

    def loss(w: np.ndarray) -> float:
        t = np.exp(w[0] + x @ w[1:]) * z
        return float(np.mean(np.logaddexp(0.0, t) - y * t) + L2 * np.sum(w[1:] ** 2))

    found: np.ndarray = minimize(loss, np.zeros(1 + x.shape[1]), method="L-BFGS-B").x
    return found


def schedules(held: Sequence[Heard], z: np.ndarray) -> list[dict[str, Any]]:
    out = []
    for name, windows in SCHEDULES.items():
        picked = [i for i, h in enumerate(held) if h.example.window_s in windows]
        scale = fit_scale(
            [
                Ask(held[i].example.recording or "", 0.0, z[i], held[i].example.label == 1, True)
                for i in picked
            ]
        )
        for threshold, final in THRESHOLDS:
            asks = [(held[i], 1 / (1 + math.exp(-scale * z[i]))) for i in picked]
            total, when, _ = replay(
                asks, DecisionPolicy(threshold=threshold, final_threshold=final)
            )
            right, wrong, notsure = total.share()
            out.append(
                {
                    "asks": name,
                    "threshold": threshold,
                    "final_threshold": final,
                    "right": right,
                    "wrong": wrong,
                    "notsure": notsure,
                    "decision_s": {
                        "mean": float(np.mean(when)) if when else None,
                        "p50": float(np.percentile(when, 50)) if when else None,
                        "p90": float(np.percentile(when, 90)) if when else None,
                    },
                }
            )
    return out


def room_scales(held: Sequence[Heard], z: np.ndarray) -> list[dict[str, Any]]:
    """Each ``SCALE_INPUTS`` variant, fit on half the templates, measured on the other."""
    y = np.array([h.example.label for h in held], dtype=np.float64)
    halves = template_halves(h.example.group for h in held)
    out = []
    for name, inputs in SCALE_INPUTS.items():
        asks: list[tuple[Heard, float]] = []
        loss = 0.0
        for fit_on, check_on in (halves, halves[::-1]):
            f = np.array([i for i, h in enumerate(held) if h.example.group in fit_on])
            c = np.array([i for i, h in enumerate(held) if h.example.group in check_on])
            raw = raw_inputs([held[i] for i in f], inputs)
            mean, std = raw.mean(axis=0), np.maximum(raw.std(axis=0), 1e-3)
            w = fit_input_scale(z[f], y[f], standardised(raw, mean, std))
            check_x = standardised(raw_inputs([held[i] for i in c], inputs), mean, std)
            t = np.exp(w[0] + check_x @ w[1:]) * z[c]
            loss += float(np.sum(np.logaddexp(0.0, t) - y[c] * t))
            asks += [(held[i], 1 / (1 + math.exp(-ti))) for i, ti in zip(c, t, strict=True)]
        total, _, by = replay(asks, DecisionPolicy())
        loud, gaps = by.get(LOUD_TALK, (Outcome(), []))
        out.append(
            {
                "scale_depends_on": name,
                "split_half_log_loss": loss / len(held),
                "right_wrong_notsure": total.share(),
                "loud_talk": loud.share(),
                "loud_talk_decided_overconfidence": float(np.mean(gaps)) if gaps else None,
            }
        )
    return out


def split_half_probabilities(held: Sequence[Heard], z: np.ndarray, per_window: bool) -> np.ndarray:
    """Each ask's probability of a human, its log-odds ``z`` scaled as fit on the calls of
    the other half of the held-out templates: one scale, or one per window (falling back to
    one where ``fit_window_scales`` finds too few asks)."""
    y = np.array([h.example.label == 1 for h in held])
    windows = np.array([h.example.window_s or 0.0 for h in held])
    halves = template_halves(h.example.group for h in held)
    p = np.zeros(len(held))
    for fit_on, check_on in (halves, halves[::-1]):
        f = [i for i, h in enumerate(held) if h.example.group in fit_on]
        asks = [Ask("", windows[i], z[i], bool(y[i]), True) for i in f]
        one = fit_scale(asks)
        by_window = fit_window_scales(asks) if per_window else None
        for i, h in enumerate(held):
            if h.example.group in check_on:
                scale = by_window.at(windows[i]) if by_window else one
                p[i] = 1 / (1 + math.exp(-scale * z[i]))
    return p


def window_scales(held: Sequence[Heard], z: np.ndarray) -> list[dict[str, Any]]:
    """One scale for every ask against one per window, fit on half the held-out
    templates and measured on the other half, both ways."""
    y = np.array([h.example.label for h in held], dtype=np.float64)
    windows = np.array([h.example.window_s or 0.0 for h in held])
    out = []
    for per_window in (False, True):
        p = np.clip(split_half_probabilities(held, z, per_window), 1e-12, 1 - 1e-12)
        loss = -(y * np.log(p) + (1 - y) * np.log(1 - p))
        first = windows == windows.min()
        sure = first & (np.maximum(p, 1 - p) >= 0.8)
        rules = []
        for threshold, final in THRESHOLDS:
            total, when, _ = replay(
                list(zip(held, p.tolist(), strict=True)),
                DecisionPolicy(threshold=threshold, final_threshold=final),
            )
            rules.append(
                {
                    "threshold": threshold,
                    "final_threshold": final,
                    "right_wrong_notsure": total.share(),
                    "decision_p50_s": float(np.percentile(when, 50)) if when else None,
                    "decision_mean_s": float(np.mean(when)) if when else None,
                }
            )
        out.append(
            {
                "per_window": per_window,
                "split_half_log_loss": float(loss.mean()),
                "log_loss_by_window": {
                    str(w): float(loss[windows == w].mean()) for w in sorted(set(windows))
                },
                "rule": rules,
                "first_window_sure_asks": int(sure.sum()),
                "their_mean_stated": float(np.maximum(p, 1 - p)[sure].mean())
                if sure.any()
                else None,
                "their_share_right": (
                    float(((p >= 0.5) == (y == 1))[sure].mean()) if sure.any() else None
                ),
            }
        )
    return out


def maximum_windows(held: Sequence[Heard], z: np.ndarray) -> list[dict[str, Any]]:
    """The default rule with its last ask at each of ``MAX_WINDOWS``."""
    out = []
    for last in MAX_WINDOWS:
        keep = [i for i, h in enumerate(held) if (h.example.window_s or 0.0) <= last]
        asked = [held[i] for i in keep]
        p = split_half_probabilities(asked, z[keep], per_window=True)
        total, when, _ = replay(list(zip(asked, p.tolist(), strict=True)), DecisionPolicy())
        late = _waited_past(asked, p, 5.0)
        out.append(
            {
                "max_window_s": last,
                "right_wrong_notsure": total.share(),
                "decision_s": {
                    "mean": float(np.mean(when)) if when else None,
                    "p50": float(np.percentile(when, 50)) if when else None,
                    "p90": float(np.percentile(when, 90)) if when else None,
                },
                "undecided_after_5s": late,
            }
        )
    return out


def _waited_past(asked: Sequence[Heard], p: np.ndarray, at_s: float) -> dict[str, float]:
    """Per label, the share of calls the rule decided after ``at_s`` or asked past it and
    left NOTSURE (none where the last ask is at ``at_s``)."""
    calls: dict[str, list[tuple[float, float, bool]]] = {}
    labels: dict[str, int] = {}
    for h, pi in zip(asked, p.tolist(), strict=True):
        recording = h.example.recording or ""
        calls.setdefault(recording, []).append((h.example.window_s or 0.0, pi, _has_speech(h)))
        labels[recording] = h.example.label
    waited = {1: 0, 0: 0}
    count = {1: 0, 0: 0}
    for recording, asks in calls.items():
        accepted = accepted_ask(asks, DecisionPolicy())
        count[labels[recording]] += 1
        last = accepted[0] if accepted else max(window for window, _, _ in asks)
        waited[labels[recording]] += last > at_s
    return {
        name: waited[label] / count[label] if count[label] else 0.0
        for label, name in ((1, "human"), (0, "machine"))
    }


INPUTS_SHOWN = ("snr_db", "background_speech_s", "speech_ratio", LOGPROB)


def inputs_by_background(held: Sequence[Heard], at_s: float = 3.0) -> dict[str, Any]:
    """What the scale could know of the room: each input's median, p10 and p90 per
    background, in the held-out asks at ``at_s``."""
    asks = [h for h in held if h.example.window_s == at_s]
    out: dict[str, Any] = {}
    for band in sorted({h.background for h in asks}):
        x = raw_inputs([h for h in asks if h.background == band], INPUTS_SHOWN)
        out[band] = {
            name: [float(v) for v in np.percentile(x[:, i], [50, 10, 90])]
            for i, name in enumerate(INPUTS_SHOWN)
        }
    return out


def right_by_logprob(held: Sequence[Heard], z: np.ndarray) -> list[dict[str, float]]:
    """Per fifth of Whisper's log-probability, the share of asks the classifier has
    on the right side of 0.5."""
    lp = np.array([h.logprob for h in held])
    right = (z > 0) == np.array([h.example.label == 1 for h in held])
    edges = np.percentile(lp, [0, 20, 40, 60, 80, 100])
    fifth = np.clip(np.searchsorted(edges, lp, side="right") - 1, 0, 4)
    return [
        {
            "from": float(edges[k]),
            "to": float(edges[k + 1]),
            "right": float(right[fifth == k].mean()),
        }
        for k in range(5)
    ]


def as_input(train: Sequence[Heard], held: Sequence[Heard]) -> list[dict[str, Any]]:
    """The classifier with Whisper's log-probability as an eleventh input, against
    without; both on the default schedule with a scale fit on the held-out side."""
    out = []
    for with_logprob in (False, True):
        model = fit([_with_logprob(h) if with_logprob else h.example for h in train])
        default = [h for h in held if h.example.window_s in TRAIN_WINDOWS]
        examples = [_with_logprob(h) if with_logprob else h.example for h in default]
        asks = asks_of(model, examples)
        z = np.array([a.logit for a in asks])
        scale = fit_scale(asks)
        total, _, _ = replay(
            [(h, 1 / (1 + math.exp(-scale * zi))) for h, zi in zip(default, z, strict=True)],
            DecisionPolicy(),
        )
        out.append({"whisper_logprob_as_input": with_logprob, "right_wrong_notsure": total.share()})
    return out


@dataclass(frozen=True)
class _LogprobTiming(TimingFeatures):
    """Timing with Whisper's log-probability appended to the classifier's inputs."""

    logprob: float = 0.0

    def as_vector(self) -> list[float]:
        return [*super().as_vector(), self.logprob]


def _with_logprob(h: Heard) -> Example:
    e = h.example
    assert e.timing is not None
    timing = _LogprobTiming(**asdict(e.timing), logprob=h.logprob)
    return Example(e.text, timing, e.label, e.group, e.window_s, e.recording, e.split)


def _pct(values: Sequence[float]) -> str:
    return " / ".join(f"{v:.1%}" for v in values)


def summary(record: dict[str, Any]) -> str:
    """The figures as a person reads them (``--json`` has them all)."""
    r = record["recordings"]
    lines = [
        f"{r['train']} training and {r['held_out']} held-out recordings; "
        "right / wrong / NOTSURE of the held-out calls",
        "",
        "asks                 thresholds  right / wrong / NOTSURE    decision mean, p50, p90",
    ]
    for s in record["schedules"]:
        d = s["decision_s"]
        when = "-" if d["mean"] is None else f"{d['mean']:.2f}, {d['p50']:.1f}, {d['p90']:.1f} s"
        shares = _pct((s["right"], s["wrong"], s["notsure"]))
        lines.append(
            f"{s['asks']:20s} {s['threshold']:.2f}/{s['final_threshold']:.2f}   {shares:26s} {when}"
        )
    lines += ["", f"scale depends on (split halves)  log loss  (loud talk: {LOUD_TALK})"]
    for v in record["room_scales"]:
        over = v["loud_talk_decided_overconfidence"]
        lines.append(
            f"{v['scale_depends_on']:32s} {v['split_half_log_loss']:.4f}   "
            f"all {_pct(v['right_wrong_notsure'])}; loud talk {_pct(v['loud_talk'])}"
            + ("" if over is None else f", its decided calls overconfident by {over:.3f}")
        )
    lines += ["", "at 3 s, median [p10, p90] of " + ", ".join(INPUTS_SHOWN)]
    for band, values in record["inputs_by_background_at_3s"].items():
        shown = "  ".join(f"{m:.2f} [{lo:.2f}, {hi:.2f}]" for m, lo, hi in values.values())
        lines.append(f"{band or '(none given)':22s} {shown}")
    fifths = record["asks_right_by_logprob_fifth"]
    lines += [
        "",
        "asks on the right side of 0.5, by fifth of Whisper's log-probability: "
        + ", ".join(f"{f['from']:.2f}..{f['to']:.2f} {f['right']:.1%}" for f in fifths),
        "",
    ]
    for v in record["whisper_logprob_as_input"]:
        lines.append(
            f"classifier {'with' if v['whisper_logprob_as_input'] else 'without'} Whisper's "
            f"log-probability as an input: {_pct(v['right_wrong_notsure'])}"
        )
    lines += ["", "one scale or one per window (split halves): log loss; first-window asks at 0.8+"]
    for v in record["window_scales"]:
        name = "per window" if v["per_window"] else "one scale"
        lines.append(
            f"{name:10s} {v['split_half_log_loss']:.4f} "
            f"({', '.join(f'{w} s {x:.4f}' for w, x in v['log_loss_by_window'].items())}); "
            + (
                f"{v['first_window_sure_asks']} asks stated {v['their_mean_stated']:.3f}, "
                f"right {v['their_share_right']:.3f}"
                if v["first_window_sure_asks"]
                else "none stated 0.8"
            )
        )
        for r in v["rule"]:
            lines.append(
                f"    {r['threshold']:.2f}/{r['final_threshold']:.2f}   "
                f"{_pct(r['right_wrong_notsure'])}, decision mean {r['decision_mean_s']:.2f} s, "
                f"p50 {r['decision_p50_s']:.1f} s"
            )
    lines += ["", "maximum window  right / wrong / NOTSURE    decision mean, p50, p90   after 5 s"]
    for v in record["maximum_windows"]:
        d = v["decision_s"]
        late = v["undecided_after_5s"]
        lines.append(
            f"{v['max_window_s']:.0f} s             {_pct(v['right_wrong_notsure']):26s} "
            f"{d['mean']:.2f}, {d['p50']:.1f}, {d['p90']:.1f} s   "
            f"humans {late['human']:.1%}, machines {late['machine']:.1%}"
        )
    lines.append(f"({record['seconds']} s)")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, required=True, help="amd-train corpus output")
    parser.add_argument("--whisper-model", default="embedded-short")
    parser.add_argument("--cache", type=Path, default=Path("replay-cache.jsonl"))
    parser.add_argument(
        "--asr-tail-silence-s",
        type=float,
        default=0.0,
        help="silence appended to each clip before Whisper (the service's "
        "AMD_ASR_TAIL_SILENCE_S); the cache records it, and one made with another value "
        "is refused",
    )
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    t0 = time.perf_counter()
    if not args.cache.exists():
        with args.cache.open("w") as fh:
            options = AsrOptions(tail_silence_s=args.asr_tail_silence_s)
            for line in transcribe(args.corpus, args.whisper_model, options):
                fh.write(json.dumps(line) + "\n")
    lines = [json.loads(line) for line in args.cache.read_text().splitlines()]
    made_with = {line.get("tail_silence_s", 0.0) for line in lines}
    if made_with != {args.asr_tail_silence_s}:
        parser.error(
            f"{args.cache} was transcribed with --asr-tail-silence-s "
            f"{', '.join(map(str, sorted(made_with)))}; give another --cache"
        )
    for side, windows in (("train", TRAIN_WINDOWS), ("test", HELD_OUT_WINDOWS)):
        cached = {line["window_s"] for line in lines if line["split"] == side}
        if cached != set(windows):
            parser.error(
                f"{args.cache} holds {side} asks at {sorted(cached)} s, not at "
                f"{list(windows)} s (made by an earlier version); give another --cache"
            )
    changed = changed_recordings(lines)
    if changed:
        parser.error(
            f"{args.cache}: {len(changed)} of its recordings are not the files it "
            f"transcribed (e.g. {changed[0]}; a rebuilt corpus, or a cache made before it "
            "kept digests); give another --cache"
        )
    heard = load(lines)
    train = [h for h in heard if h.example.split == "train"]
    held = [h for h in heard if h.example.split == "test"]
    model = fit([h.example for h in train])
    z = np.array([a.logit for a in asks_of(model, [h.example for h in held])])
    default = np.array([h.example.window_s in TRAIN_WINDOWS for h in held])
    record = {
        "recordings": {
            "train": len({h.example.recording for h in train}),
            "held_out": len({h.example.recording for h in held}),
        },
        "schedules": schedules(held, z),
        "room_scales": room_scales(
            [h for h, d in zip(held, default, strict=True) if d], z[default]
        ),
        "inputs_by_background_at_3s": inputs_by_background(held),
        "asks_right_by_logprob_fifth": right_by_logprob(
            [h for h, d in zip(held, default, strict=True) if d], z[default]
        ),
        "whisper_logprob_as_input": as_input(train, held),
        "window_scales": window_scales(
            [h for h, d in zip(held, default, strict=True) if d], z[default]
        ),
        "maximum_windows": maximum_windows(
            [h for h, d in zip(held, default, strict=True) if d], z[default]
        ),
        "seconds": round(time.perf_counter() - t0, 1),
    }
    print(summary(record))
    if args.json:
        args.json.write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
