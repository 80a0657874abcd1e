"""A transformers Whisper checkpoint into the CTranslate2 directory the runtime loads.

CTranslate2's own ``TransformersConverter`` does the conversion and quantization;
this adds what a deployment needs around it: the tokenizer and preprocessor files
copied beside ``model.bin``, no silent overwrite, and a load-and-decode check with
the runtime's own ASR class, so an export that would fail at the service's start
fails here instead.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from pathlib import Path

import numpy as np

from bridge.audio.resampler import TARGET_RATE
from bridge.engine.asr import AsrOptions, AsrOutput, ShortContextWhisper
from bridge.errors import ModelError

log = logging.getLogger(__name__)

QUANTIZATIONS = ("int8", "int8_float16", "int8_float32", "float16", "float32")
# Beside model.bin: tokenizer.json is what the runtime reads; the rest lets the
# directory be imported back into transformers or read by other tools.
COPIED_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "preprocessor_config.json",
    "processor_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "vocab.json",
    "merges.txt",
    "normalizer.json",
)


class ExportError(ModelError):
    """The checkpoint could not be exported, or the export does not load and decode."""


def export_ct2(
    checkpoint: Path, out_dir: Path, quantization: str = "int8", force: bool = False
) -> AsrOutput:
    """Convert ``checkpoint`` into ``out_dir``, refusing to replace it unless ``force``;
    returns what the export decoded when it was loaded back (``check_decodes``)."""
    from ctranslate2.converters import TransformersConverter

    if quantization not in QUANTIZATIONS:
        raise ExportError(
            f"quantization {quantization!r}: choose one of {', '.join(QUANTIZATIONS)}"
        )
    if out_dir.exists() and any(out_dir.iterdir()) and not force:
        raise ExportError(f"{out_dir} exists and is not empty; use --force to replace it")
    if not (checkpoint / "config.json").is_file():
        raise ExportError(f"{checkpoint} is not a transformers checkpoint (no config.json)")
    copy = [name for name in COPIED_FILES if (checkpoint / name).is_file()]
    if "tokenizer.json" not in copy:
        raise ExportError(f"{checkpoint} has no tokenizer.json, which the runtime needs")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    # Convert beside the target, then swap it in, so a failed export leaves the old one.
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        converter = TransformersConverter(str(checkpoint), copy_files=copy)
        converter.convert(str(staging), quantization=quantization, force=True)
        probe = check_decodes(staging)
        log.info("export decodes: %r", probe.text)
        if out_dir.exists():
            shutil.rmtree(out_dir)
        staging.rename(out_dir)
    except ExportError:
        raise
    except Exception as exc:  # converter errors come as many types
        raise ExportError(f"could not export {checkpoint}: {exc}") from exc
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    return probe


def check_decodes(model_dir: Path, clip: np.ndarray | None = None) -> AsrOutput:
    """Load ``model_dir`` as the service would and decode one clip (1 s of a tone by default)."""
    if clip is None:
        t = np.arange(TARGET_RATE) / TARGET_RATE
        clip = (0.1 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    asr = ShortContextWhisper(model_dir, AsrOptions())
    try:
        (output,) = asr.transcribe_batch([clip])
    except Exception as exc:
        raise ExportError(f"{model_dir} loads but does not decode: {exc}") from exc
    return output
