"""How far the service's rule would get if Whisper heard the callee as if the room were
quiet, and how far any threshold schedule gets: the held-out calls as Whisper hears
them, against the same calls with each ask's transcript taken from the call's clean twin.

    python benchmarks/perfect_hearing_replay.py --corpus build/defaults/corpus \
        --cache replay-cache.jsonl [--clean-cache clean.json] [--json out.json]

The cache is the one ``benchmarks/decision_rule_replay.py`` makes (a cache whose
recordings changed is refused). ``amd-train corpus`` writes beside every recording with
talk, music or band noise behind the callee its clean twin: the callee alone, through the
same channel, without the room or lost frames. Each held-out ask of such a call is
transcribed again from the twin, cut at the same window, by the same Whisper
(``--whisper-model``, the service's default); the calls with nothing behind the callee
keep their transcripts. The timing stays what the VAD measured on the call as heard, so
the second replay is a perfect separation of the callee's words from the room, not of
their timing. The classifier is fit on the training side's transcripts as the shipped one
is, each ask's probability scaled per window on the other half of the held-out templates,
no tone detector (as ``decision_rule_replay.py``).

Printed for both: the rule at the defaults and at 0.84 / 0.74, by background band and text
class; then every schedule of thresholds on a grid (one for the asks at 2-3 s, one for
4-6 s, the final one at the last ask), the one with the most calls right and the one with
the most right among those wrong on at most 5% and 8% of the calls, and the defaults with
the last ask's threshold (``AMD_FINAL_THRESHOLD``) at 0.5-0.7. The schedules are
chosen on the calls they are scored on: an upper bound, not a setting. Last, text alone:
the same TF-IDF and logistic regression fit on the training side's true texts (no
timing) and scored on the held-out texts' first 4 and 8 words and whole. Nothing is
asserted; the figures are in ``docs/accuracy.md``.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import itertools
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from decision_rule_replay import (
    Heard,
    service_asks,
    split_half_probabilities,
)

from bridge.audio.resampler import TARGET_RATE
from bridge.engine.asr import AsrOptions, ShortContextWhisper
from bridge.engine.models import resolve_whisper_model
from bridge.session.call import DecisionPolicy
from training.calibration import asks_of
from training.classifier import Example, fit
from training.manifests import read_16k, read_classification_manifest

EARLY_UNTIL_S = 3.0  # the asks up to here take the early threshold, later ones the middle
EARLY = (0.8, 0.85, 0.9, 0.95, 0.98)
MIDDLE = (0.7, 0.75, 0.8, 0.85, 0.9, 0.95)
FINAL = (0.5, 0.6, 0.7, 0.8)
WRONG_CAPS = (0.05, 0.08)
FINAL_DIAL = (0.5, 0.6, 0.65, 0.7)
WORDS = (4, 8, None)  # text alone: the first words of each text (None: all of it)
BATCH = 16


@dataclass(frozen=True)
class Schedule:
    early: float
    middle: float
    final: float

    def policy_at(self, window_s: float) -> DecisionPolicy:
        """The service's policy with this schedule's threshold for an ask at ``window_s``."""
        threshold = self.early if window_s <= EARLY_UNTIL_S else self.middle
        return replace(DecisionPolicy(), threshold=threshold, final_threshold=self.final)


def scheduled_ask(
    asks: Sequence[tuple[float, float, bool]], schedule: Schedule
) -> tuple[float, float] | None:
    """``training.classifier.accepted_ask`` with the threshold of each ask's window: the
    first ask accepted, in window order, as ``(window_s, proba_human)``; None for NOTSURE."""
    ordered = sorted(asks)
    for n, (window, p, has_speech) in enumerate(ordered, start=1):
        policy = schedule.policy_at(window)
        if policy.accepts(p, has_speech, final=n == len(ordered)):
            return window, p
        if policy.ends_in_silence(window, has_speech):
            return None
    return None


@dataclass(frozen=True)
class Call:
    asks: list[tuple[float, float, bool]]
    human: bool
    facets: dict[str, str]


def calls_of(held: Sequence[Heard], p: np.ndarray, facets: dict[str, dict[str, str]]) -> list[Call]:
    by: dict[str, Call] = {}
    for h, pi in zip(held, p.tolist(), strict=True):
        recording = h.example.recording or ""
        speech = h.example.timing is not None and h.example.timing.has_speech
        call = by.setdefault(
            recording, Call([], h.example.label == 1, facets.get(_key(recording), {}))
        )
        call.asks.append((h.example.window_s or 0.0, pi, speech))
    return list(by.values())


def outcome(calls: Sequence[Call], schedule: Schedule) -> dict[str, Any]:
    """Right / wrong / NOTSURE shares, decision p50 / p90 of the decided calls, and the
    share right per background band and text class."""
    right = wrong = 0
    when: list[float] = []
    per: dict[str, list[int]] = {}
    for call in calls:
        accepted = scheduled_ask(call.asks, schedule)
        ok = accepted is not None and (accepted[1] >= 0.5) == call.human
        right += ok
        if accepted is not None:
            wrong += not ok
            when.append(accepted[0])
        for facet in ("background", "text_class"):
            if facet in call.facets:
                per.setdefault(f"{facet}: {call.facets[facet]}", []).append(int(ok))
    n = max(len(calls), 1)
    return {
        "right_wrong_notsure": [right / n, wrong / n, (n - right - wrong) / n],
        "decision_p50_p90_s": np.percentile(when, [50, 90]).tolist() if when else None,
        "right_by": {k: [sum(v), len(v)] for k, v in sorted(per.items())},
    }


def sweep(calls: Sequence[Call]) -> dict[str, Any]:
    """Every schedule of the grid; the most right, and the most right under each cap on
    wrong (chosen on the calls scored: an upper bound)."""
    rows = []
    for early, middle, final in itertools.product(EARLY, MIDDLE, FINAL):
        schedule = Schedule(early, middle, min(final, middle))
        rows.append((outcome(calls, schedule), schedule))

    def best(cap: float) -> dict[str, Any] | None:
        fit_cap = [r for r in rows if r[0]["right_wrong_notsure"][1] <= cap]
        if not fit_cap:
            return None
        top, schedule = max(fit_cap, key=lambda r: r[0]["right_wrong_notsure"][0])
        return {
            "schedule": asdict(schedule),
            "right_wrong_notsure": top["right_wrong_notsure"],
            "decision_p50_p90_s": top["decision_p50_p90_s"],
        }

    return {"most_right": best(1.0), **{f"wrong_at_most_{cap:g}": best(cap) for cap in WRONG_CAPS}}


def clean_transcripts(
    corpus: Path, held: Sequence[Heard], model: str, cache: Path | None, made_from: str
) -> dict[str, str]:
    """``recording|window`` -> what Whisper writes of the recording's clean twin cut at that
    window, for the held-out calls that have a twin (kept in ``cache`` if given, with
    ``made_from``: a cache of other recordings or another model is not used)."""
    if cache is not None and cache.is_file():
        kept = json.loads(cache.read_text())
        if kept.get("made_from") == made_from:
            return dict(kept["texts"])
        print(f"{cache}: made from other recordings or another model; transcribing again")
    twins = {}
    with (corpus / "manifest.csv").open(newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            if row.get("clean_path"):
                twins[_key(corpus / row["path"])] = corpus / row["clean_path"]
    wanted: dict[float, list[str]] = {}
    for h in held:
        recording = h.example.recording or ""
        if _key(recording) in twins:
            wanted.setdefault(h.example.window_s or 0.0, []).append(recording)
    asr = ShortContextWhisper(resolve_whisper_model(model), AsrOptions())
    audio = {r: read_16k(twins[_key(r)]) for r in set().union(*wanted.values())}
    out: dict[str, str] = {}
    for window, recordings in sorted(wanted.items()):
        for i in range(0, len(recordings), BATCH):
            part = recordings[i : i + BATCH]
            clips = [audio[r][: int(window * TARGET_RATE)] for r in part]
            for r, heard in zip(part, asr.transcribe_batch(clips), strict=True):
                out[f"{r}|{window:g}"] = heard.text
    if cache is not None:
        cache.write_text(json.dumps({"made_from": made_from, "texts": out}) + "\n")
    return out


def text_alone(corpus: Path) -> dict[str, float]:
    """Share of the held-out texts right from their first words, the classifier fit on the
    training side's whole texts without timing."""
    rows = read_classification_manifest(corpus / "manifest.csv").rows
    train = [
        Example(r.text or "", None, int(r.label == "human"), r.group)
        for r in rows
        if r.split == "train"
    ]
    model = fit(train)
    held = [r for r in rows if r.split == "test"]
    out = {}
    for words in WORDS:
        texts = [" ".join((r.text or "").split()[:words]) for r in held]
        probs = model.proba_human_batch(texts, [None] * len(texts))
        right = [(p >= 0.5) == (r.label == "human") for p, r in zip(probs, held, strict=True)]
        out["whole" if words is None else f"first {words} words"] = float(np.mean(right))
    return out


