"""Calibration of the classifier's log-odds on held-out calls (training.calibration)."""

from __future__ import annotations

import math

import pytest

from training.calibration import Ask, decided_calls, fit_scale, reliability, split_half_check


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
