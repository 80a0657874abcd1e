"""``amd-train evaluate``: how a classifier does on labelled recordings, as JSON, PNG
plots and a markdown summary a person can read.

Two views of the same recordings:

- **Against decision time**: every recording cut at 1.0, 1.5, ... 7.0 s and
  decided at that point, whatever the confidence (accuracy and macro F1 per
  cut), with the confusion matrix at the service's first window (2.0 s).
- **As calls**: every recording streamed through the call session the service
  runs (``AMD_*`` settings apply): the share right, accuracy when decided, the
  classifier's decisions' mean stated confidence beside their share right, NOTSURE
  share, when the decision came (p50, p90), and the engine's compute latency
  percentiles; the same per answer, voice family, channel condition and codec where
  the manifest has those columns (``FACETS``); and, for the decided calls, stated
  confidence against the share right. ``calls.csv`` has every call's answer, so that
  the calls it got wrong can be listed and other thresholds read off without a rerun.
"""

from __future__ import annotations

import asyncio
import csv
import json
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bridge.engine.classifier import AmdClassifier
from bridge.errors import AudioFileError
from bridge.session.decision import Status
from training.classifier import Example, evaluate
from training.manifests import FACETS, LabelledRow, ManifestReport

DECISION_TIMES = (1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0, 5.5, 6.0, 6.5, 7.0)
FIRST_WINDOW_S = 2.0


def by_decision_time(clf: AmdClassifier, examples: Sequence[Example]) -> dict[str, Any]:
    """Accuracy, macro F1 and the confusion matrix per cut, deciding at 0.5 (the
    classifier report's own figures, on each cut's examples)."""
    out: dict[str, Any] = {}
    for window in sorted({e.window_s for e in examples if e.window_s is not None}):
        at = evaluate(clf, [e for e in examples if e.window_s == window])
        out[f"{window:.1f}"] = {
            "n": at["n"],
            "accuracy": at["accuracy"],
            "macro_f1": (at["human"]["f1"] + at["machine"]["f1"]) / 2,
            "confusion": at["confusion"],
        }
    return out


async def as_calls(  # type: ignore[no-untyped-def]
    report: ManifestReport, settings, detector
) -> tuple[dict[str, Any], list[dict[str, str]]]:
    """Stream each recording through the service's call session: the figures, and one
    ``calls.csv`` line per call."""
    from bridge.cli.detect import decide_file, files_at_once
    from bridge.engine import build_batching_engine

    engine = build_batching_engine(settings, detector)
    limit = asyncio.Semaphore(files_at_once(settings))

    async def one(path: Path, label: str) -> tuple[str, Any] | None:
        async with limit:
            try:
                return label, await decide_file(path, settings, engine.analyze)
            except AudioFileError:
                return None

    try:
        rows = [r for r in report.rows if r.path is not None]
        answers = await asyncio.gather(*(one(r.path, r.label) for r in rows))
    finally:
        await engine.aclose()
    kept = [(row, x) for row, x in zip(rows, answers, strict=True) if x is not None]
    results = [x for _, x in kept]
    compute = [d.compute_ms for _, d in results if d.compute_ms is not None]
    q = np.percentile(compute, [50, 90, 99]) if compute else [float("nan")] * 3
    by_facet: dict[str, dict[str, Any]] = {}
    for row, result in kept:
        for facet, value in row.facets:
            by_facet.setdefault(facet, {}).setdefault(value, []).append(result)
    figures = {
        **call_figures(results),
        "compute_ms": {"p50": float(q[0]), "p90": float(q[1]), "p99": float(q[2])},
        "by": {
            facet: {value: call_figures(group) for value, group in sorted(values.items())}
            for facet, values in by_facet.items()
        },
        "reliability": reliability(results),
        "reliability_by_decision_s": reliability_by_decision_time(results),
    }
    return figures, [per_call(row, label, decision) for row, (label, decision) in kept]


CALL_COLUMNS = ("path", "label", "answer", "amdcause", "confidence", "decision_s", "transcript")


