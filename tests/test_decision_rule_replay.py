"""The replay and the call-dependent calibration scale behind
benchmarks/decision_rule_replay.py."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks"))

from decision_rule_replay import (
    Heard,
    changed_recordings,
    file_digest,
    fit_input_scale,
    maximum_windows,
    replay,
    standardised,
    window_scales,
)

from bridge.session.call import DecisionPolicy
from bridge.session.decision import TimingFeatures
from training.classifier import Example

SPEECH = TimingFeatures(0.2, 1.5, 0.3, 1, 2.0)
SILENCE = TimingFeatures(2.0, 0.0, 2.0, 0, 2.0)


def ask(call: str, window: float, human: bool, background: str, timing=SPEECH) -> Heard:
    return Heard(Example("", timing, int(human), "g", window, call, "test"), -0.5, background)


def test_the_replay_takes_the_first_sure_ask_and_counts_per_background():
    asks = [
        (ask("a", 3.0, True, "none"), 0.95),  # listed first, asked second
        (ask("a", 2.0, True, "none"), 0.1),  # sure and wrong: decides
        (ask("b", 2.0, False, "talk", SILENCE), 0.9),  # silence is never taken ...
        (ask("b", 3.0, False, "talk"), 0.05),  # ... so b is decided machine at 3 s: right
        (ask("c", 2.0, False, "talk"), 0.6),  # the last ask, under 0.7: NOTSURE
        (ask("d", 2.0, True, "talk"), 0.75),  # the last ask, over 0.7: right
    ]
    total, when, by = replay(asks, DecisionPolicy())
    assert (total.right, total.wrong, total.notsure) == (2, 1, 1)
    assert sorted(when) == [2.0, 2.0, 3.0]  # a, d at 2 s; b at 3 s
    none, none_gaps = by["none"]
    assert (none.right, none.wrong, none.notsure) == (0, 1, 0)
    assert none_gaps == [pytest.approx(0.9)]  # stated 0.9, wrong: 0.9 overconfident
    talk, talk_gaps = by["talk"]
    assert (talk.right, talk.wrong, talk.notsure) == (2, 0, 1)
    assert sorted(talk_gaps) == [pytest.approx(-0.25), pytest.approx(-0.05)]


def test_the_scale_shrinks_the_log_odds_where_the_input_says_they_mislead():
    rng = np.random.default_rng(0)
    n = 4000
    x = rng.choice([-1.0, 1.0], size=n)  # say, a quiet line (-1) or a loud room (+1)
    z = rng.choice([-3.0, 3.0], size=n)
    # Right 95% of the time on quiet lines, 60% in loud rooms.
    right = rng.random(n) < np.where(x < 0, 0.95, 0.60)
    y = ((z > 0) == right).astype(np.float64)
    a, b = fit_input_scale(z, y, x[:, None])
    quiet, loud = math.exp(a - b), math.exp(a + b)
    assert 1 / (1 + math.exp(-3 * quiet)) == pytest.approx(0.95, abs=0.02)
    assert 1 / (1 + math.exp(-3 * loud)) == pytest.approx(0.60, abs=0.03)


def test_scale_inputs_are_clipped_after_standardising():
    x = np.array([[0.0], [10.0], [-100.0]])
    out = standardised(x, np.array([0.0]), np.array([2.0]))
    assert out[:, 0].tolist() == [0.0, 3.0, -3.0]


def test_a_scale_per_window_states_at_2_s_what_the_2_s_asks_get_right():
    rng = np.random.default_rng(1)
    held, z = [], []
    for n in range(600):  # 2 s asks right 17 times in 20, 5 s asks 19 in 20, all stating 0.95
        human = bool(n % 2)
        for window, p_right in ((2.0, 0.85), (5.0, 0.95)):
            heard = Heard(
                Example("", SPEECH, int(human), f"t{n % 60}", window, f"call{n}", "test"), 0.0, ""
            )
            held.append(heard)
            z.append(3.0 if (rng.random() < p_right) == human else -3.0)
    one, per_window = window_scales(held, np.array(z))
    assert per_window["split_half_log_loss"] < one["split_half_log_loss"]
    assert per_window["their_mean_stated"] < one["their_mean_stated"]
    over = {
        v["per_window"]: v["their_mean_stated"] - v["their_share_right"] for v in (one, per_window)
    }
    assert over[False] > 0.03 and abs(over[True]) < 0.015, over


def test_a_later_maximum_window_decides_the_calls_whose_evidence_comes_late():
    """Half the calls are clear from 2 s; the other half say nothing decisive until 6 s.
    With the last ask at 5 s those are NOTSURE; at 6 or 7 s they are decided, and they
    are the calls that waited past 5 s."""
    rng = np.random.default_rng(2)
    held, z = [], []
    for n in range(800):
        human, late = bool(n % 2), bool((n // 2) % 2)
        for window in (2.0, 3.0, 4.0, 5.0, 6.0, 7.0):
            sure = 4.0 if human else -4.0
            logit = rng.choice([-0.3, 0.3]) if late and window < 6.0 else sure  # late: nothing yet
            held.append(
                Heard(Example("", SPEECH, int(human), f"t{n % 80}", window, f"c{n}", "test"), 0, "")
            )
            z.append(logit)
    by_max = {v["max_window_s"]: v for v in maximum_windows(held, np.array(z))}
    assert by_max[5.0]["right_wrong_notsure"] == pytest.approx((0.5, 0.0, 0.5))
    assert by_max[5.0]["undecided_after_5s"] == {"human": 0.0, "machine": 0.0}
    for last in (6.0, 7.0):
        assert by_max[last]["right_wrong_notsure"] == pytest.approx((1.0, 0.0, 0.0))
        assert by_max[last]["undecided_after_5s"] == pytest.approx({"human": 0.5, "machine": 0.5})
        assert by_max[last]["decision_s"]["p90"] == 6.0
    assert by_max[5.0]["decision_s"]["p50"] == 2.0


def test_a_cache_is_refused_for_recordings_that_are_not_the_files_it_transcribed(
    tmp_path: Path,
) -> None:
    kept, rebuilt, gone = (tmp_path / f"{n}.wav" for n in ("kept", "rebuilt", "gone"))
    for path in (kept, rebuilt, gone):
        path.write_bytes(b"RIFF" + path.name.encode())
    lines = [
        {"recording": str(p), "audio_sha256": file_digest(p), "window_s": w}
        for p in (kept, rebuilt, gone)
        for w in (2.0, 3.0)
    ]
    lines.append({"recording": str(tmp_path / "old.wav"), "window_s": 2.0})  # no digest
    (tmp_path / "old.wav").write_bytes(b"RIFF")
    rebuilt.write_bytes(b"RIFF longer now")
    gone.unlink()
    assert changed_recordings(lines) == [str(rebuilt), str(gone), str(tmp_path / "old.wav")]
    assert changed_recordings(lines[:2]) == []
