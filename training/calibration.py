"""Calibrating the classifier on held-out recordings: a scale for its log-odds per window.

A classifier fit on one side of the split is surer of itself than it has reason to be on
the other side (new voices, new wording). Temperature scaling fixes that: the held-out
asks' log-odds are multiplied by the scale that gives them the least log loss, and the
runtime applies the same scale. How much it must shrink depends on how much was heard:
the first words of a call could open a greeting or a person's answer, so an ask at 2 s is
overconfident by more than one at 5 s. So each window the held-out asks were cut at gets
its own scale (``ClassifierModel.window_scales``) when it has ``MIN_ASKS_PER_WINDOW`` asks
of both labels; ``logit_scale``, one scale over all asks, stays for asks without timing
and is the fallback. With one parameter per window there is little to overfit;
``split_half_check`` measures it anyway, fitting on the recordings of half the held-out
templates and checking the calls of the other half.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.optimize import minimize_scalar

from bridge.engine.classifier import AmdClassifier, WindowScales, probability
from bridge.session.call import DecisionPolicy
from training.classifier import Example, accepted_ask

SCALE_BOUNDS = (0.05, 4.0)
MIN_ASKS_PER_WINDOW = 100  # held-out asks (of both labels) a window needs for its own scale


@dataclass(frozen=True)
class Ask:
    """One analysis of a call: the window, the classifier's log-odds of human, the truth."""

    recording: str
    window_s: float
    logit: float
    human: bool
    has_speech: bool


def asks_of(clf: AmdClassifier, examples: Sequence[Example]) -> list[Ask]:
    probs = clf.proba_human_batch([e.text for e in examples], [e.timing for e in examples])
    return [
        Ask(e.recording or "", e.window_s or 0.0, _logit(p), e.label == 1, e.timing.has_speech)
        for e, p in zip(examples, probs, strict=True)
        if e.timing is not None
    ]


def _logit(p: float) -> float:
    p = min(max(p, 1e-12), 1 - 1e-12)
    return math.log(p / (1 - p))


def fit_scale(asks: Sequence[Ask]) -> float:
    """The scale of the log-odds with the least log loss on ``asks``."""
    z = np.array([a.logit for a in asks])
    y = np.array([a.human for a in asks], dtype=np.float64)

    def loss(scale: float) -> float:
        s = scale * z
        return float(np.mean(np.logaddexp(0.0, s) - y * s))

    found = minimize_scalar(loss, bounds=SCALE_BOUNDS, method="bounded")
    return float(found.x)


def fit_window_scales(asks: Sequence[Ask]) -> WindowScales | None:
    """A scale per window of ``asks``, or None where there are fewer than two windows or
    one has too few asks of either label to fit its own."""
    by_window: dict[float, list[Ask]] = {}
    for a in asks:
        by_window.setdefault(a.window_s, []).append(a)
    if len(by_window) < 2:
        return None
    for window_asks in by_window.values():
        humans = sum(a.human for a in window_asks)
        if len(window_asks) < MIN_ASKS_PER_WINDOW or humans in (0, len(window_asks)):
            return None
    windows = sorted(by_window)
    return WindowScales(tuple(windows), tuple(fit_scale(by_window[w]) for w in windows))


Scale = float | WindowScales  # one scale for every ask, or one per window


def _scale_at(scale: Scale, window_s: float) -> float:
    return scale.at(window_s) if isinstance(scale, WindowScales) else scale


def decided_calls(asks: Sequence[Ask], scale: Scale, threshold: float) -> list[tuple[float, bool]]:
    """The session's rule on each call (asks in window order, the first whose
    confidence reaches ``threshold`` decides): the decided calls' (confidence, right)."""
    policy = DecisionPolicy(threshold=threshold, final_threshold=threshold)
    calls: dict[str, tuple[bool, list[tuple[float, float, bool]]]] = {}
    for a in asks:
        p = probability(_scale_at(scale, a.window_s) * a.logit)
        calls.setdefault(a.recording, (a.human, []))[1].append((a.window_s, p, a.has_speech))
    out = []
    for human, call_asks in calls.values():
        accepted = accepted_ask(call_asks, policy)
        if accepted is not None:
            p = accepted[1]
            out.append((max(p, 1 - p), (p >= 0.5) == human))
    return out


