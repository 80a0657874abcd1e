"""``amd-train classifier``: TF-IDF + timing logistic regression with held-out metrics.

From a manifest of transcripts (``text,label``) the model is text-only; from a
manifest of recordings (``path,label``) each file is cut at the decision
windows, run through the real engine (the transcripts the ASR actually
produces, and VAD timing), and the model uses both. The held-out split keeps
all variants of a template on one side. The saved model is refit on all rows.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy import sparse
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GroupShuffleSplit

from bridge.cli.audio_files import read_audio_file
from bridge.engine.classifier import AmdClassifier, ClassifierModel
from bridge.engine.detector import Transcriber
from bridge.engine.textfeatures import AnalyzerConfig, TfidfFeaturizer, fit_vocabulary
from bridge.errors import AudioFileError
from bridge.session.call import DecisionPolicy
from bridge.session.decision import TimingFeatures
from training.manifests import LabelledRow, ManifestReport, as_16k
from training.tone_asks import asked_windows, tone_decision_s

log = logging.getLogger(__name__)
HUMAN = 1


@dataclass(frozen=True)
class Example:
    text: str
    timing: TimingFeatures | None
    label: int  # 1 human, 0 machine
    group: str
    window_s: float | None = None
    recording: str | None = None  # the file a windowed example was cut from
    split: str | None = None  # train|test when the manifest fixes it


def examples_from_manifest(
    report: ManifestReport,
    transcriber_factory: Callable[[], Transcriber],
    windows: Sequence[float],
    batch: int = 16,
    tone_policy: DecisionPolicy | None = None,
) -> list[Example]:
    """Text rows as they are; recordings through the engine at each window. With
    ``tone_policy`` (the service's, tones on), only the windows the service would ask:
    none after its tone detector would have decided the call (``training.tone_asks``)."""
    text_rows = [r for r in report.rows if r.path is None]
    audio_rows = [r for r in report.rows if r.path is not None]
    if text_rows and audio_rows:
        raise ValueError("a manifest must be all transcripts or all recordings, not both")
    if text_rows:
        return [
            Example(r.text or "", None, int(r.label == "human"), r.group, split=r.split)
            for r in text_rows
        ]
    transcriber = transcriber_factory()
    examples: list[Example] = []
    pending: list[tuple[LabelledRow, float, np.ndarray]] = []

    def run() -> None:
        heard = transcriber.hear_batch([clip for _, _, clip in pending])
        for (row, window, _), h in zip(pending, heard, strict=True):
            examples.append(
                Example(
                    h.asr.text,
                    h.timing,
                    int(row.label == "human"),
                    row.group,
                    window,
                    str(row.path),
                    row.split,
                )
            )
        pending.clear()

    for n, row in enumerate(audio_rows, start=1):
        assert row.path is not None
        try:
            fmt, data = read_audio_file(row.path)
            full = as_16k(fmt, data)
            asked = list(windows)
            if tone_policy is not None and tone_policy.tones:
                asked = asked_windows(asked, tone_decision_s(fmt, data, tone_policy))
        except AudioFileError as exc:
            report.bad.append(({"path": str(row.path), "label": row.label}, str(exc)))
            continue
        for window in asked:
            pending.append((row, window, full[: int(window * 16000)]))
        if len(pending) >= batch:
            run()
        if n % 100 == 0:
            log.info("transcribed %d of %d recordings", n, len(audio_rows))
    if pending:
        run()
    return examples


def fit(
    examples: Sequence[Example],
    c: float = 1.0,
    min_df: int = 2,
    analyzer: AnalyzerConfig | None = None,
) -> AmdClassifier:
    cfg = analyzer or AnalyzerConfig()
    vocab, idf = fit_vocabulary((e.text for e in examples), cfg, min_df=min_df)
    featurizer = TfidfFeaturizer(vocab, idf, cfg)
    x_text = _sparse([featurizer.transform(e.text) for e in examples], len(vocab))
    use_timing = all(e.timing is not None for e in examples)
    if use_timing:
        timing = np.array([e.timing.as_vector() for e in examples if e.timing is not None])
        mean = timing.mean(axis=0)
        scale = np.maximum(timing.std(axis=0), 1e-3)
        x = sparse.hstack([x_text, sparse.csr_matrix((timing - mean) / scale)]).tocsr()
    else:
        mean = scale = np.zeros(0)
        x = x_text
    y = np.array([e.label for e in examples])
    if len(set(y.tolist())) < 2:
        raise ValueError("training data needs both human and machine examples")
    lr = LogisticRegression(C=c, class_weight="balanced", max_iter=5000)
    lr.fit(x, y)
    coef = lr.coef_[0].astype(np.float64)
    model = ClassifierModel(
        vocab=vocab,
        idf=idf,
        text_coef=coef[: len(vocab)],
        timing_coef=coef[len(vocab) :],
        intercept=float(lr.intercept_[0]),
        timing_mean=mean.astype(np.float64),
        timing_scale=scale.astype(np.float64),
        analyzer=cfg,
    )
    return AmdClassifier(model)


def _sparse(rows: list[dict[int, float]], width: int) -> sparse.csr_matrix:
    indptr = [0]
    indices: list[int] = []
    data: list[float] = []
    for row in rows:
        indices.extend(row.keys())
        data.extend(row.values())
        indptr.append(len(indices))
    return sparse.csr_matrix((data, indices, indptr), shape=(len(rows), width))


def evaluate(clf: AmdClassifier, examples: Sequence[Example]) -> dict[str, Any]:
    """Accuracy, per-class precision/recall/F1, confusion matrix and a threshold sweep."""
    probs = np.array(
        clf.proba_human_batch([e.text for e in examples], [e.timing for e in examples])
    )
    y = np.array([e.label for e in examples])
    pred = (probs >= 0.5).astype(int)
    out: dict[str, Any] = {"n": len(examples), "accuracy": float(np.mean(pred == y))}
    for name, cls in (("human", 1), ("machine", 0)):
        tp = int(np.sum((pred == cls) & (y == cls)))
        fp = int(np.sum((pred == cls) & (y != cls)))
        fn = int(np.sum((pred != cls) & (y == cls)))
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        out[name] = {
            "precision": precision,
            "recall": recall,
            "f1": f1,
            "support": int(np.sum(y == cls)),
        }
    out["confusion"] = {
        "true_human": {
            "human": int(np.sum((y == 1) & (pred == 1))),
            "machine": int(np.sum((y == 1) & (pred == 0))),
        },
        "true_machine": {
            "human": int(np.sum((y == 0) & (pred == 1))),
            "machine": int(np.sum((y == 0) & (pred == 0))),
        },
    }
    confidence = np.maximum(probs, 1 - probs)
    sweep = []
    for threshold in (0.5, 0.6, 0.7, 0.8, 0.9, 0.95):
        decided = confidence >= threshold
        n_dec = int(decided.sum())
        acc = float(np.mean(pred[decided] == y[decided])) if n_dec else None
        sweep.append(
            {"threshold": threshold, "decided": n_dec / len(y), "accuracy_when_decided": acc}
        )
    out["threshold_sweep"] = sweep
    windows = sorted({e.window_s for e in examples if e.window_s is not None})
    if windows:
        out["session"] = {str(t): session_metrics(examples, probs, t) for t in (0.6, 0.7, 0.8, 0.9)}
        out["by_window_s"] = {
            str(w): float(
                np.mean(
                    [p == e.label for p, e in zip(pred, examples, strict=True) if e.window_s == w]
                )
            )
            for w in windows
        }
    return out


def accepted_ask(
    asks: Sequence[tuple[float, float, bool]], policy: DecisionPolicy
) -> tuple[float, float] | None:
    """The session's rule on one call's asks, ``(window_s, proba_human, has_speech)``:
    in window order, the first ``policy.accepts`` (the last ask as the final one) as
    ``(window_s, proba_human)``; None when none is (NOTSURE), or when an ask at or past
    ``policy.initial_silence_s`` heard no speech (NOTSURE/SILENCE there)."""
    ordered = sorted(asks)
    for n, (window, p, has_speech) in enumerate(ordered, start=1):
        if policy.accepts(p, has_speech, final=n == len(ordered)):
            return window, p
        if policy.ends_in_silence(window, has_speech):
            return None
    return None


def session_metrics(
    examples: Sequence[Example], probs: np.ndarray, threshold: float
) -> dict[str, float]:
    """Replay the call session's rule (``DecisionPolicy.accepts``) on windowed recordings:
    at each window in turn, decide if the answer is accepted; after the last, NOTSURE.
    ``threshold`` applies throughout, the last ask included."""
    policy = DecisionPolicy(threshold=threshold, final_threshold=threshold)
    calls: dict[str, tuple[int, list[tuple[float, float, bool]]]] = {}
    for e, p in zip(examples, probs, strict=True):
        if e.recording is not None and e.window_s is not None and e.timing is not None:
            asks = calls.setdefault(e.recording, (e.label, []))[1]
            asks.append((e.window_s, float(p), e.timing.has_speech))
    correct = wrong = notsure = 0
    decision_s: list[float] = []
    for label, asks in calls.values():
        accepted = accepted_ask(asks, policy)
        if accepted is None:
            notsure += 1
            continue
        window, p = accepted
        correct += int((p >= 0.5) == (label == 1))
        wrong += int((p >= 0.5) != (label == 1))
        decision_s.append(window)
    n = max(len(calls), 1)
    return {
        "calls": len(calls),
        "accuracy_when_decided": correct / max(correct + wrong, 1),
        "notsure_rate": notsure / n,
        "error_rate": wrong / n,
        "mean_decision_s": float(np.mean(decision_s)) if decision_s else 0.0,
    }


def split_by_group(
    examples: Sequence[Example], test_size: float, seed: int
) -> tuple[list[Example], list[Example]]:
    """The manifest's own split when every row has one, else a draw by template."""
    if examples and all(e.split for e in examples):
        train = [e for e in examples if e.split == "train"]
        test = [e for e in examples if e.split == "test"]
        if train and test:
            return train, test
        raise ValueError("the manifest's split column needs both train and test rows")
    groups = [e.group for e in examples]
    splitter = GroupShuffleSplit(n_splits=1, test_size=test_size, random_state=seed)
    train_idx, test_idx = next(splitter.split(np.zeros(len(examples)), groups=groups))
    return [examples[i] for i in train_idx], [examples[i] for i in test_idx]


def train_and_report(
    examples: Sequence[Example],
    test_size: float,
    seed: int,
    c: float,
    source: str,
    refit: bool = True,
    calibrate_at: float | None = None,
) -> tuple[AmdClassifier, dict[str, Any], AmdClassifier]:
    """Held-out metrics from a group split, then the model refit on everything (or,
    without ``refit``, the model fit on the training side, which has never seen the
    held-out side and so can be evaluated on it). Also returns that training-side model
    (the same object without ``refit``), with its own record.

    With ``calibrate_at`` (the service's threshold), the log-odds scales (one per window
    where there are enough asks) are fit on the held-out side (``training.calibration``)
    and set on both models; the held-out figures
    are then the calibrated model's."""
    from training.calibration import calibrate

    t0 = time.perf_counter()
    train, test = split_by_group(examples, test_size, seed)
    on_train = fit(train, c=c)
    calibration = calibrate(on_train, test, calibrate_at) if calibrate_at is not None else None
    held_out = evaluate(on_train, test)
    final = fit(examples, c=c) if refit else on_train
    final.model.logit_scale = on_train.model.logit_scale
    final.model.window_scales = on_train.model.window_scales
    record = {
        "source": source,
        "examples": len(examples),
        "templates": len({e.group for e in examples}),
        "train_examples": len(train),
        "test_examples": len(test),
        "test_templates": len({e.group for e in test}),
        "uses_timing": final.model.uses_timing,
        "vocabulary": len(final.model.vocab),
        "C": c,
        "seed": seed,
        "refit_on_all": refit,
        "held_out": held_out,
        "fit_seconds": round(time.perf_counter() - t0, 2),
    }
    if calibration is not None:
        record["calibration"] = calibration
    on_train.model.meta = {"training": {**record, "refit_on_all": False}}
    if refit:
        final.model.meta = {"training": record}
    return final, record, on_train


def write_card(path: Path, record: dict[str, Any], model_file: str) -> None:
    h = record["held_out"]
    lines = [
        f"# {model_file}",
        "",
        "Human/machine classifier for amd-bridge: TF-IDF over word 1-2-grams and character",
        "2-5-grams of the transcript"
        + (
            ", plus VAD timing features (initial silence, speech length, trailing silence,"
            "\nsegments, speech ratio; the same for the loudest voice alone, speech behind it,"
            "\nand the loud speech's level over the noise floor)"
            if record["uses_timing"]
            else " only (no timing features)"
        )
        + ", logistic regression.",
        "Stored as plain arrays (`.npz`, loaded with `allow_pickle=False`).",
        "",
        "## Data",
        "",
        f"- Source: {record['source']}",
        *(
            [
                f"- Transcripts by Whisper `{record['whisper']['model']}` (sha256 "
                f"{record['whisper']['sha256'][:16]}...): serve it with this classifier."
            ]
            if "whisper" in record
            else []
        ),
        f"- {record['examples']} examples from {record['templates']} templates.",
        f"- Held out: {record['test_examples']} examples from {record['test_templates']} templates "
        "that share no template with the training side.",
        "",
        "## Held-out metrics (model fit on the training side only)",
        "",
        f"- Accuracy: {h['accuracy']:.3f}",
        "",
        "| class | precision | recall | F1 | support |",
        "|---|---|---|---|---|",
    ]
    for name in ("human", "machine"):
        m = h[name]
        lines.append(
            f"| {name} | {m['precision']:.3f} | {m['recall']:.3f} | {m['f1']:.3f} "
            f"| {m['support']} |"
        )
    lines += ["", "| threshold | share decided | accuracy when decided |", "|---|---|---|"]
    for s in h["threshold_sweep"]:
        acc = "-" if s["accuracy_when_decided"] is None else f"{s['accuracy_when_decided']:.3f}"
        lines.append(f"| {s['threshold']} | {s['decided']:.3f} | {acc} |")
    if "session" in h:
        lines += [
            "",
            "Per call, replaying the session's rule (ask at each window until the confidence",
            "reaches the threshold, NOTSURE after the last):",
            "",
            "| threshold | accuracy when decided | NOTSURE | wrong | mean decision time (s) |",
            "|---|---|---|---|---|",
        ]
        for t, m in h["session"].items():
            lines.append(
                f"| {t} | {m['accuracy_when_decided']:.3f} | {m['notsure_rate']:.3f} "
                f"| {m['error_rate']:.3f} | {m['mean_decision_s']:.2f} |"
            )
    if "calibration" in record:
        lines += _calibration_lines(record["calibration"])
    if "by_window_s" in h:
        lines += ["", "Accuracy by analysed audio length:", ""]
        lines += [f"- {w} s: {a:.3f}" for w, a in h["by_window_s"].items()]
    lines += [
        "",
        (
            "The saved model is then refit on all examples: evaluating it on this corpus's"
            "\nheld-out side is not a held-out figure."
            if record.get("refit_on_all", True)
            else "The saved model is the one fit on the training side only (`--no-refit`):"
            "\nit can be evaluated on the held-out side."
        ),
        "These are synthetic telephone recordings: measure on your own calls",
        "(`amd-train evaluate` on your manifest) before trusting the figures.",
        "",
        "```json",
        json.dumps({k: v for k, v in record.items() if k != "held_out"}, indent=2),
        "```",
        "",
    ]
    path.write_text("\n".join(lines), encoding="utf-8")


def _calibration_lines(cal: dict[str, Any]) -> list[str]:
    def row(name: str, r: dict[str, Any]) -> str:
        if not r["decided"]:
            return f"| {name} | {r['calls']} | 0 | - | - |"
        return (
            f"| {name} | {r['calls']} | {r['decided']} | {r['mean_stated']:.3f} "
            f"| {r['share_right']:.3f} |"
        )

    windows = cal.get("window_scales")
    if windows:
        scaled = "by " + ", ".join(f"{v:.3f} at {w} s" for w, v in windows.items())
        how = (
            f"{scaled} of audio (linear between, held beyond the ends; one scale over all "
            f"asks would be {cal['logit_scale']:.3f}, and is used for asks without timing)"
        )
    else:
        how = f"by {cal['logit_scale']:.3f}"
    lines = [
        "",
        f"Calibrated on the held-out side: the log-odds are scaled {how}",
        f"(least log loss over {cal['held_out_asks']} held-out asks). The figures above are",
        "the calibrated model's. Decided calls at the threshold "
        f"{cal['threshold']}, before and after:",
        "",
        "| | calls | decided | mean stated confidence | share right |",
        "|---|---|---|---|---|",
        row("before", cal["before"]),
    ]
    if windows and "one_scale" in cal:
        lines.append(row("one scale for all windows", cal["one_scale"]))
    lines.append(row("after", cal["after"]))
    for n, half in enumerate(cal.get("split_half", []), start=1):
        fitted = half.get("window_scales")
        scales = (
            ", ".join(f"{v:.3f}" for v in fitted.values()) if fitted else f"{half['scale']:.3f}"
        )
        lines.append(row(f"half {n}, fit on the other half (scale {scales})", half["after"]))
        lines.append(row(f"half {n}, uncalibrated", half["before"]))
    return lines
