"""Changes of the classifier and its calibration, replayed on the held-out calls through
the service's rule, beside the shipped way, from the transcripts of one replay cache.

    python benchmarks/classifier_variants_replay.py --cache replay-cache.jsonl [--json out.json]

The cache is the one ``benchmarks/decision_rule_replay.py`` makes (every recording of the
corpus transcribed at the service's asks, with a digest of each file); a cache whose
recordings changed is refused. The classifier is fit on the training side as the shipped
one is; each ask's probability is scaled per window, the scales fit on the calls of half
the held-out templates and used on the other half (both ways); no tone detector. The
variants, each on the held-out asks at 2-7 s:

1. **Earlier asks as evidence**: the log-odds of the call's previous ask added in, and a
   second-stage logistic fit on the training side's out-of-fold log-odds (5 folds by
   template) over this ask's and the previous ask's log-odds and how much of the previous
   transcript the new one repeats (under loud talk Whisper writes a different room at
   every ask).
2. **Timing that depends on the room**: the ten timing inputs and their pairwise
   products, so that what a pause means can depend on how loud the room is.
3. **A second classifier for loud rooms**: fit on the training asks whose measured
   background speech is at least ``LOUD_BACKGROUND_S``, averaged with the shipped one's
   log-odds on the held-out asks that measure so.
4. **Scales fit on the calls still undecided**: each window's scale fit only on the calls
   that the rule with the earlier windows' scales had not decided (the calls a later ask
   sees are the hard ones).
5. **A calibration curve per window**: ``a * sign(z) * |z| ** g`` instead of ``a * z``.

Each at the default thresholds and at 0.84 / 0.74 (a row that is wrong less often), with
right, wrong, NOTSURE, decision mean / p50 / p90, the loud-talk calls' share right, and
per decision time the decided calls' mean stated confidence against their share right.
Nothing is asserted; the figures are in ``docs/accuracy.md``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy.optimize import minimize
from sklearn.linear_model import LogisticRegression

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from decision_rule_replay import (
    LOUD_TALK,
    Heard,
    replay,
    service_asks,
    split_half_probabilities,
)

from bridge.engine.textfeatures import normalize_text
from bridge.session.call import DecisionPolicy
from bridge.session.decision import TimingFeatures
from training.calibration import Ask, asks_of, fit_scale, template_halves
from training.classifier import Example, accepted_ask, fit

POLICIES = {
    "0.80/0.70 (defaults)": DecisionPolicy(),
    "0.84/0.74": DecisionPolicy(threshold=0.84, final_threshold=0.74),
}
FOLDS = 5
LOUD_BACKGROUND_S = 0.3  # measured background speech (s) that sends an ask to the loud-room model


def logits(model: Any, examples: Sequence[Example]) -> np.ndarray:
    return np.array([a.logit for a in asks_of(model, examples)])


def out_of_fold(train: Sequence[Heard]) -> np.ndarray:
    """Each training ask's log-odds from a classifier fit without its template."""
    groups = sorted({h.example.group for h in train})
    fold = {g: n % FOLDS for n, g in enumerate(groups)}
    z = np.zeros(len(train))
    for k in range(FOLDS):
        inside = [i for i, h in enumerate(train) if fold[h.example.group] == k]
        model = fit([h.example for h in train if fold[h.example.group] != k])
        z[inside] = logits(model, [train[i].example for i in inside])
    return z


def _common_words(before: list[str], now: list[str]) -> int:
    """Length of the longest common subsequence of two word lists."""
    row = [0] * (len(now) + 1)
    for word in before:
        nxt = [0]
        for j, other in enumerate(now):
            nxt.append(row[j] + 1 if word == other else max(row[j + 1], nxt[j]))
        row = nxt
    return row[-1]


def with_previous(heard: Sequence[Heard], z: np.ndarray) -> np.ndarray:
    """Per ask: its log-odds, the call's previous ask's (0 at the first), whether there was
    one, and the share of the previous transcript's words the new one repeats in order."""
    calls: dict[str, list[int]] = {}
    for i, h in enumerate(heard):
        calls.setdefault(h.example.recording or "", []).append(i)
    out = np.zeros((len(heard), 4))
    for asks in calls.values():
        asks.sort(key=lambda i: heard[i].example.window_s or 0.0)
        out[asks[0]] = [z[asks[0]], 0.0, 0.0, 1.0]
        for before, now in zip(asks, asks[1:], strict=False):
            old = normalize_text(heard[before].example.text).split()
            new = normalize_text(heard[now].example.text).split()
            kept = _common_words(old, new) / len(old) if old else 1.0
            out[now] = [z[now], z[before], 1.0, kept]
    return out


