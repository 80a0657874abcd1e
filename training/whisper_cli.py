"""The Whisper side of ``amd-train``: import-whisper, finetune, export, overlay, asr-eval."""

from __future__ import annotations

import argparse
import json
import logging
import math
import shutil
import sys
from pathlib import Path
from typing import Any

from bridge.engine.models import resolve_whisper_model
from bridge.errors import AmdError
from training.manifests import AsrManifest, ManifestError, read_asr_manifest

log = logging.getLogger("training")


def run(args: argparse.Namespace) -> int:
    try:
        if args.command == "import-whisper":
            return _import(args)
        if args.command == "finetune":
            return _finetune(args)
        if args.command == "export":
            return _export(args)
        if args.command == "overlay":
            return _overlay(args)
        return _asr_eval(args)
    except (AmdError, ManifestError, ValueError, OSError) as exc:
        print(f"amd-train: {exc}", file=sys.stderr)
        return 2


def _refuse_overwrite(out: Path, force: bool) -> None:
    if out.exists() and any(out.iterdir()):
        if not force:
            raise ValueError(f"{out} exists and is not empty; use --force to replace it")
        shutil.rmtree(out)


def _import(args: argparse.Namespace) -> int:
    from training.ct2_export import check_decodes
    from training.ct2_whisper import import_ct2_whisper

    _refuse_overwrite(args.out, args.force)
    source = resolve_whisper_model(args.model)
    check_decodes(source)  # what we import must itself be a working model
    import_ct2_whisper(source, args.out)
    print(f"imported {source} into {args.out}")
    return 0


def parse_windows(text: str, flag: str = "--windows") -> list[float]:
    """``2,3,4,5`` as seconds; anything else is a ValueError that says what to give."""
    try:
        windows = sorted({float(w) for w in text.split(",") if w.strip()})
    except ValueError:
        windows = []
    if not windows or windows[0] <= 0 or not all(math.isfinite(w) for w in windows):
        raise ValueError(f"{flag} {text!r}: give seconds above 0 like 2,3,4,5")
    return windows


def _rows(path: Path, split: str) -> AsrManifest:
    manifest = read_asr_manifest(path)
    if split:
        manifest.rows = [r for r in manifest.rows if r.split == split]
    if not manifest.rows:
        raise ValueError(f"{path}: no usable rows" + (f" in split {split!r}" if split else ""))
    return manifest


def _finetune(args: argparse.Namespace) -> int:
    from training.finetune import FinetuneOptions, finetune

    if not args.recordings and (args.window_lengths or args.max_recordings):
        raise ValueError("--window-lengths and --max-recordings need --recordings")
    lengths = parse_windows(args.window_lengths or "2,3,4,5", "--window-lengths")
    _refuse_overwrite(args.out, args.force)
    manifest = _rows(args.manifest, args.split)
    if args.max_clips:
        manifest.rows = manifest.rows[: args.max_clips]
    recordings = _rows(args.recordings, args.split) if args.recordings else None
    if recordings is not None and args.max_recordings:
        recordings.rows = recordings.rows[: args.max_recordings]
    options = FinetuneOptions(
        clip_s=args.clip_s,
        steps=args.steps,
        batch_size=args.batch_size,
        learning_rate=args.lr,
        lora=args.lora,
        lora_rank=args.lora_rank,
        train_decoder=args.train_decoder,
        ce_weight=args.ce_weight,
        silent_under_talk_db=args.silent_under_talk,
        talk_mixtures=args.talk_mixtures,
        clean_targets=args.clean_targets,
        room_remixes=args.room_remixes,
        teacher_cache=args.teacher_cache,
        window_text=args.window_text,
        window_lengths=tuple(lengths) if recordings else (),
        seed=args.seed,
        device=args.device,
    )
    try:
        summary = finetune(args.checkpoint, manifest, args.out, options, recordings)
    finally:
        if manifest.bad:
            manifest.write_bad_rows(args.out.parent / f"{args.out.name}.bad-rows.csv")
            log.warning("%d bad rows skipped", len(manifest.bad))
        if recordings is not None and recordings.bad:
            recordings.write_bad_rows(args.out.parent / f"{args.out.name}.bad-recordings.csv")
            log.warning("%d bad recordings skipped", len(recordings.bad))
    summary["options"] = {k: str(v) if isinstance(v, Path) else v for k, v in vars(options).items()}
    (args.out / "finetune.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(
        f"{summary['clips']} clips ({summary['silent_clips']} trained to say nothing), "
        f"{summary['windows']} recording windows, "
        f"{summary['steps']} steps in {summary['train_seconds']} s; "
        f"loss {summary['first_loss']} -> {summary['last_loss']}; wrote {args.out}"
    )
    return 0