def per_call(row: LabelledRow, label: str, decision: Any) -> dict[str, str]:
    """One line of ``calls.csv``: the recording, its label, what the service answered
    (with the cause, the stated confidence and the callee audio it took), what Whisper
    heard by then, and the manifest's facets."""
    confidence = decision.confidence
    return {
        "path": str(row.path),
        "label": label,
        "answer": decision.label,
        "amdcause": decision.amd_cause,
        "confidence": "" if confidence is None else f"{confidence:.4f}",
        "decision_s": f"{decision.decision_audio_s:.2f}",
        "transcript": decision.transcript,
        **{facet: value for facet, value in row.facets if facet != "label"},
    }


def write_calls_csv(path: Path, rows: Sequence[dict[str, str]]) -> None:
    facets = [f for f in FACETS if f not in CALL_COLUMNS and any(f in r for r in rows)]
    fields = list(CALL_COLUMNS) + facets
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fields, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


def call_figures(results: Sequence[tuple[str, Any]]) -> dict[str, Any]:
    """Right share of all calls, accuracy when decided, the classifier's decisions'
    mean stated confidence beside their share right (equal when calibrated), NOTSURE
    share and when the decisions came, for (true label, decision) pairs."""
    decided = [(label, d) for label, d in results if d.status in (Status.HUMAN, Status.MACHINE)]
    correct = sum(d.label == label for label, d in decided)
    when = [d.decision_audio_s for _, d in decided]
    p50, p90 = np.percentile(when, [50, 90]) if when else (None, None)
    # The classifier's decisions: tone decisions (a beep, fax, SIT) state no confidence.
    by_classifier = [(label, d) for label, d in decided if d.proba_human is not None]
    stated = [d.confidence for _, d in by_classifier]
    return {
        "calls": len(results),
        "right_share": correct / max(len(results), 1),
        "accuracy_when_decided": correct / max(len(decided), 1),
        # Of the classifier's decisions: the mean confidence stated, and the share right.
        "stated_confidence": float(np.mean(stated)) if stated else None,
        "right_when_stated": (
            float(np.mean([d.label == label for label, d in by_classifier])) if stated else None
        ),
        "notsure_share": 1 - len(decided) / max(len(results), 1),
        "decision_s": {
            "mean": float(np.mean(when)) if when else None,
            "p50": None if p50 is None else float(p50),
            "p90": None if p90 is None else float(p90),
            "max": float(np.max(when)) if when else None,
        },
    }


# Confidence bins of the decisions (a decision needs AMD_THRESHOLD, 0.8 by default).
RELIABILITY_BINS = (0.5, 0.8, 0.9, 0.95, 0.99, 1.0)
# The reliability plot joins only the bins with at least this many calls.
RELIABILITY_LINE_MIN_CALLS = 10


def _classifier_decisions(results: Sequence[tuple[str, Any]]) -> list[tuple[Any, float, bool]]:
    """The decided calls the classifier decided (tones state no confidence): each as
    (decision, stated confidence, right)."""
    return [
        (d, d.confidence, d.label == label)
        for label, d in results
        if d.status in (Status.HUMAN, Status.MACHINE) and d.proba_human is not None
    ]


def _stated_and_right(pairs: Sequence[tuple[float, bool]]) -> dict[str, Any]:
    return {
        "n": len(pairs),
        "stated": float(np.mean([c for c, _ in pairs])),
        "right": float(np.mean([r for _, r in pairs])),
    }


def reliability(results: Sequence[tuple[str, Any]]) -> list[dict[str, Any]]:
    """For the decided calls, per bin of stated confidence: how many, the mean stated
    confidence and the share right (a calibrated 0.9 is right 90% of the time)."""
    pairs = [(c, r) for _, c, r in _classifier_decisions(results)]
    out = []
    for low, high in zip(RELIABILITY_BINS[:-1], RELIABILITY_BINS[1:], strict=True):
        inside = [(c, r) for c, r in pairs if low <= c < high or (high == 1.0 and c == 1.0)]
        if inside:
            out.append({"bin": f"{low:.2f}-{high:.2f}", **_stated_and_right(inside)})
    return out