def facets_of(corpus: Path) -> dict[str, dict[str, str]]:
    report = read_classification_manifest(corpus / "manifest.csv")
    return {_key(r.path): dict(r.facets) for r in report.rows if r.path is not None}


def _key(path: str | Path) -> str:
    return str(Path(path).resolve())


def _line(name: str, o: dict[str, Any]) -> str:
    r, w, n = (100 * x for x in o["right_wrong_notsure"])
    p = o.get("decision_p50_p90_s") or [float("nan")] * 2
    return f"{name}: {r:.1f} / {w:.1f} / {n:.1f}, decided p50 {p[0]:.1f} s, p90 {p[1]:.1f} s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, required=True, help="amd-train corpus's folder")
    parser.add_argument("--cache", type=Path, required=True, help="decision_rule_replay's cache")
    parser.add_argument("--clean-cache", type=Path, help="keep the twins' transcripts here")
    parser.add_argument("--whisper-model", default="embedded-short")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    t0 = time.perf_counter()
    lines, train, held = service_asks(args.cache, parser)
    model = fit([h.example for h in train])
    digests = sorted({line["audio_sha256"] for line in lines if line["split"] == "test"})
    made_from = hashlib.sha256(" ".join([args.whisper_model, *digests]).encode()).hexdigest()
    clean = clean_transcripts(args.corpus, held, args.whisper_model, args.clean_cache, made_from)
    twin_heard = [
        Heard(
            replace(
                h.example,
                text=clean.get(f"{h.example.recording}|{h.example.window_s:g}", h.example.text),
            ),
            h.logprob,
            h.background,
        )
        for h in held
    ]
    facets = facets_of(args.corpus)
    record: dict[str, Any] = {"held_out_calls": len({h.example.recording for h in held})}
    shipped, stricter = Schedule(0.8, 0.8, 0.7), Schedule(0.84, 0.84, 0.74)
    for name, asked in (("as heard", held), ("clean twins", twin_heard)):
        z = np.array([a.logit for a in asks_of(model, [h.example for h in asked])])
        calls = calls_of(asked, split_half_probabilities(asked, z, True), facets)
        record[name] = {
            "defaults": outcome(calls, shipped),
            "0.84/0.74": outcome(calls, stricter),
            "schedules": sweep(calls),
        }
        print(_line(f"{name}, defaults", record[name]["defaults"]))
        print(_line(f"{name}, 0.84 / 0.74", record[name]["0.84/0.74"]))
        for key, best in record[name]["schedules"].items():
            if best is not None:
                print(_line(f"{name}, {key} {best['schedule']}", best))
        record[name]["final_thresholds"] = {}
        for final in FINAL_DIAL:  # AMD_FINAL_THRESHOLD, the rest at the defaults
            o = outcome(calls, Schedule(0.8, 0.8, final))
            record[name]["final_thresholds"][str(final)] = o
            print(_line(f"{name}, AMD_FINAL_THRESHOLD={final}", o))
    both = (
        record["as heard"]["defaults"]["right_by"],
        record["clean twins"]["defaults"]["right_by"],
    )
    print("right at the defaults, as heard / clean twins:")
    for key, (right, n) in both[0].items():
        print(f"  {key}: {right}/{n} / {both[1][key][0]}/{n}")
    record["text_alone"] = text_alone(args.corpus)
    print("text alone, held-out texts right:", record["text_alone"])
    record["seconds"] = round(time.perf_counter() - t0, 1)
    print(f"{record['seconds']} s")
    if args.json:
        args.json.write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
