"""``amd-train``: build amd-bridge's models from your recordings or the project's templates."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

log = logging.getLogger("training")


class _Help(argparse.ArgumentDefaultsHelpFormatter):
    """Each option's help ends with its default (none for flags and required ones)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None or action.default is False or action.required:
            return action.help
        return super()._get_help_string(action)


def _command(commands: Any, name: str, **kw: Any) -> argparse.ArgumentParser:
    """A sub-command whose help shows each option's default."""
    parser: argparse.ArgumentParser = commands.add_parser(name, formatter_class=_Help, **kw)
    return parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="amd-train", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    synth = _command(commands, "synth", help="render opener templates as telephone recordings")
    synth.add_argument(
        "--out", type=Path, required=True, help="output folder (audio/ + manifest.csv)"
    )
    synth.add_argument("--templates", type=Path, help="template CSV (default: the project's)")
    synth.add_argument("--variants", type=int, default=2, help="renderings per template")
    synth.add_argument("--limit", type=int, help="use only the first N templates of each label")
    synth.add_argument("--seed", type=int, default=1, help="random seed (same seed, same files)")

    corpus = _command(
        commands,
        "corpus",
        help="build a labelled telephone corpus from TTS voices and Asterisk prompts",
    )
    corpus.add_argument("--out", type=Path, required=True, help="output folder")
    corpus.add_argument("--templates", type=Path, help="template CSV (default: the project's)")
    corpus.add_argument("--variants", type=int, default=6, help="renderings per template")
    corpus.add_argument("--limit", type=int, help="use only the first N templates of each label")
    corpus.add_argument(
        "--composed",
        type=int,
        default=2000,
        help="about N distinct texts composed from training/data/grammar.toml, spoken once each",
    )
    corpus.add_argument("--grammar", type=Path, help="phrase grammar TOML (default: the project's)")
    corpus.add_argument(
        "--more-phrases",
        type=Path,
        action="append",
        default=[],
        metavar="FILE",
        help="TOML of more phrases for the grammar's pools, each list one more batch of its pool "
        "(e.g. training/data/more-phrases.toml; repeatable)",
    )
    corpus.add_argument(
        "--chatter",
        type=Path,
        help="what people behind the callee say, one sentence a line "
        "(default: training/data/chatter.txt)",
    )
    corpus.add_argument("--voices", default="piper,espeak", help="voice families: piper,espeak")
    corpus.add_argument(
        "--asterisk-sounds",
        type=Path,
        help="Allison's prompts (default /usr/share/asterisk/sounds/en_US_f_Allison if there)",
    )
    corpus.add_argument("--asterisk-texts", type=Path, help="core-sounds-en.txt(.gz)")
    corpus.add_argument(
        "--music",
        type=Path,
        help="folder of 16-bit mono WAV tracks played behind some callees "
        "(default /usr/share/asterisk/moh if there; without any, no music condition)",
    )
    corpus.add_argument(
        "--held-out", type=float, default=0.25, help="share of templates and voices"
    )
    corpus.add_argument("--seed", type=int, default=1, help="random seed (same seed, same files)")
    corpus.add_argument("--force", action="store_true", help="write into a non-empty folder")

    imp = _command(
        commands,
        "import-whisper",
        help="a CTranslate2 Whisper model into a transformers checkpoint",
    )
    imp.add_argument("--model", default="embedded", help="'embedded' or a CTranslate2 directory")
    imp.add_argument("--out", type=Path, required=True, help="checkpoint folder to write")
    imp.add_argument("--force", action="store_true", help="replace a non-empty folder")

    ft = _command(commands, "finetune", help="fine-tune Whisper for short-context (2 s) decoding")
    ft.add_argument("--checkpoint", type=Path, required=True, help="transformers checkpoint")
    ft.add_argument("--manifest", type=Path, required=True, help="CSV: path,transcription")
    ft.add_argument("--out", type=Path, required=True, help="checkpoint folder to write")
    ft.add_argument("--split", default="train", help="use rows of this split ('' for all)")
    ft.add_argument("--clip-s", type=float, default=2.0, help="seconds of audio per clip")
    ft.add_argument("--max-clips", type=int, help="use only the first N rows")
    ft.add_argument("--max-recordings", type=int, help="use only the first N rows of --recordings")
    ft.add_argument("--steps", type=int, default=500, help="optimiser steps")
    ft.add_argument("--batch-size", type=int, default=16, help="clips per step")
    ft.add_argument("--lr", type=float, default=1e-4, help="learning rate")
    ft.add_argument("--lora", action="store_true", help="train LoRA adapters, merged at the end")
    ft.add_argument("--lora-rank", type=int, default=32, help="rank of the LoRA adapters")
    ft.add_argument("--train-decoder", action="store_true", help="train the decoder as well")
    ft.add_argument(
        "--ce-weight", type=float, default=0.0, help="weight of the transcript's cross-entropy"
    )
    ft.add_argument(
        "--silent-under-talk",
        type=float,
        metavar="DB",
        help="train clips with people talking less than DB dB below the talker towards an "
        "empty transcript (asr.csv's condition and background_db columns say which)",
    )
    ft.add_argument(
        "--talk-mixtures",
        type=int,
        default=0,
        metavar="N",
        help="add N copies of each clip without background (condition 'none' in asr.csv) "
        "with another such clip mixed 0-10 dB below it, trained towards the clip's own "
        "transcript and encoder states (default: 0)",
    )
    ft.add_argument(
        "--clean-targets",
        action="store_true",
        help="train clips that have a clean twin (asr.csv's clean_path, written by "
        "`amd-train corpus`) towards the unchanged model's encoder states for the twin",
    )
    ft.add_argument(
        "--room-remixes",
        type=int,
        default=0,
        metavar="N",
        help="add N copies of each clip whose talker is known alone (a quiet clip, or with "
        "--clean-targets a clip's twin) with another clip's room behind it (that clip less "
        "its twin, G.711 clips without lost frames only), shifted in time, at the level it "
        "had below its own talker (measured worse end to end: docs/accuracy.md)",
    )
    ft.add_argument(
        "--teacher-cache",
        type=Path,
        metavar="FILE",
        help="keep the teacher's encoder states in FILE and reuse them while the checkpoint "
        "and the clips' teacher inputs are the same (they are most of a CPU run's time)",
    )
    ft.add_argument(
        "--recordings",
        type=Path,
        metavar="MANIFEST",
        help="also train on whole-recording windows: each recording of this manifest "
        "(the corpus's manifest.csv, rows of --split) cut once at one of --window-lengths, "
        "taught by its clean twin (clean_path) where it has one, its text what the "
        "unchanged model decodes from the window",
    )
    ft.add_argument(
        "--window-lengths",
        help="with --recordings: seconds a window may last, comma-separated, one drawn per "
        "recording (default 2,3,4,5)",
    )
    ft.add_argument(
        "--window-text",
        choices=("teacher", "script"),
        default="teacher",
        help="a window's transcript: the unchanged model's decoding of its clean twin, or "
        "the recording's text up to the last of its words that decoding has in order",
    )
    ft.add_argument("--device", default="auto", help="auto, cpu or cuda")
    ft.add_argument("--seed", type=int, default=1, help="random seed")
    ft.add_argument("--force", action="store_true", help="replace a non-empty folder")

    ex = _command(commands, "export", help="a transformers Whisper checkpoint to CTranslate2")
    ex.add_argument("--checkpoint", type=Path, required=True, help="transformers checkpoint")
    ex.add_argument("--out", type=Path, required=True, help="CTranslate2 model folder")
    ex.add_argument("--quantization", default="int8", help="int8, int8_float16, float16, ...")
    ex.add_argument("--force", action="store_true", help="replace an existing model")

    ov = _command(
        commands,
        "overlay",
        help="the encoder of a fine-tuned export, as an overlay on the embedded tiny.en",
    )
    ov.add_argument(
        "--model",
        type=Path,
        required=True,
        help="CTranslate2 folder (`export --quantization float16`)",
    )
    ov.add_argument("--out", type=Path, required=True, help="overlay folder to write")
    ov.add_argument("--force", action="store_true", help="replace a non-empty folder")

    ae = _command(
        commands,
        "asr-eval",
        help="WER of Whisper models on short clips, or what they hear of whole recordings",
    )
    source = ae.add_mutually_exclusive_group(required=True)
    source.add_argument("--manifest", type=Path, help="ASR clips, CSV: path,transcription")
    source.add_argument(
        "--recordings",
        type=Path,
        help="recordings, CSV: path,label,text (amd-train corpus's manifest.csv): each cut at "
        "--windows, scored by the text's words heard in order and words written that it "
        "does not say",
    )
    ae.add_argument("--model", action="append", required=True, help="'embedded' or a folder")
    ae.add_argument("--split", default="test", help="use rows of this split ('' for all)")
    ae.add_argument("--clip-s", type=float, default=2.0, help="seconds of audio per clip")
    ae.add_argument(
        "--windows", default="2,3,4,5", help="with --recordings: seconds to cut each at"
    )
    ae.add_argument(
        "--decoding", choices=("short", "padded", "both"), default="both", help="how to decode"
    )
    ae.add_argument("--out", type=Path, help="JSON file for the results")

    clf = _command(commands, "classifier", help="train the human/machine classifier")
    clf.add_argument("--manifest", type=Path, required=True, help="CSV: text,label or path,label")
    clf.add_argument("--out", type=Path, required=True, help="model file to write (.npz)")
    clf.add_argument("--card", type=Path, help="markdown model card to write")
    clf.add_argument("--force", action="store_true", help="overwrite an existing model")
    clf.add_argument(
        "--windows",
        default="2,3,4,5,6,7",
        help="seconds of audio to cut recordings at (the service asks at 2-7 s by default)",
    )
    clf.add_argument(
        "--test-size", type=float, default=0.25, help="share held out (without a split column)"
    )
    clf.add_argument("--seed", type=int, default=1, help="random seed of the held-out draw")
    clf.add_argument("--C", dest="c", type=float, default=1.0, help="inverse regularisation")
    clf.add_argument("--whisper-model", default="embedded-short", help="ASR model for recordings")
    clf.add_argument("--source", help="how the data was made, for the model card")
    clf.add_argument(
        "--no-refit",
        action="store_true",
        help="save the model fit on the training side only, not refit on all rows, so that "
        "`amd-train evaluate --split test` on the same manifest is a held-out figure",
    )
    clf.add_argument(
        "--calibrate",
        action="store_true",
        help="fit the log-odds scales on the held-out side, one per window where each has "
        "100 held-out asks of both labels, else one for all, so that the confidence of a "
        "call's decision at AMD_THRESHOLD means what it says (recordings only)",
    )
    clf.add_argument(
        "--held-out-model",
        type=Path,
        help="also save the model fit on the training side only here (as --no-refit would), "
        "from the same transcripts: no second pass through Whisper",
    )
    ev = _command(
        commands, "evaluate", help="report accuracy against decision time, as JSON, PNG, markdown"
    )
    ev.add_argument("--manifest", type=Path, required=True, help="CSV: path,label (recordings)")
    ev.add_argument("--out", type=Path, required=True, help="folder for report.json/.md and plots")
    ev.add_argument("--classifier", default="embedded", help="'embedded' or a classifier .npz")
    ev.add_argument("--whisper-model", default="embedded-short", help="ASR model")
    ev.add_argument("--split", help="only rows of this split (train|test), if the CSV has one")
    ev.add_argument("--force", action="store_true", help="overwrite a non-empty output folder")

    bulk = _command(commands, "bulk-eval", help="decide a folder or CSV of recordings into a CSV")
    bulk.add_argument(
        "source", type=Path, help="a folder of recordings, or a CSV with a path (or file) column"
    )
    bulk.add_argument(
        "--out", type=Path, required=True, help="results CSV (appended to, resumable)"
    )
    bulk.add_argument("--url", help="stream to a running service's /ws/amd instead of in process")
    bulk.add_argument("--concurrency", type=int, default=4, help="files at once with --url")
    bulk.add_argument("--chunk-ms", type=int, default=20, help="frame length with --url")
    bulk.add_argument("--token", help="bearer token for --url (AMD_API_TOKEN)")
    bulk.add_argument("--no-count", action="store_true", help="do not count the inputs first")
    bulk.add_argument("--ray", action="store_true", help="run on Ray Data (local if no cluster)")
    bulk.add_argument("--ray-address", help="a running Ray cluster's address (implies --ray)")
    bulk.add_argument("--ray-actors", type=int, default=2, help="model-holding actors with --ray")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        return _run(args)
    except ModuleNotFoundError as exc:
        extra = EXTRA_OF.get((exc.name or "").split(".")[0])
        if extra is None:
            raise
        print(
            f"amd-train {args.command} needs the '{extra}' extra ({exc.name} is not installed): "
            f"pip install 'amd-bridge[{extra}]' (torch first, from PyTorch's CPU index where "
            "there is no GPU: see docs/training.md)",
            file=sys.stderr,
        )
        return 2