def reliability_by_decision_time(results: Sequence[tuple[str, Any]]) -> list[dict[str, Any]]:
    """For the classifier's decisions, per second of callee audio they were taken in
    (2 to 3 s, 3 to 4 s, ...): how many, the mean stated confidence and the share right.
    Each ask's scale is fit on every call's ask at that length, most of them clear; the
    calls still asked late are the hard ones, and this shows whether they get what they
    state."""
    by_second: dict[int, list[tuple[float, bool]]] = {}
    for d, stated, right in _classifier_decisions(results):
        second = math.floor(d.decision_audio_s + 1e-6)  # an ask at 3.0 s is in 3-4 s
        by_second.setdefault(second, []).append((stated, right))
    return [
        {"from_s": float(second), "to_s": float(second + 1), **_stated_and_right(pairs)}
        for second, pairs in sorted(by_second.items())
    ]


def write_report(
    out_dir: Path, record: dict[str, Any], calls: Sequence[dict[str, str]] = ()
) -> list[Path]:
    """report.json, report.md, calls.csv (when ``calls`` has lines) and the plots; returns
    the files written."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    written = [out_dir / "report.json", out_dir / "report.md"]
    written[0].write_text(json.dumps(record, indent=2) + "\n")
    if calls:
        write_calls_csv(out_dir / "calls.csv", calls)
        written.append(out_dir / "calls.csv")
    times = record["by_decision_time"]
    xs = [float(t) for t in times]
    counts = sorted({times[t]["n"] for t in times})
    n = str(counts[0]) if len(counts) == 1 else f"{counts[0]}-{counts[-1]}"
    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    ax.plot(xs, [times[t]["accuracy"] for t in times], marker="o", label="accuracy")
    ax.plot(xs, [times[t]["macro_f1"] for t in times], marker="s", label="macro F1")
    ax.set_xlabel("decision time (s of callee audio)")
    ax.set_ylabel("accuracy, macro F1")
    ax.set_ylim(0, 1.01)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    ax.set_title(
        f"Always deciding at that time (HUMAN if P(human) >= 0.5)\n{n} recordings", fontsize=10
    )
    fig.tight_layout()
    written.append(out_dir / "accuracy_by_time.png")
    fig.savefig(written[-1], dpi=100)
    plt.close(fig)
    confusion = (
        times[f"{FIRST_WINDOW_S:.1f}"]["confusion"] if f"{FIRST_WINDOW_S:.1f}" in times else None
    )
    if confusion is not None:
        grid = np.array(
            [
                [confusion["true_human"]["human"], confusion["true_human"]["machine"]],
                [confusion["true_machine"]["human"], confusion["true_machine"]["machine"]],
            ]
        )
        fig, ax = plt.subplots(figsize=(3.8, 3.4))
        ax.imshow(grid, cmap="Blues", vmin=0, vmax=max(int(grid.max()), 1))
        dark = grid.max() / 2
        for (i, j), value in np.ndenumerate(grid):  # white on dark cells, black on light
            color = "white" if value > dark else "black"
            ax.text(j, i, str(value), ha="center", va="center", color=color, fontsize=13)
        ax.set_xticks([0, 1], ["human", "machine"])
        ax.set_yticks([0, 1], ["human", "machine"])
        ax.set_xlabel("decided")
        ax.set_ylabel("true")
        ax.set_title(
            f"Decided at {FIRST_WINDOW_S:.1f} s ({int(grid.sum())} recordings)", fontsize=10
        )
        fig.tight_layout()
        written.append(out_dir / "confusion_2s.png")
        fig.savefig(written[-1], dpi=100)
        plt.close(fig)
    bins = record["as_calls"].get("reliability") or []
    if bins:
        fig, ax = plt.subplots(figsize=(4.2, 4.0))
        ax.plot([0.5, 1.0], [0.5, 1.0], color="grey", linestyle="--", label="calibrated")
        # the line joins the bins with enough calls to say something; a bin of a few
        # calls is a marker only, with its count
        joined = [b for b in bins if b["n"] >= RELIABILITY_LINE_MIN_CALLS]
        ax.plot([b["stated"] for b in joined], [b["right"] for b in joined], label="decisions")
        for b in bins:
            if b["n"] < RELIABILITY_LINE_MIN_CALLS:
                ax.annotate(
                    f"{b['n']} calls",
                    (b["stated"], b["right"]),
                    textcoords="offset points",
                    xytext=(-8, 6),
                    ha="right",
                    fontsize=8,
                )
        ax.scatter(
            [b["stated"] for b in bins],
            [b["right"] for b in bins],
            s=[8 + 2 * b["n"] for b in bins],  # the area says how many calls
            alpha=0.7,
        )
        ax.set_xlim(0.5, 1.04)  # room for the largest markers
        ax.set_ylim(0.5, 1.02)
        ax.set_xlabel("stated confidence (mean of the bin)")
        ax.set_ylabel("share right")
        ax.grid(alpha=0.3)
        ax.legend(loc="upper left")
        ax.set_title(
            "Decided calls: stated confidence against the\n"
            "share right (marker area: calls in the bin)",
            fontsize=10,
        )
        fig.tight_layout()
        written.append(out_dir / "reliability.png")
        fig.savefig(written[-1], dpi=100)
        plt.close(fig)
    written[1].write_text(markdown(record))
    return written


def markdown(record: dict[str, Any]) -> str:
    times = record["by_decision_time"]
    calls = record["as_calls"]
    lines = [
        f"# AMD evaluation: {record['source']}",
        "",
        f"{record['recordings']} recordings ({record['bad_rows']} unusable rows skipped), "
        f"classifier `{record['classifier']}`, {record['made']}.",
        "",
        "## Deciding at each point in time",
        "",
        "| decision time | accuracy | macro F1 | n |",
        "|---|---|---|---|",
        *(
            f"| {t} s | {v['accuracy']:.1%} | {v['macro_f1']:.3f} | {v['n']} |"
            for t, v in times.items()
        ),
        "",
        "![accuracy by decision time](accuracy_by_time.png)",
        "",
        "## As calls, through the service's session",
        "",
        f"- right: {calls['right_share']:.1%} of the calls",
        f"- accuracy when decided: {calls['accuracy_when_decided']:.1%}; the classifier's "
        f"decisions stated {_share(calls['stated_confidence'])} on average and were right "
        f"{_share(calls['right_when_stated'])}",
        f"- NOTSURE: {calls['notsure_share']:.1%}",
        f"- decision at {calls['decision_s']['mean'] or 0:.2f} s of audio on average "
        f"(p50 {_seconds(calls['decision_s']['p50'])}, p90 {_seconds(calls['decision_s']['p90'])}, "
        f"latest {calls['decision_s']['max'] or 0:.1f} s)",
        "- engine time of the batch that held each analysis: "
        f"p50 {calls['compute_ms']['p50']:.1f} ms, p90 {calls['compute_ms']['p90']:.1f} ms, "
        f"p99 {calls['compute_ms']['p99']:.1f} ms",
        "",
        f"![confusion matrix at {FIRST_WINDOW_S:.1f} s](confusion_2s.png)",
        "",
    ]
    for facet, values in calls.get("by", {}).items():
        lines += [
            f"### By {facet.replace('_', ' ')}",
            "",
            "| " + facet + " | calls | right | accuracy when decided "
            "| classifier's decisions: stated / right | NOTSURE | decision p50 | decision p90 |",
            "|---|---|---|---|---|---|---|---|",
            *(
                f"| {value} | {v['calls']} | {v['right_share']:.1%} "
                f"| {v['accuracy_when_decided']:.1%} "
                f"| {_share(v['stated_confidence'])} / {_share(v['right_when_stated'])} "
                f"| {v['notsure_share']:.1%} "
                f"| {_seconds(v['decision_s']['p50'])} | {_seconds(v['decision_s']['p90'])} |"
                for value, v in values.items()
            ),
            "",
        ]
    if calls.get("reliability"):
        lines += [
            "### Stated confidence against the share right (decided calls)",
            "",
            "| confidence | calls | mean stated | right |",
            "|---|---|---|---|",
            *(
                f"| {b['bin']} | {b['n']} | {b['stated']:.3f} | {b['right']:.1%} |"
                for b in calls["reliability"]
            ),
            "",
            "![reliability](reliability.png)",
            "",
        ]
    if calls.get("reliability_by_decision_s"):
        lines += [
            "### Stated confidence against the share right, by when the call was decided",
            "",
            "| decided in | calls | mean stated | right |",
            "|---|---|---|---|",
            *(
                f"| {b['from_s']:.0f}-{b['to_s']:.0f} s | {b['n']} | {b['stated']:.3f} "
                f"| {b['right']:.1%} |"
                for b in calls["reliability_by_decision_s"]
            ),
            "",
        ]
    return "\n".join(lines)


def _share(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} s"


def made() -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
