"""Calibration of the classifier's log-odds on held-out calls (training.calibration)."""

from __future__ import annotations

import math

import pytest

from bridge.engine.classifier import WindowScales
from training.calibration import (
    MIN_ASKS_PER_WINDOW,
    Ask,
    decided_calls,
    fit_scale,
    fit_window_scales,
    reliability,
    split_half_check,
)


def overconfident_calls(n: int = 200) -> list[Ask]:
    """Each call asked at 2 s and 3 s with log-odds +-3 (stated 0.95), right 3 times in 4."""
    asks = []
    for i in range(n):
        human = i % 2 == 0
        says_human = human if i % 4 < 3 else not human
        z = 3.0 if says_human else -3.0
        for window in (2.0, 3.0):
            asks.append(Ask(f"call{i}", window, z, human, has_speech=True))
    return asks


def test_the_scale_makes_an_overconfident_classifier_state_what_it_gets_right():
    asks = overconfident_calls()
    scale = fit_scale(asks)
    assert scale == pytest.approx(math.log(3) / 3, rel=1e-3)  # sigmoid(3 * scale) = 0.75
    before, after = reliability(asks, 1.0, 0.7), reliability(asks, scale, 0.7)
    assert before["mean_stated"] == pytest.approx(0.9526, abs=1e-3)
    assert before["share_right"] == after["share_right"] == pytest.approx(0.75)
    assert after["mean_stated"] == pytest.approx(0.75, abs=1e-3)
    assert reliability(asks, scale, 0.8)["decided"] == 0  # 0.75 never reaches 0.8


def test_the_first_ask_that_reaches_the_threshold_decides_and_silence_never_does():
    asks = [
        Ask("a", 3.0, 4.0, True, True),
        Ask("a", 2.0, -4.0, True, True),  # asked first although listed second: wrong
        Ask("b", 2.0, 4.0, True, False),  # no speech yet: not accepted
        Ask("b", 3.0, 0.1, True, True),  # too unsure
    ]
    decided = decided_calls(asks, 1.0, 0.8)
    assert decided == [(pytest.approx(1 / (1 + math.exp(-4.0))), False)]


def test_the_split_half_check_fits_on_one_half_and_measures_the_other():
    asks = overconfident_calls()
    groups = {f"call{i}": f"template{(i // 4) % 10}" for i in range(200)}
    halves = split_half_check(asks, groups, 0.7)
    assert len(halves) == 2
    for half in halves:
        assert half["after"]["calls"] == 100
        assert half["after"]["mean_stated"] == pytest.approx(half["after"]["share_right"], abs=0.05)


def test_the_offline_replay_takes_the_last_ask_as_the_final_one():
    from bridge.session.call import DecisionPolicy
    from training.classifier import accepted_ask

    asks = [(5.0, 0.72, True), (2.0, 0.75, True), (3.0, 0.6, True)]  # any order
    assert accepted_ask(asks, DecisionPolicy(final_threshold=0.8)) is None
    assert accepted_ask(asks, DecisionPolicy(final_threshold=0.7)) == (5.0, 0.72)
    assert accepted_ask(asks, DecisionPolicy(threshold=0.74)) == (2.0, 0.75)
    assert accepted_ask([(5.0, 0.72, False)], DecisionPolicy(final_threshold=0.7)) is None
    # no speech by the initial silence: the session says NOTSURE there, asks no more
    late = [(2.0, 0.5, False), (3.0, 0.5, False), (4.0, 0.9, True)]
    assert accepted_ask(late, DecisionPolicy(initial_silence_s=3.0)) is None
    assert accepted_ask(late, DecisionPolicy(initial_silence_s=4.0)) == (4.0, 0.9)


def calls_surer_late(n: int = 200) -> list[Ask]:
    """Each call asked at 2 s and 5 s with log-odds +-3 (stated 0.95): right 3 times in 4
    at 2 s, 19 times in 20 at 5 s, as the first words of a call are more often wrong."""
    asks = []
    for i in range(n):
        human = i % 2 == 0
        for window, right in ((2.0, i % 4 < 3), (5.0, i % 20 != 19)):
            z = 3.0 if human == right else -3.0
            asks.append(Ask(f"call{i}", window, z, human, has_speech=True))
    return asks


def test_each_window_gets_the_scale_that_makes_it_state_what_it_gets_right():
    asks = calls_surer_late()
    scales = fit_window_scales(asks)
    assert scales is not None and scales.windows == (2.0, 5.0)
    assert scales.scales == pytest.approx((math.log(3) / 3, math.log(19) / 3), rel=1e-3)
    # the rule decides every call at its 2 s ask: one scale states more than it gets right
    one = reliability(asks, fit_scale(asks), 0.7)
    per_window = reliability(asks, scales, 0.7)
    assert one["share_right"] == per_window["share_right"] == pytest.approx(0.75)
    assert one["mean_stated"] > 0.8
    assert per_window["mean_stated"] == pytest.approx(0.75, abs=1e-3)


def test_one_scale_where_the_windows_cannot_each_carry_their_own():
    asks = calls_surer_late()
    assert fit_window_scales([a for a in asks if a.window_s == 2.0]) is None  # one window
    few = calls_surer_late(MIN_ASKS_PER_WINDOW - 2)
    assert fit_window_scales(few) is None
    one_label = [a for a in asks if a.window_s == 2.0 or a.human]
    assert fit_window_scales(one_label) is None


def test_calibrate_sets_window_scales_on_the_model_that_survive_its_file(tmp_path):
    from bridge.engine.classifier import AmdClassifier
    from bridge.session.decision import TimingFeatures
    from training.calibration import calibrate
    from training.classifier import Example, fit

    texts = {1: "hello who is this", 0: "please leave a message after the tone"}
    train = [
        Example(texts[y], TimingFeatures(0.5, 1.0, 0.5, 1, 2.0), y, f"t{i}")
        for i, y in enumerate([0, 1] * 10)
    ]
    clf = fit(train, min_df=1)
    held_out = []
    for i in range(120):  # the 2 s asks hear the other label's words a quarter of the time
        human = i % 2
        for window, misheard in ((2.0, i % 4 == 3), (4.0, False)):
            timing = TimingFeatures(0.5, 1.0, 0.5, 1, window)
            text = texts[1 - human if misheard else human]
            held_out.append(Example(text, timing, human, f"h{i // 4}", window, f"call{i}"))
    record = calibrate(clf, held_out, 0.8)
    scales = clf.model.window_scales
    assert isinstance(scales, WindowScales) and scales.windows == (2.0, 4.0)
    assert scales.scales[0] < clf.model.logit_scale < scales.scales[1]
    assert record["window_scales"] == {"2.0": scales.scales[0], "4.0": scales.scales[1]}
    # one scale decides at 2 s, stating more than it gets right; a scale per window
    # leaves the 2 s asks below the threshold and decides at 4 s, where it is right
    one, after = record["one_scale"], record["after"]
    assert one["share_right"] == pytest.approx(0.75) and one["mean_stated"] > 0.85
    assert after["share_right"] == 1.0 and after["mean_stated"] > 0.99
    path = tmp_path / "calibrated.npz"
    clf.save(path)
    assert AmdClassifier.load(path).model.window_scales == scales