# What the optional extras bring, by top-level module (pyproject.toml).
EXTRA_OF = {
    **dict.fromkeys(
        ("sklearn", "scipy", "matplotlib", "piper", "torch", "transformers", "peft", "accelerate"),
        "train",
    ),
    "ray": "distributed",
}


def _run(args: argparse.Namespace) -> int:
    if args.command == "synth":
        return _synth(args)
    if args.command == "corpus":
        return _corpus(args)
    if args.command in ("import-whisper", "finetune", "export", "overlay", "asr-eval"):
        from training.whisper_cli import run

        return run(args)
    if args.command == "bulk-eval":
        return _bulk_eval(args)
    if args.command == "evaluate":
        return _evaluate(args)
    return _classifier(args)


def _evaluate(args: argparse.Namespace) -> int:
    import asyncio

    from bridge.engine import build_detector
    from bridge.engine.asr import AsrOptions
    from bridge.engine.classifier import AmdClassifier
    from bridge.engine.detector import Transcriber
    from bridge.engine.models import default_classifier_path, resolve_whisper_model
    from bridge.errors import AmdError
    from bridge.settings import Settings
    from training.classifier import examples_from_manifest
    from training.manifests import ManifestError, read_classification_manifest
    from training.report import (
        DECISION_TIMES,
        as_calls,
        by_decision_time,
        made,
        write_report,
    )

    if args.out.exists() and any(args.out.iterdir()) and not args.force:
        print(f"amd-train: {args.out} is not empty: use --force to overwrite", file=sys.stderr)
        return 2
    try:
        report = read_classification_manifest(args.manifest)
        if args.split:
            report.rows = [r for r in report.rows if r.split == args.split]
            if not report.rows:
                raise ManifestError(f"{args.manifest}: no rows in split {args.split!r}")
        if any(r.path is None for r in report.rows):
            raise ManifestError(f"{args.manifest}: evaluate needs recordings (path,label)")
        # The service's AMD_* settings apply to the calls (the decision policy above all).
        environ = {"AMD_CLASSIFIER": args.classifier, "AMD_WHISPER_MODEL": args.whisper_model}
        settings = Settings.load(environ={**os.environ, **environ})
        clf_path = default_classifier_path() if args.classifier == "embedded" else args.classifier
        clf = AmdClassifier.load(Path(clf_path))
        whisper = resolve_whisper_model(args.whisper_model)
        examples = examples_from_manifest(
            report, lambda: Transcriber(whisper, AsrOptions()), DECISION_TIMES
        )
        calls, per_call = asyncio.run(as_calls(report, settings, build_detector(settings)))
    except (AmdError, ManifestError, ValueError) as exc:
        print(f"amd-train: {exc}", file=sys.stderr)
        return 2
    record = {
        "source": args.manifest.name,
        "recordings": len({e.recording for e in examples}),
        "bad_rows": len(report.bad),
        "classifier": args.classifier,
        "made": made(),
        "by_decision_time": by_decision_time(clf, examples),
        "as_calls": calls,
    }
    written = write_report(args.out, record, per_call)
    if report.bad:
        report.write_bad_rows(args.out / "bad-rows.csv")
    two = record["by_decision_time"].get("2.0", {})
    skipped = f"; {len(report.bad)} rows skipped (bad-rows.csv says why)" if report.bad else ""
    print(
        f"{record['recordings']} recordings: accuracy at 2.0 s "
        f"{two.get('accuracy', float('nan')):.3f}; as calls "
        f"{calls['accuracy_when_decided']:.3f} when decided, {calls['notsure_share']:.1%} "
        f"NOTSURE{skipped}; wrote {', '.join(p.name for p in written)} to {args.out}"
    )
    return 0


