"""``amd-train evaluate``: labelled recordings in, a report a person can read out."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bridge.session.decision import Cause, Decision, Status
from tests.test_engine_real import HUMAN_OPENER, MACHINE_GREETING
from training.report import reliability_by_decision_time

AMD_TRAIN = str(Path(sys.executable).with_name("amd-train"))


def test_the_report_has_accuracy_by_time_calls_latency_and_plots(speech_wav, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    texts = {
        "human": [HUMAN_OPENER, "Hello?", "Yeah, hello, who's calling?"],
        "machine": [
            MACHINE_GREETING,
            "You have reached the voicemail of Anna. Please leave a message after the tone.",
            "The number you have dialed is not in service.",
        ],
    }
    # "file": the seed's name for the column, as bulk-eval writes it; condition and
    # voice are what the report breaks its figures down by.
    rows = ["file,label,condition,background_db,voice"]
    for label, items in texts.items():
        for i, text in enumerate(items):
            name = f"{label}{i}.wav"
            shutil.copy(speech_wav(text, total_s=6.0), data / name)
            level = ("inf", "4.0" if label == "human" else "14.5")[i % 2]
            rows.append(f"{name},{label},{('none', 'babble')[i % 2]},{level},en-gb+f{i}")
    rows.append("missing.wav,machine,none,inf,joe")
    rows.append(",human,none,inf,joe")
    manifest = data / "manifest.csv"
    manifest.write_text("\n".join(rows) + "\n")
    out = tmp_path / "report"
    proc = subprocess.run(
        [AMD_TRAIN, "evaluate", "--manifest", str(manifest), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    assert "6 recordings: accuracy at 2.0 s" in proc.stdout
    assert "2 rows skipped" in proc.stdout
    record = json.loads((out / "report.json").read_text())
    assert record["recordings"] == 6 and record["bad_rows"] == 2
    times = record["by_decision_time"]
    assert list(times) == [f"{0.5 * n:.1f}" for n in range(2, 15)]  # 1.0, 1.5 ... 7.0
    assert all(v["n"] == 6 for v in times.values())
    two = times["2.0"]
    confusion = two["confusion"]
    assert sum(sum(row.values()) for row in confusion.values()) == 6
    correct = confusion["true_human"]["human"] + confusion["true_machine"]["machine"]
    assert two["accuracy"] == correct / 6
    calls = record["as_calls"]
    assert calls["calls"] == 6
    with (out / "calls.csv").open(newline="") as fh:
        per_call = list(csv.DictReader(fh))
    assert 0 < calls["compute_ms"]["p50"] <= calls["compute_ms"]["p99"]
    by = calls["by"]
    assert set(by) == {"label", "voice_family", "condition", "background"}
    assert {k: v["calls"] for k, v in by["label"].items()} == {"human": 3, "machine": 3}
    assert {k: v["calls"] for k, v in by["condition"].items()} == {"babble": 2, "none": 4}
    assert {k: v["calls"] for k, v in by["voice_family"].items()} == {"en-gb": 6}
    assert {k: v["calls"] for k, v in by["background"].items()} == {
        "none": 4,
        "talk 0-10 dB below": 1,
        "talk 10+ dB below": 1,
    }
    for facet in by.values():  # the parts add up to the whole
        right = sum(v["right_share"] * v["calls"] for v in facet.values())
        assert round(right) == round(calls["right_share"] * 6)
    stated = [  # calls.csv: the confidence of the answer given; none for a tone's
        r for r in per_call if r["answer"] != "notsure" and r["confidence"]
    ]
    confidence = sum(float(r["confidence"]) for r in stated) / len(stated)
    # calls.csv rounds to 4 decimals
    assert calls["stated_confidence"] == pytest.approx(confidence, abs=1e-4)
    stated_right = sum(r["answer"] == r["label"] for r in stated) / len(stated)
    assert calls["right_when_stated"] == pytest.approx(stated_right)
    decided = round((1 - calls["notsure_share"]) * 6)
    assert sum(b["n"] for b in calls["reliability"]) == decided
    assert all(0.5 <= b["stated"] <= 1 and 0 <= b["right"] <= 1 for b in calls["reliability"])
    by_time = calls["reliability_by_decision_s"]
    assert sum(b["n"] for b in by_time) == len(stated)  # the classifier's decisions
    for b in by_time:
        inside = [r for r in stated if b["from_s"] <= float(r["decision_s"]) < b["to_s"]]
        assert b["n"] == len(inside)
        assert b["right"] == pytest.approx(sum(r["answer"] == r["label"] for r in inside) / b["n"])
    for png in ("accuracy_by_time.png", "confusion_2s.png", "reliability.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    summary = (out / "report.md").read_text()
    assert "| 2.0 s |" in summary and "accuracy_by_time.png" in summary
    assert "### By condition" in summary and "| babble | 2 |" in summary
    assert "| classifier's decisions: stated / right |" in summary
    assert "by when the call was decided" in summary
    assert [r["path"].rsplit("/", 1)[-1] for r in per_call] == [
        f"{label}{i}.wav" for label in ("human", "machine") for i in range(3)
    ]
    assert {r["background"] for r in per_call} == set(by["background"])
    right = [r for r in per_call if r["answer"] == r["label"]]
    assert len(right) == round(calls["right_share"] * 6)
    for r in per_call:
        assert r["answer"] in ("human", "machine", "notsure")
        assert r["amdcause"].split("-")[0] in ("CLASSIFIER", "LOWCONFIDENCE", "BEEP")
        assert r["amdcause"].endswith(str(round(float(r["decision_s"]) * 1000)))
    assert any(r["transcript"] for r in per_call), "what Whisper heard is there to read"
    bad_rows = (out / "bad-rows.csv").read_text()
    assert "missing.wav" in bad_rows and "empty path" in bad_rows
    again = subprocess.run(
        [AMD_TRAIN, "evaluate", "--manifest", str(manifest), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert again.returncode == 2 and "use --force" in again.stderr


def test_stated_and_right_by_when_the_call_was_decided():
    def classifier(status: Status, p_human: float, at_s: float) -> Decision:
        return Decision(status, Cause.CLASSIFIER, at_s, proba_human=p_human)

    results = [
        ("human", classifier(Status.HUMAN, 0.9, 2.0)),  # right, stated 0.9
        ("machine", classifier(Status.MACHINE, 0.2, 2.0)),  # right, stated 0.8
        ("human", classifier(Status.MACHINE, 0.1, 4.0)),  # wrong, stated 0.9
        ("machine", classifier(Status.MACHINE, 0.3, 4.99)),  # right, stated 0.7
        ("machine", Decision(Status.MACHINE, Cause.BEEP, 3.2)),  # a tone states nothing
        ("human", Decision(Status.NOTSURE, Cause.LOWCONFIDENCE, 7.0, proba_human=0.6)),
    ]
    by_time = reliability_by_decision_time(results)
    assert [(b["from_s"], b["to_s"], b["n"]) for b in by_time] == [(2.0, 3.0, 2), (4.0, 5.0, 2)]
    assert by_time[0]["stated"] == pytest.approx(0.85) and by_time[0]["right"] == 1.0
    assert by_time[1]["stated"] == pytest.approx(0.8) and by_time[1]["right"] == 0.5