def _export(args: argparse.Namespace) -> int:
    from training.ct2_export import export_ct2

    heard = export_ct2(args.checkpoint, args.out, args.quantization, args.force)
    print(
        f"exported {args.checkpoint} to {args.out} ({args.quantization}); "
        f"it decodes: {heard.text!r}"
    )
    return 0


def _overlay(args: argparse.Namespace) -> int:
    from bridge.engine.models import embedded_whisper_dir
    from bridge.engine.whisper_files import OVERLAY_FILE, write_overlay

    _refuse_overwrite(args.out, args.force)
    names = write_overlay(embedded_whisper_dir(), args.model, args.out)
    size = (args.out / OVERLAY_FILE).stat().st_size
    print(
        f"wrote {args.out / OVERLAY_FILE} ({size / 1e6:.1f} MB): {len(names)} encoder "
        f"variables of {args.model} over the embedded tiny.en"
    )
    return 0


def _asr_eval(args: argparse.Namespace) -> int:
    from training.asr_eval import load, score

    if args.recordings:
        return _asr_eval_recordings(args)
    manifest = _rows(args.manifest, args.split)
    clips = load(manifest, args.clip_s)
    results: dict[str, Any] = {"manifest": str(args.manifest), "split": args.split}
    results |= {"clip_s": args.clip_s, "clips": len(clips), "bad_rows": len(manifest.bad)}
    results["models"] = {}
    print(f"{'model':40} {'decoding':10} {'WER':>7} {'looped':>7}")
    for spec in args.model:
        path = resolve_whisper_model(spec)
        modes = {"short": (False,), "padded": (True,), "both": (False, True)}[args.decoding]
        for padded in modes:
            mode = "padded-30s" if padded else "short"
            r = score(path, clips, pad_to_30s=padded)
            results["models"].setdefault(spec, {})[mode] = r
            print(f"{spec[-40:]:40} {mode:10} {r['wer']:7.3f} {r['looped']:7d}")
            for band, b in r["by_background"].items():
                print(f"  {band:38} {mode:10} {b['wer']:7.3f}   ({b['clips']} clips)")
    if args.out:
        args.out.write_text(json.dumps(results, indent=2) + "\n")
    return 0


def _asr_eval_recordings(args: argparse.Namespace) -> int:
    from training.asr_eval import load_recordings, score_recordings
    from training.manifests import read_classification_manifest

    windows = parse_windows(args.windows)
    report = read_classification_manifest(args.recordings)
    if args.split:
        report.rows = [r for r in report.rows if r.split == args.split]
    recordings = load_recordings(report, max(windows))
    if not recordings:
        raise ValueError(
            f"{args.recordings}: no readable recordings with a text"
            + (f" in split {args.split!r}" if args.split else "")
        )
    for row, reason in report.bad:
        print(f"amd-train: skipped {row.get('path', '')}: {reason}", file=sys.stderr)
    results: dict[str, Any] = {"recordings_manifest": str(args.recordings), "split": args.split}
    results |= {"windows_s": windows, "recordings": len(recordings), "bad_rows": len(report.bad)}
    results["models"] = {}
    print(
        f"{len(recordings)} recordings; per recording: the text's words heard in order, "
        "and words written that it does not say"
    )
    print(f"{'model':40} {'decoding':10} {'window':>6} {'heard':>6} {'not said':>8}")
    modes = {"short": (False,), "padded": (True,), "both": (False, True)}[args.decoding]
    for spec in args.model:
        path = resolve_whisper_model(spec)
        for padded in modes:
            mode = "padded-30s" if padded else "short"
            r = score_recordings(path, recordings, windows, pad_to_30s=padded)
            results["models"].setdefault(spec, {})[mode] = r
            for window, w in r.items():
                print(
                    f"{spec[-40:]:40} {mode:10} {window:>5}s {w['heard_per_recording']:6.2f} "
                    f"{w['not_said_per_recording']:8.2f}"
                )
                for band, b in w["by_background"].items():
                    print(
                        f"  {band:38} {'':10} {'':6} {b['heard_per_recording']:6.2f} "
                        f"{b['not_said_per_recording']:8.2f}   ({b['recordings']})"
                    )
    if args.out:
        args.out.write_text(json.dumps(results, indent=2) + "\n")
    return 0