def _bulk_eval(args: argparse.Namespace) -> int:
    import asyncio

    from bridge.engine import build_batching_engine, build_detector
    from bridge.errors import AmdError
    from bridge.settings import Settings
    from training.bulk import (
        Progress,
        ResultsCsv,
        evaluate,
        in_process_decider,
        list_inputs,
        websocket_decider,
    )

    try:
        out = ResultsCsv(args.out)
        total = None if args.no_count else sum(1 for _ in list_inputs(args.source))
        if total is not None:
            log.info("%d files, %d already in %s", total, len(out.done), args.out)
        progress = Progress(None if total is None else total - len(out.done))
        if args.ray or args.ray_address:
            from training.bulk_ray import evaluate_on_ray

            inputs = list_inputs(args.source)
            evaluate_on_ray(inputs, out, progress, args.ray_actors, address=args.ray_address)
        elif args.url:
            decide = websocket_decider(args.url, args.chunk_ms, args.token)
            run = evaluate(list_inputs(args.source), out, decide, args.concurrency, progress)
            asyncio.run(run)
        else:
            settings = Settings.load()  # AMD_* variables, as for the service
            detector = build_detector(settings)

            async def in_process() -> None:
                engine = build_batching_engine(settings, detector)
                try:
                    decide = in_process_decider(settings, engine)
                    limit = settings.batch_size * settings.engine_workers
                    await evaluate(list_inputs(args.source), out, decide, limit, progress)
                finally:
                    await engine.aclose()

            asyncio.run(in_process())
        out.close()
    except AmdError as exc:
        print(f"amd-train: {exc}", file=sys.stderr)
        return 2
    print(f"\n{progress.done} files decided into {args.out} ({progress.errors} errors)")
    if progress.errors:  # the rule amd-bridge detect follows: some files failed, exit 1
        print(
            f"amd-train: {progress.errors} of {progress.done} files failed "
            "(their rows have type=error)",
            file=sys.stderr,
        )
        return 1
    return 0