def reliability(asks: Sequence[Ask], scale: Scale, threshold: float) -> dict[str, Any]:
    """Per call: how many were decided, their mean stated confidence and share right."""
    calls = len({a.recording for a in asks})
    decided = decided_calls(asks, scale, threshold)
    stated = float(np.mean([c for c, _ in decided])) if decided else None
    right = float(np.mean([r for _, r in decided])) if decided else None
    return {"calls": calls, "decided": len(decided), "mean_stated": stated, "share_right": right}


def template_halves(groups: Iterable[str]) -> tuple[set[str], set[str]]:
    """The templates (or any groups) split in two, every other one in sorted order: the
    halves a split-half check fits on one of and measures on the other."""
    ordered = sorted(set(groups))
    return set(ordered[0::2]), set(ordered[1::2])


def split_half_check(
    asks: Sequence[Ask], group_of: dict[str, str], threshold: float
) -> list[dict[str, Any]]:
    """Fit on the calls of half the templates (``group_of`` a recording's), measure on
    the other half, both ways."""
    halves = template_halves(group_of.get(a.recording, "") for a in asks)
    out = []
    for fit_on, check_on in (halves, halves[::-1]):
        fit_asks = [a for a in asks if group_of.get(a.recording, "") in fit_on]
        check = [a for a in asks if group_of.get(a.recording, "") in check_on]
        if not fit_asks or not check:
            continue
        one = fit_scale(fit_asks)
        scale: Scale = fit_window_scales(fit_asks) or one
        out.append(
            {
                "scale": one,
                **_window_record(scale),
                "before": reliability(check, 1.0, threshold),
                "after": reliability(check, scale, threshold),
            }
        )
    return out


def _window_record(scale: Scale) -> dict[str, Any]:
    if not isinstance(scale, WindowScales):
        return {"window_scales": None}
    return {"window_scales": dict(zip(map(str, scale.windows), scale.scales, strict=True))}


def calibrate(clf: AmdClassifier, held_out: Sequence[Example], threshold: float) -> dict[str, Any]:
    """Fit the scales on ``held_out`` (windowed recordings), set them on ``clf``, and say
    what they changed: per call at ``threshold``, before, with one scale and with a scale
    per window, and the split-half check."""
    asks = asks_of(clf, held_out)
    if not asks or any(e.window_s is None for e in held_out):
        raise ValueError("calibration needs windowed recordings (a manifest of path,label)")
    model = clf.model
    # The examples' log-odds already carry the model's current scales.
    one = fit_scale(asks)
    per_window = fit_window_scales(asks)
    scale: Scale = per_window or one
    group_of = {e.recording or "": e.group for e in held_out}
    old = model.window_scales
    if per_window is not None:
        pairs = zip(per_window.windows, per_window.scales, strict=True)
        model.window_scales = WindowScales(
            per_window.windows, tuple(model.scale_at(w) * s for w, s in pairs)
        )
    elif old is not None:  # too few asks per window this time: the old shape, rescaled
        model.window_scales = WindowScales(old.windows, tuple(v * one for v in old.scales))
    model.logit_scale *= one
    return {
        "logit_scale": model.logit_scale,
        **_window_record(model.window_scales or model.logit_scale),
        "threshold": threshold,
        "held_out_asks": len(asks),
        "before": reliability(asks, 1.0, threshold),
        "one_scale": reliability(asks, one, threshold),
        "after": reliability(asks, scale, threshold),
        "split_half": split_half_check(asks, group_of, threshold),
    }
