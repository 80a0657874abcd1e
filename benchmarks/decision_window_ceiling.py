"""How much of the classifier's error at each decision time is Whisper's, and how much
is the words themselves: the same classifier trained on what Whisper hears in each
window, against the same classifier trained on the words actually spoken by then.

    python benchmarks/decision_window_ceiling.py --corpus build/defaults/corpus \
        [--whisper-model embedded] [--windows 2,3,4,5] [--words-only] [--json out.json]

The corpus is what ``amd-train corpus`` writes (``manifest.csv`` with its fixed
``split`` column: held-out voices speaking held-out templates). Both classifiers are
fit on the training side (TF-IDF + VAD timing + logistic regression, as
``amd-train classifier``) and scored on the held-out side.

"Words spoken by then" are estimated: a recording's text is cut at the share of its
speech (silero VAD windows over the whole file) that falls inside the window. The
figure also counts the held-out windows whose spoken words begin a template of the
other label (``training/data/openers.csv``, a slot matching as many words as its
values take): those words could come from either, so no transcript of them
tells the two apart; only timing could.

Then the service's rule is replayed on the held-out calls with the words-spoken
classifier (calibrated per window on the held-out asks, as ``amd-train classifier
--calibrate`` does; default thresholds, no tone detector), once for each window taken as
the maximum (``AMD_MAX_WINDOW_S``): how far a perfect listener would get, and how much
waiting longer would add. A recording shorter than a window is heard with silence after
it, as a caller would hear the line once the callee stops. ``--words-only`` leaves Whisper
out (a minute instead of most of an hour). Nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bridge.engine.asr import AsrOptions
from bridge.engine.detector import Transcriber
from bridge.engine.models import resolve_whisper_model
from bridge.engine.vad import WINDOW_S, SpeechTimer, timing_from_probabilities
from bridge.session.call import DecisionPolicy
from training.asr_eval import normalize
from training.calibration import calibrate
from training.classifier import Example, accepted_ask, examples_from_manifest, fit
from training.manifests import LabelledRow, read_16k, read_classification_manifest
from training.texts import COMPANIES, DAYS, NAMES, SURNAMES, Template, load_templates

VAD_THRESHOLD = 0.5
_SLOT_IN = re.compile(r"\{\w+\}")
_SLOT = re.compile(r"^\{(\w+)\}$")
# How many words each slot's values take (training/texts.py fills them).
SLOT_WORDS = {
    slot: range(min(len(v.split()) for v in values), max(len(v.split()) for v in values) + 1)
    for slots, values in (
        (("name", "name2"), NAMES),
        (("surname", "surname2"), SURNAMES),
        (("company",), COMPANIES),
        (("day",), DAYS),
    )
    for slot in slots
}
SLOT_WORDS["number"] = range(10, 11)  # ten digits, spoken one by one
SLOT_WORDS["minutes"] = range(1, 3)  # 2 to 25, a word per digit


def words(text: str) -> list[str]:
    """The words as ``amd-train asr-eval`` compares them (lower case, no punctuation,
    digits spelled out), template pauses (``|``) dropped and slots kept whole."""
    out: list[str] = []
    for token in text.replace("|", " ").split():
        slot = _SLOT_IN.search(token)
        out.extend([slot.group(0)] if slot else normalize(token))
    return out


def words_heard(text: str, speech: np.ndarray, window_s: float) -> str:
    """The leading words of ``text`` spoken within ``window_s``: its word count scaled by
    the share of the recording's speech windows (``speech``, one flag per VAD window)
    that lie inside it."""
    spoken = text.split()
    total = int(np.count_nonzero(speech))
    if total == 0:
        return ""
    inside = int(np.count_nonzero(speech[: int(round(window_s / WINDOW_S))]))
    return " ".join(spoken[: int(round(len(spoken) * inside / total))])


def begins(heard: Sequence[str], template: Sequence[str]) -> bool:
    """Whether the words ``heard`` are how ``template`` (with slots) could begin."""
    if not heard:
        return True
    if not template:
        return False
    slot = _SLOT.match(template[0])
    if slot is None:
        return heard[0] == template[0] and begins(heard[1:], template[1:])
    for n in SLOT_WORDS[slot.group(1)]:
        if len(heard) < n:  # the window closed inside the slot's value
            return True
        if begins(heard[n:], template[1:]):
            return True
    return False


def ambiguous(heard: str, label: str, templates: Sequence[Template]) -> bool:
    """Whether the words heard begin some template of the other label."""
    spoken = words(heard)
    return any(t.label != label and begins(spoken, words(t.text)) for t in templates)


def spoken_examples(
    report_rows: Sequence[LabelledRow], windows: Sequence[float], timer: SpeechTimer
) -> list[Example]:
    """One example per recording and window from the words spoken by then."""
    out = []
    longest = int(max(windows) * 16000)  # read_16k's rate
    for row in report_rows:
        audio = read_16k(row.path)
        probs = timer.speech_probabilities(np.pad(audio, (0, max(0, longest - len(audio)))))
        speech = probs >= VAD_THRESHOLD
        for w in windows:
            n = int(round(w / WINDOW_S))
            out.append(
                Example(
                    words_heard(row.text or "", speech, w),
                    timing_from_probabilities(probs[:n], w, VAD_THRESHOLD),
                    int(row.label == "human"),
                    row.group,
                    w,
                    str(row.path),
                    row.split,
                )
            )
    return out


Key = tuple[str | None, float | None]


def held_out_right(examples: Sequence[Example]) -> dict[Key, bool]:
    """Fit on the training side; whether each held-out (recording, window) is right."""
    clf = fit([e for e in examples if e.split == "train"])
    test = [e for e in examples if e.split == "test"]
    probs = clf.proba_human_batch([e.text for e in test], [e.timing for e in test])
    return {
        (e.recording, e.window_s): (p >= 0.5) == (e.label == 1)
        for p, e in zip(probs, test, strict=True)
    }


def rule_outcomes(examples: Sequence[Example], last: float) -> dict[str, tuple[str, float]]:
    """The service's rule on each held-out call with ``last`` as the maximum window:
    ``right``, ``wrong`` or ``notsure``, and when it was decided (the last window for
    NOTSURE). The classifier is fit on the training side's asks up to ``last`` and
    calibrated per window on the held-out ones, as ``amd-train classifier --calibrate``."""
    asked = [e for e in examples if e.window_s is not None and e.window_s <= last]
    clf = fit([e for e in asked if e.split == "train"])
    test = [e for e in asked if e.split == "test"]
    calibrate(clf, test, DecisionPolicy().threshold)
    probs = clf.proba_human_batch([e.text for e in test], [e.timing for e in test])
    calls: dict[str, tuple[int, list[tuple[float, float, bool]]]] = {}
    for e, p in zip(test, probs, strict=True):
        assert e.window_s is not None and e.timing is not None
        calls.setdefault(e.recording or "", (e.label, []))[1].append(
            (e.window_s, p, e.timing.has_speech)
        )
    policy = DecisionPolicy(max_window_s=max(last, DecisionPolicy().window_s))
    out = {}
    for recording, (label, call_asks) in calls.items():
        accepted = accepted_ask(call_asks, policy)
        if accepted is None:
            out[recording] = ("notsure", last)
        else:
            right = (accepted[1] >= 0.5) == (label == 1)
            out[recording] = ("right" if right else "wrong", accepted[0])
    return out


def shares(outcomes: Sequence[tuple[str, float]]) -> dict[str, Any]:
    """Right / wrong / NOTSURE shares and the decided calls' p50 and p90 times."""
    n = max(len(outcomes), 1)
    when = [t for o, t in outcomes if o != "notsure"]
    return {
        **{k: sum(o == k for o, _ in outcomes) / n for k in ("right", "wrong", "notsure")},
        "calls": len(outcomes),
        "decision_p50_s": float(np.percentile(when, 50)) if when else None,
        "decision_p90_s": float(np.percentile(when, 90)) if when else None,
    }