def _corpus(args: argparse.Namespace) -> int:
    from training.composed import compose, load_grammar
    from training.conditions import ASTERISK_MOH, music_tracks
    from training.corpus import (
        CorpusBuilder,
        load_chatter,
        split_chatter,
        split_music,
        split_templates,
        split_voices,
    )
    from training.synth import RECORDING_MIN_S, PiperSpeaker
    from training.telephone import CodecError
    from training.texts import load_templates
    from training.voices import (
        ASTERISK_SOUNDS,
        VoiceError,
        asterisk_prompts,
        espeak_voices,
        piper_voices,
    )

    if args.out.exists() and any(args.out.iterdir()) and not args.force:
        print(f"amd-train: {args.out} is not empty; use --force to write into it", file=sys.stderr)
        return 2
    families = {f.strip() for f in args.voices.split(",") if f.strip()}
    if not families or families - {"piper", "espeak"}:
        print(f"amd-train: --voices {args.voices!r}: choose from piper,espeak", file=sys.stderr)
        return 2
    written = load_templates(args.templates)
    templates = written
    if args.limit:
        templates = [
            t
            for label in ("human", "machine")
            for t in [x for x in written if x.label == label][: args.limit]
        ]
    try:
        composed = (
            compose(
                load_grammar(args.grammar, args.more_phrases),
                args.composed,
                args.held_out,
                args.seed,
                exclude=[t.text for t in written],
            )
            if args.composed > 0
            else []
        )
    except (OSError, ValueError, KeyError) as exc:  # tomllib's errors are ValueErrors
        print(f"amd-train: grammar: {exc}", file=sys.stderr)
        return 2
    try:
        chatter = load_chatter(args.chatter)
    except (OSError, UnicodeDecodeError) as exc:
        print(f"amd-train: chatter: {exc}", file=sys.stderr)
        return 2
    try:
        voices = {}
        if "piper" in families:
            voices["piper"] = piper_voices(PiperSpeaker(seed=args.seed))
        if "espeak" in families:
            voices["espeak"] = espeak_voices()
        sounds = args.asterisk_sounds or (ASTERISK_SOUNDS if ASTERISK_SOUNDS.is_dir() else None)
        prompts = asterisk_prompts(sounds, args.asterisk_texts) if sounds else {}
        music = args.music or (ASTERISK_MOH if ASTERISK_MOH.is_dir() else None)
        tracks = music_tracks(music) if music else {}
    except VoiceError as exc:
        print(f"amd-train: {exc}", file=sys.stderr)
        return 2
    if not prompts:
        log.warning("no Asterisk prompts: the corpus has no recorded voice")
    if not tracks:
        log.warning("no music tracks: the corpus has no music behind callees")
    all_voices = [v for family in voices.values() for v in family]
    template_side = split_templates(templates, args.held_out, args.seed)
    voice_side = split_voices(voices, args.held_out, args.seed)
    builder = CorpusBuilder(
        args.out,
        args.seed,
        split_music(tracks, args.held_out, args.seed),
        split_chatter(chatter, args.held_out, args.seed),
    )
    try:
        builder.speak_templates(
            templates, all_voices, template_side, voice_side, args.variants, RECORDING_MIN_S
        )
        if composed:
            builder.speak_templates(
                [t for t, _ in composed],
                all_voices,
                {t.template_id: s for t, s in composed},
                voice_side,
                1,
                RECORDING_MIN_S,
            )
        if prompts:
            builder.asterisk(prompts, args.variants, RECORDING_MIN_S)
    except (VoiceError, CodecError) as exc:
        print(f"amd-train: {exc}", file=sys.stderr)
        return 2
    manifest, asr = builder.write()
    held = sorted(n for n, s in voice_side.items() if s == "test")
    print(
        f"{len(builder.rows.recordings)} recordings in {manifest}, "
        f"{len(builder.rows.phrases)} ASR clips in {asr}; held-out voices: {', '.join(held)}"
    )
    return 0


