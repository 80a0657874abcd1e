"""The threshold schedules of benchmarks/perfect_hearing_replay.py: a schedule with one
threshold is the service's own rule, and its early threshold holds only the early asks."""

from __future__ import annotations

import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks"))

from perfect_hearing_replay import Call, Schedule, outcome, scheduled_ask

from bridge.session.call import DecisionPolicy
from training.classifier import accepted_ask

WINDOWS = (2.0, 3.0, 4.0, 5.0, 6.0, 7.0)


def random_asks(rng: random.Random) -> list[tuple[float, float, bool]]:
    last = rng.choice(WINDOWS[2:])
    return [(w, rng.random(), rng.random() > 0.15) for w in WINDOWS if w <= last][
        ::-1
    ]  # given out of order: the rule sorts them


def test_one_threshold_everywhere_is_the_services_rule():
    rng = random.Random(7)
    for threshold, final in ((0.8, 0.7), (0.84, 0.74), (0.9, 0.95)):
        schedule = Schedule(threshold, threshold, final)
        policy = DecisionPolicy(threshold=threshold, final_threshold=final)
        for _ in range(500):
            asks = random_asks(rng)
            assert scheduled_ask(asks, schedule) == accepted_ask(asks, policy)


def test_the_early_threshold_holds_the_asks_to_three_seconds_only():
    asks = [(2.0, 0.88, True), (3.0, 0.9, True), (4.0, 0.91, True), (5.0, 0.6, True)]
    assert scheduled_ask(asks, Schedule(0.85, 0.85, 0.7)) == (2.0, 0.88)
    assert scheduled_ask(asks, Schedule(0.95, 0.85, 0.7)) == (4.0, 0.91)
    assert scheduled_ask(asks, Schedule(0.95, 0.95, 0.7)) is None  # 0.6 at the last ask
    assert scheduled_ask(asks, Schedule(0.95, 0.95, 0.55)) == (5.0, 0.6)


def test_outcome_counts_right_wrong_and_notsure_per_facet():
    calls = [
        Call([(2.0, 0.9, True)], True, {"background": "none"}),  # right at 2 s
        Call([(2.0, 0.95, True)], False, {"background": "none"}),  # wrong at 2 s
        Call([(2.0, 0.6, True), (3.0, 0.1, True)], False, {"background": "talk"}),  # right, 3 s
        Call([(2.0, 0.6, True), (3.0, 0.4, True)], True, {"background": "talk"}),  # NOTSURE
    ]
    o = outcome(calls, Schedule(0.8, 0.8, 0.7))
    assert o["right_wrong_notsure"] == [0.5, 0.25, 0.25]
    assert o["decision_p50_p90_s"][0] == 2.0
    assert o["right_by"] == {"background: none": [1, 2], "background: talk": [1, 2]}