def stacked(f: np.ndarray) -> np.ndarray:
    """The second stage's inputs: both log-odds, each times the share repeated, and it."""
    return np.c_[f[:, 0], f[:, 1], f[:, 2], f[:, 0] * f[:, 3], f[:, 1] * f[:, 3], f[:, 3]]


@dataclass(frozen=True)
class PairedTiming(TimingFeatures):
    """The timing inputs followed by the pairwise products of their standardised values."""

    products: tuple[float, ...] = ()

    def as_vector(self) -> list[float]:
        return [*super().as_vector(), *self.products]


def paired(e: Example, mean: np.ndarray, std: np.ndarray) -> Example:
    """``e`` with its timing's pairwise products (inputs standardised by ``mean``, ``std``)."""
    assert e.timing is not None
    v = (np.asarray(e.timing.as_vector()) - mean) / std
    upper = np.triu_indices(len(v))
    timing = PairedTiming(**asdict(e.timing), products=tuple(np.outer(v, v)[upper].tolist()))
    return Example(e.text, timing, e.label, e.group, e.window_s, e.recording, e.split)


def undecided_scales(
    held: Sequence[Heard], z: np.ndarray, idx: Sequence[int], policy: DecisionPolicy
) -> dict[float, float]:
    """Per window, the scale fit on the asks of the calls in ``idx`` that the earlier
    windows' scales left undecided (all of the window's asks where too few are left)."""
    windows = sorted({held[i].example.window_s or 0.0 for i in idx})
    undecided = {held[i].example.recording for i in idx}
    scales: dict[float, float] = {}
    for n, w in enumerate(windows):
        at_w = [i for i in idx if held[i].example.window_s == w]
        left = [i for i in at_w if held[i].example.recording in undecided]
        fit_on = left if len(left) >= 40 else at_w
        scales[w] = fit_scale([Ask("", w, z[i], held[i].example.label == 1, True) for i in fit_on])
        for i in left:
            p = 1 / (1 + math.exp(-scales[w] * z[i]))
            timing = held[i].example.timing
            speech = timing is not None and timing.has_speech
            if policy.accepts(p, speech, final=n == len(windows) - 1):
                undecided.discard(held[i].example.recording)
    return scales


def curve(z: np.ndarray, a: float, g: float) -> np.ndarray:
    out: np.ndarray = a * np.sign(z) * np.abs(z) ** g
    return out