def _synth(args: argparse.Namespace) -> int:
    from training.synth import synthesize
    from training.texts import load_templates

    templates = load_templates(args.templates)
    if args.limit:
        templates = [
            t
            for label in ("human", "machine")
            for t in [x for x in templates if x.label == label][: args.limit]
        ]
    renderings = synthesize(templates, args.out, args.variants, args.seed)
    log.info("wrote %d recordings and %s", len(renderings), args.out / "manifest.csv")
    return 0


def _classifier(args: argparse.Namespace) -> int:
    from bridge.engine.asr import AsrOptions
    from bridge.engine.classifier import AmdClassifier
    from bridge.engine.detector import Transcriber
    from bridge.engine.models import resolve_whisper_model
    from bridge.engine.whisper_files import whisper_fingerprint
    from bridge.errors import AmdError
    from bridge.settings import Settings
    from training.classifier import examples_from_manifest, train_and_report, write_card
    from training.manifests import ManifestError, read_classification_manifest

    for target in (args.out, args.held_out_model):
        if target is not None and target.exists() and not args.force:
            print(f"amd-train: {target} exists; use --force to overwrite", file=sys.stderr)
            return 2
    try:
        report = read_classification_manifest(args.manifest)
    except ManifestError as exc:
        print(f"amd-train: {exc}", file=sys.stderr)
        return 2
    from training.whisper_cli import parse_windows

    try:
        windows = parse_windows(args.windows)
    except ValueError as exc:
        print(f"amd-train: {exc}", file=sys.stderr)
        return 2

    def transcriber() -> Transcriber:
        return Transcriber(resolve_whisper_model(args.whisper_model), AsrOptions())

    try:
        # The service's tone rules (AMD_TONES, AMD_BEEP_DECIDES), watched to the last
        # window: a window after the tone that would have decided the call is not an ask.
        service = Settings.load().policy
        last = min(max(max(windows), service.window_s), 30.0)
        tone_policy = dataclasses.replace(service, max_window_s=last)
        examples = examples_from_manifest(report, transcriber, windows, tone_policy=tone_policy)
        source = args.source or f"{args.manifest.name}, {len(report.rows)} rows"
        if any(e.window_s for e in examples):
            source += f", cut at {args.windows} s"
        clf, record, on_train = train_and_report(
            examples,
            args.test_size,
            args.seed,
            args.c,
            source,
            refit=not args.no_refit,
            calibrate_at=Settings.load().threshold if args.calibrate else None,
        )
    except (AmdError, ValueError) as exc:  # models that do not load, unusable data
        print(f"amd-train: {exc}", file=sys.stderr)
        return 2
    finally:  # the bad rows matter most when they left too little to train on
        if report.bad:
            bad_path = args.out.with_suffix(".bad-rows.csv")
            report.write_bad_rows(bad_path)
            log.warning("%d bad rows skipped, written to %s", len(report.bad), bad_path)

    def write(model: AmdClassifier, path: Path, card: Path | None) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        model.save(path)
        AmdClassifier.load(path)  # what we wrote must load
        if card:
            write_card(card, model.model.meta["training"], path.name)

    if any(e.window_s for e in examples):  # recordings: what Whisper heard is in the model
        whisper = resolve_whisper_model(args.whisper_model)
        heard_by = {"model": args.whisper_model, "sha256": whisper_fingerprint(whisper)}
        for model in (clf, on_train):
            model.model.meta["training"]["whisper"] = heard_by
    write(clf, args.out, args.card)
    if args.held_out_model:
        write(on_train, args.held_out_model, args.held_out_model.with_suffix(".md"))
    h = record["held_out"]
    print(
        f"held-out accuracy {h['accuracy']:.3f} on {record['test_examples']} examples; "
        f"F1 human {h['human']['f1']:.3f}, machine {h['machine']['f1']:.3f}; wrote {args.out}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