def outcomes_by_max_window(
    examples: Sequence[Example],
) -> dict[float, dict[str, tuple[str, float]]]:
    """``rule_outcomes`` with each window of ``examples`` taken in turn as the last."""
    windows = sorted({e.window_s for e in examples if e.window_s is not None})
    return {last: rule_outcomes(examples, last) for last in windows}


def rule_by_facet(
    outcomes: dict[str, tuple[str, float]], facets: dict[str, dict[str, str]]
) -> dict[str, dict[str, dict[str, Any]]]:
    """``rule_outcomes``' shares per value of each facet of the calls (``facets``: a
    recording's text class, background, ...)."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for name in sorted({f for values in facets.values() for f in values}):
        groups: dict[str, list[tuple[str, float]]] = {}
        for recording, outcome in outcomes.items():
            value = facets.get(recording, {}).get(name)
            if value:
                groups.setdefault(value, []).append(outcome)
        out[name] = {value: shares(group) for value, group in sorted(groups.items())}
    return out


def share(flags: Sequence[bool]) -> float | None:
    return float(np.mean(flags)) if flags else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, required=True, help="amd-train corpus output")
    parser.add_argument("--whisper-model", default="embedded-short")
    parser.add_argument("--windows", default="2,3,4,5")
    parser.add_argument(
        "--words-only", action="store_true", help="only the words spoken, no Whisper"
    )
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    windows = [float(w) for w in args.windows.split(",")]
    report = read_classification_manifest(args.corpus / "manifest.csv")
    rows = [r for r in report.rows if r.path is not None]
    if not {r.split for r in rows} >= {"train", "test"}:
        sys.exit("the manifest needs a split column with train and test rows (amd-train corpus)")
    start = time.perf_counter()
    spoken = spoken_examples(rows, windows, SpeechTimer(VAD_THRESHOLD))
    facets = {
        str(r.path): {k: v for k, v in r.facets if k in ("text_class", "background")}
        for r in rows
        if r.split == "test"
    }
    by_whisper: dict[Key, bool] = {}
    if not args.words_only:
        whisper = resolve_whisper_model(args.whisper_model)
        heard = examples_from_manifest(report, lambda: Transcriber(whisper, AsrOptions()), windows)
        by_whisper = held_out_right(heard)
    by_words = held_out_right(spoken)
    templates = load_templates()
    label = {1: "human", 0: "machine"}
    both = {
        (e.recording, e.window_s): ambiguous(e.text, label[e.label], templates)
        for e in spoken
        if e.split == "test"
    }
    table = {}
    for w in windows:
        keys = [k for k in both if k[1] == w]
        amb = [k for k in keys if both[k]]
        rest = [k for k in keys if not both[k]]
        table[str(w)] = {
            "whisper_transcripts": share([by_whisper[k] for k in keys if k in by_whisper]),
            "words_spoken": share([by_words[k] for k in keys]),
            "share_words_begin_both_labels": share([both[k] for k in keys]),
            "words_spoken_when_they_begin_both": share([by_words[k] for k in amb]),
            "words_spoken_otherwise": share([by_words[k] for k in rest]),
        }
    tests = sum(r.split == "test" for r in rows)
    by_max = outcomes_by_max_window(spoken)
    default_max = DecisionPolicy().max_window_s
    record = {
        "corpus": str(args.corpus),
        "whisper_model": args.whisper_model,
        "recordings": {"train": len(rows) - tests, "test": tests},
        "held_out_accuracy": table,
        "rule_on_words_spoken_by_max_window": {
            str(last): shares(list(outcomes.values())) for last, outcomes in by_max.items()
        },
        "rule_on_words_spoken_at_the_default_maximum_by_facet": rule_by_facet(
            by_max.get(default_max) or rule_outcomes(spoken, default_max), facets
        ),
        "seconds": round(time.perf_counter() - start, 1),
    }
    print(f"held-out recordings: {tests} (train {len(rows) - tests}); held-out accuracy:")
    print("window s | Whisper | words spoken | words begin both labels: share, accuracy | other")
    for w, t in table.items():
        print(
            f"{w:>8} | {_fmt(t['whisper_transcripts']):>7} | {_fmt(t['words_spoken']):>12} | "
            f"{_fmt(t['share_words_begin_both_labels']):>31}, "
            f"{_fmt(t['words_spoken_when_they_begin_both'])} | {_fmt(t['words_spoken_otherwise'])}"
        )
    print("\nthe service's rule on the words spoken, each window as the maximum:")
    print("max window s | right / wrong / NOTSURE | decision p50, p90 s")
    for w, r in record["rule_on_words_spoken_by_max_window"].items():
        print(
            f"{w:>12} | {r['right']:.1%} / {r['wrong']:.1%} / {r['notsure']:.1%} | "
            f"{_fmt(r['decision_p50_s'])}, {_fmt(r['decision_p90_s'])}"
        )
    print(f"\nthe same at the default maximum ({default_max} s), by text class and background:")
    for name, values in record["rule_on_words_spoken_at_the_default_maximum_by_facet"].items():
        for value, r in values.items():
            print(
                f"{name:>10} {value:24s} {r['calls']:4d} calls | "
                f"{r['right']:.1%} / {r['wrong']:.1%} / {r['notsure']:.1%}"
            )
    print(f"({record['seconds']} s)")
    if args.json:
        args.json.write_text(json.dumps(record, indent=2) + "\n")


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


if __name__ == "__main__":
    main()