def fit_curve(z: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    def loss(w: np.ndarray) -> float:
        t = curve(z, w[0], w[1])
        return float(np.mean(np.logaddexp(0.0, t) - y * t))

    found = minimize(loss, [0.7, 1.0], method="L-BFGS-B", bounds=[(0.05, 4.0), (0.3, 3.0)]).x
    return float(found[0]), float(found[1])


Calibrator = Callable[[Sequence[Heard], np.ndarray, DecisionPolicy], np.ndarray]


def per_window(held: Sequence[Heard], z: np.ndarray, policy: DecisionPolicy) -> np.ndarray:
    return split_half_probabilities(held, z, per_window=True)


def by_halves(
    held: Sequence[Heard],
    fit_apply: Callable[[list[int], list[int], np.ndarray], None],
) -> np.ndarray:
    halves = template_halves(h.example.group for h in held)
    p = np.zeros(len(held))
    for fit_on, check_on in (halves, halves[::-1]):
        f = [i for i, h in enumerate(held) if h.example.group in fit_on]
        c = [i for i, h in enumerate(held) if h.example.group in check_on]
        fit_apply(f, c, p)
    return p


def undecided_calibration(
    held: Sequence[Heard], z: np.ndarray, policy: DecisionPolicy
) -> np.ndarray:
    def fit_apply(f: list[int], c: list[int], p: np.ndarray) -> None:
        scales = undecided_scales(held, z, f, policy)
        for i in c:
            p[i] = 1 / (1 + math.exp(-scales[held[i].example.window_s or 0.0] * z[i]))

    return by_halves(held, fit_apply)


def curve_calibration(held: Sequence[Heard], z: np.ndarray, policy: DecisionPolicy) -> np.ndarray:
    windows = np.array([h.example.window_s or 0.0 for h in held])
    y = np.array([h.example.label == 1 for h in held], dtype=np.float64)

    def fit_apply(f: list[int], c: list[int], p: np.ndarray) -> None:
        fa, ca = np.array(f), np.array(c)
        for w in sorted(set(windows.tolist())):
            a, g = fit_curve(z[fa[windows[fa] == w]], y[fa[windows[fa] == w]])
            at = ca[windows[ca] == w]
            p[at] = 1 / (1 + np.exp(-curve(z[at], a, g)))

    return by_halves(held, fit_apply)


def figures(held: Sequence[Heard], p: np.ndarray, policy: DecisionPolicy) -> dict[str, Any]:
    total, when, by = replay(list(zip(held, p.tolist(), strict=True)), policy)
    calls: dict[str, list[tuple[float, float, bool]]] = {}
    human: dict[str, bool] = {}
    for h, pi in zip(held, p.tolist(), strict=True):
        recording = h.example.recording or ""
        speech = h.example.timing is not None and h.example.timing.has_speech
        calls.setdefault(recording, []).append((h.example.window_s or 0.0, pi, speech))
        human[recording] = h.example.label == 1
    stated: dict[float, list[tuple[float, bool]]] = {}
    for recording, asks in calls.items():
        accepted = accepted_ask(asks, policy)
        if accepted is not None:
            window, pi = accepted
            stated.setdefault(window, []).append((max(pi, 1 - pi), (pi >= 0.5) == human[recording]))
    loud = by.get(LOUD_TALK)
    return {
        "right_wrong_notsure": total.share(),
        "decision_s": [float(np.mean(when)), *np.percentile(when, [50, 90]).tolist()],
        "loud_talk_right": loud[0].share()[0] if loud else None,
        "stated_right_by_decision_s": {
            str(w): [len(v), float(np.mean([s for s, _ in v])), float(np.mean([r for _, r in v]))]
            for w, v in sorted(stated.items())
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache", type=Path, required=True, help="decision_rule_replay's cache")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    t0 = time.perf_counter()
    _, train, held = service_asks(args.cache, parser)
    z = logits(fit([h.example for h in train]), [h.example for h in held])
    y_train = np.array([h.example.label for h in train])

    second = LogisticRegression(max_iter=2000)
    second.fit(stacked(with_previous(train, out_of_fold(train))), y_train)
    z_stacked = second.decision_function(stacked(with_previous(held, z)))
    previous = with_previous(held, z)

    timing = np.array([h.example.timing.as_vector() for h in train if h.example.timing])
    mean, std = timing.mean(axis=0), np.maximum(timing.std(axis=0), 1e-3)
    z_paired = logits(
        fit([paired(h.example, mean, std) for h in train]),
        [paired(h.example, mean, std) for h in held],
    )

    def loud(h: Heard) -> bool:
        return h.example.timing is not None and (
            h.example.timing.background_speech_s >= LOUD_BACKGROUND_S
        )

    room = fit([h.example for h in train if loud(h)])
    z_room = logits(room, [h.example for h in held])
    z_loud = np.where([loud(h) for h in held], (z + z_room) / 2, z)

    variants: dict[str, tuple[np.ndarray, Calibrator]] = {
        "shipped (scale per window)": (z, per_window),
        "previous ask's log-odds added": (previous[:, 0] + 0.5 * previous[:, 1], per_window),
        "second stage over earlier asks": (z_stacked, per_window),
        "timing inputs and their products": (z_paired, per_window),
        "a second classifier for loud rooms": (z_loud, per_window),
        "scales fit on the undecided calls": (z, undecided_calibration),
        "a calibration curve per window": (z, curve_calibration),
    }
    record: dict[str, Any] = {
        "recordings": {
            "train": len({h.example.recording for h in train}),
            "held_out": len({h.example.recording for h in held}),
        },
        "second_stage_coef": second.coef_[0].tolist(),
        "loud_room_training_asks": sum(loud(h) for h in train),
        "variants": {
            name: {rule: figures(held, cal(held, zz, pol), pol) for rule, pol in POLICIES.items()}
            for name, (zz, cal) in variants.items()
        },
    }
    record["seconds"] = round(time.perf_counter() - t0, 1)
    print(summary(record))
    if args.json:
        args.json.write_text(json.dumps(record, indent=2) + "\n")


def summary(record: dict[str, Any]) -> str:
    r = record["recordings"]
    lines = [
        f"{r['train']} training and {r['held_out']} held-out recordings (asks at 2-7 s, no "
        "tone detector); right / wrong / NOTSURE, decision mean / p50 / p90, loud talk right;",
        "per decision time: calls, mean stated, share right",
    ]
    for name, rules in record["variants"].items():
        lines.append(name)
        for rule, f in rules.items():
            shares = " / ".join(f"{v:.1%}" for v in f["right_wrong_notsure"])
            mean, p50, p90 = f["decision_s"]
            by = " ".join(
                f"{float(w):.0f}s {n} {s:.2f}/{ok:.2f}"
                for w, (n, s, ok) in f["stated_right_by_decision_s"].items()
            )
            lines.append(
                f"  {rule:21s} {shares}  {mean:.2f}/{p50:.1f}/{p90:.1f} s  "
                f"loud {f['loud_talk_right']:.1%}  | {by}"
            )
    lines.append(f"({record['seconds']} s)")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
