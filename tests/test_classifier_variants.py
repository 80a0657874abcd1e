"""The evidence from earlier asks and the calibration on undecided calls behind
benchmarks/classifier_variants_replay.py."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks"))

from classifier_variants_replay import paired, undecided_scales, with_previous
from decision_rule_replay import Heard

from bridge.session.call import DecisionPolicy
from bridge.session.decision import TimingFeatures
from training.calibration import Ask, fit_scale
from training.classifier import Example

SPEECH = TimingFeatures(0.2, 1.5, 0.3, 1, 2.0)


def ask(call: str, window: float, text: str = "", human: bool = True) -> Heard:
    return Heard(Example(text, SPEECH, int(human), "g", window, call, "test"), -0.5, "none")


def test_each_ask_carries_the_previous_asks_log_odds_and_how_much_it_repeats():
    heard = [
        ask("a", 3.0, "Hello? Who is this"),  # listed first, asked second
        ask("a", 2.0, "Hello, who"),
        ask("b", 2.0, "The traffic"),
        ask("b", 3.0, "Thanks for watching"),  # under talk: nothing of the last ask again
    ]
    z = np.array([1.5, 0.5, -0.2, 0.3])
    f = with_previous(heard, z)
    assert f[1].tolist() == [0.5, 0.0, 0.0, 1.0]  # a's first ask: nothing before it
    assert f[0].tolist() == [1.5, 0.5, 1.0, 1.0]  # both words of "hello who" again, in order
    assert f[2].tolist() == [-0.2, 0.0, 0.0, 1.0]
    assert f[3].tolist() == [0.3, -0.2, 1.0, 0.0]


def test_later_scales_are_fit_on_the_calls_the_earlier_asks_left_undecided():
    # 60 clear calls (log-odds +-4 at both asks, always right) and 60 hard ones: at 2 s
    # +-0.5, right half the time (never taken); at 3 s +-2, right 7 times in 10.
    heard, z = [], []
    for i in range(120):
        human = bool(i % 2)
        sign = 1.0 if human else -1.0
        heard += [ask(f"c{i}", 2.0, human=human), ask(f"c{i}", 3.0, human=human)]
        if i < 60:
            z += [4.0 * sign, 4.0 * sign]
        else:
            z += [0.5 * sign * (1 if i % 4 < 2 else -1), 2.0 * sign * (1 if i % 10 < 7 else -1)]
    z_all = np.array(z)
    policy = DecisionPolicy(max_window_s=3.0)
    scales = undecided_scales(heard, z_all, list(range(len(heard))), policy)
    at_3s = [i for i, h in enumerate(heard) if h.example.window_s == 3.0]
    every_call = fit_scale(
        [Ask("", 3.0, z_all[i], heard[i].example.label == 1, True) for i in at_3s]
    )
    # the hard calls alone: sigmoid(2 s) = 0.7, s = ln(7/3) / 2
    assert scales[3.0] == pytest.approx(np.log(7 / 3) / 2, abs=0.02)
    assert every_call > 1.5 * scales[3.0], "every call's ask at 3 s makes its log-odds look surer"


def test_paired_timing_adds_every_product_of_two_standardised_inputs():
    n = len(SPEECH.as_vector())
    e = paired(ask("a", 2.0).example, np.zeros(n), np.full(n, 2.0))
    assert e.timing is not None
    v = e.timing.as_vector()
    assert len(v) == n + n * (n + 1) // 2
    assert v[:n] == pytest.approx(SPEECH.as_vector())  # the classifier standardises these
    half = np.asarray(SPEECH.as_vector()) / 2
    assert v[n] == pytest.approx(half[0] * half[0]) and v[n + 1] == pytest.approx(half[0] * half[1])
