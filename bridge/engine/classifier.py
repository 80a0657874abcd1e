"""The human/machine classifier: TF-IDF text features plus VAD timing, logistic.

Stored as a NumPy ``.npz`` of plain numeric and string arrays, read with
``allow_pickle=False``: loading a model file can never execute code.
"""

from __future__ import annotations

import json
import math
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from bridge.engine.textfeatures import AnalyzerConfig, TfidfFeaturizer
from bridge.errors import ModelError
from bridge.session.decision import TIMING_FEATURE_NAMES, TimingFeatures

FORMAT = "amd-classifier/1"
FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class WindowScales:
    """Log-odds scales fit per length of audio asked about (``amd-train classifier
    --calibrate``): an ask at 2 s is less sure of its words than one at 5 s, so one scale
    for all asks states too much early and too little late. Between two fitted windows
    the scale is interpolated linearly; before the first and after the last it is theirs."""

    windows: tuple[float, ...]  # seconds of callee audio, increasing
    scales: tuple[float, ...]

    def __post_init__(self) -> None:
        w, s = np.asarray(self.windows, np.float64), np.asarray(self.scales, np.float64)
        if len(w) == 0 or len(w) != len(s):
            raise ValueError("window scales need as many scales as windows, at least one")
        if not (np.all(np.isfinite(w)) and np.all(np.isfinite(s)) and np.all(s > 0)):
            raise ValueError("window scales must be finite and the scales positive")
        if np.any(np.diff(w) <= 0):
            raise ValueError("window scales' windows must increase")

    def at(self, clip_s: float) -> float:
        return float(np.interp(clip_s, self.windows, self.scales))


@dataclass
class ClassifierModel:
    """Everything the runtime needs; ``meta`` carries the training record."""

    vocab: list[str]
    idf: list[float]
    text_coef: FloatArray
    timing_coef: FloatArray  # empty for a text-only model
    intercept: float
    timing_mean: FloatArray
    timing_scale: FloatArray
    analyzer: AnalyzerConfig = field(default_factory=AnalyzerConfig)
    meta: dict[str, Any] = field(default_factory=dict)
    # The log-odds are multiplied by this before the sigmoid: fit on held-out calls
    # (``amd-train classifier --calibrate``) so that a stated confidence means what it says.
    logit_scale: float = 1.0
    # When set, the scale for an ask depends on its clip's length (``TimingFeatures.clip_s``)
    # and ``logit_scale`` serves only asks without timing.
    window_scales: WindowScales | None = None

    @property
    def uses_timing(self) -> bool:
        return len(self.timing_coef) > 0

    def scale_for(self, timing: TimingFeatures | None) -> float:
        """The log-odds scale for an ask with ``timing``."""
        return self.scale_at(None if timing is None else timing.clip_s)

    def scale_at(self, clip_s: float | None) -> float:
        """The log-odds scale for an ask about ``clip_s`` seconds (None: not known)."""
        if self.window_scales is None or clip_s is None:
            return self.logit_scale
        return self.window_scales.at(clip_s)


def probability(log_odds: float) -> float:
    """The logistic function, without overflow for very negative log-odds."""
    return 1.0 / (1.0 + math.exp(-log_odds)) if log_odds > -700 else 0.0


class AmdClassifier:
    """Probability that the callee is a human, from a transcript and its timing."""

    def __init__(self, model: ClassifierModel) -> None:
        self.model = model
        self._featurizer = TfidfFeaturizer(model.vocab, model.idf, model.analyzer)
        self._coef = model.text_coef.tolist()

    def proba_human(self, transcript: str, timing: TimingFeatures | None) -> float:
        z = self.model.intercept
        for i, value in self._featurizer.transform(transcript).items():
            z += self._coef[i] * value
        if self.model.uses_timing:
            if timing is None:
                raise ValueError("this classifier needs timing features")
            x = (np.asarray(timing.as_vector()) - self.model.timing_mean) / self.model.timing_scale
            z += float(np.dot(x, self.model.timing_coef))
        return probability(z * self.model.scale_for(timing))

    def proba_human_batch(
        self, transcripts: Sequence[str], timings: Sequence[TimingFeatures | None]
    ) -> list[float]:
        return [self.proba_human(t, tf) for t, tf in zip(transcripts, timings, strict=True)]

    # --- storage ----------------------------------------------------------

    def save(self, path: Path) -> None:
        m = self.model
        meta = dict(m.meta)
        meta["analyzer"] = {
            "word_ngrams": list(m.analyzer.word_ngrams),
            "char_ngrams": list(m.analyzer.char_ngrams),
        }
        with path.open("wb") as fh:
            np.savez_compressed(
                fh,
                format=np.array(FORMAT),
                vocab=np.array(m.vocab, dtype=str),
                idf=np.asarray(m.idf, dtype=np.float64),
                text_coef=m.text_coef.astype(np.float64),
                timing_coef=m.timing_coef.astype(np.float64),
                timing_names=np.array(TIMING_FEATURE_NAMES if m.uses_timing else (), dtype=str),
                intercept=np.array(m.intercept, dtype=np.float64),
                logit_scale=np.array(m.logit_scale, dtype=np.float64),
                timing_mean=m.timing_mean.astype(np.float64),
                timing_scale=m.timing_scale.astype(np.float64),
                scale_windows=np.array(
                    m.window_scales.windows if m.window_scales else (), dtype=np.float64
                ),
                window_scale_values=np.array(
                    m.window_scales.scales if m.window_scales else (), dtype=np.float64
                ),
                meta=np.array(json.dumps(meta, sort_keys=True)),
            )

    @classmethod
    def load(cls, path: Path) -> AmdClassifier:
        """Load and validate; any problem is a ``ModelError`` naming the file."""
        try:
            # Our own handle: np.load leaks its file when the zip is corrupt.
            with path.open("rb") as fh:
                if fh.read(4) != ZIP_MAGIC:  # np.load would read anything else as pickle
                    raise ModelError(
                        f"classifier file {path} is not a classifier: expected the .npz "
                        "archive `amd-train classifier` writes"
                    )
                fh.seek(0)
                with np.load(fh, allow_pickle=False) as data:
                    arrays = {key: data[key] for key in data.files}
        except FileNotFoundError:
            raise ModelError(f"classifier file {path} does not exist") from None
        except IsADirectoryError:
            raise ModelError(f"classifier file {path} is a folder, not a file") from None
        except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
            raise ModelError(f"classifier file {path} is corrupt or unsafe: {exc}") from exc
        try:
            model = _model_from_arrays(arrays, path)
        except (ValueError, TypeError) as exc:  # arrays of the wrong type or shape
            raise ModelError(
                f"classifier file {path} holds arrays of the wrong kind: {exc}"
            ) from exc
        return cls(model)


ZIP_MAGIC = b"PK\x03\x04"  # an .npz is a zip archive


def _model_from_arrays(arrays: dict[str, np.ndarray], path: Path) -> ClassifierModel:
    def need(key: str) -> np.ndarray:
        if key not in arrays:
            raise ModelError(f"classifier file {path} lacks '{key}' (format {FORMAT} expected)")
        return arrays[key]

    fmt = str(need("format"))
    if fmt != FORMAT:
        raise ModelError(f"classifier file {path} has format {fmt!r}, expected {FORMAT!r}")
    vocab = [str(t) for t in need("vocab").tolist()]
    idf = need("idf").astype(np.float64)
    text_coef = need("text_coef").astype(np.float64)
    timing_coef = need("timing_coef").astype(np.float64)
    timing_names = tuple(str(n) for n in need("timing_names").tolist())
    mean = need("timing_mean").astype(np.float64)
    scale = need("timing_scale").astype(np.float64)
    intercept = float(need("intercept"))
    # Files written before calibration existed have no scale: theirs is 1.
    logit_scale = float(arrays["logit_scale"]) if "logit_scale" in arrays else 1.0
    try:
        meta = json.loads(str(need("meta")))
    except json.JSONDecodeError as exc:
        raise ModelError(f"classifier file {path} has unreadable metadata: {exc}") from exc
    if not isinstance(meta, dict):
        raise ModelError(f"classifier file {path} has unreadable metadata: not a JSON object")
    if not (len(vocab) == len(idf) == len(text_coef)):
        raise ModelError(f"classifier file {path}: vocabulary and weights differ in length")
    if timing_names and timing_names != TIMING_FEATURE_NAMES:
        raise ModelError(
            f"classifier file {path} expects timing features {timing_names}, "
            f"this version computes {TIMING_FEATURE_NAMES}"
        )
    t = len(timing_names)
    if not (len(timing_coef) == len(mean) == len(scale) == t):
        raise ModelError(f"classifier file {path}: timing weights do not match their names")
    arrays_to_check = (idf, text_coef, timing_coef, mean, scale, np.array([intercept, logit_scale]))
    if (
        not all(np.all(np.isfinite(a)) for a in arrays_to_check)
        or np.any(scale <= 0)
        or logit_scale <= 0
    ):
        raise ModelError(f"classifier file {path} holds non-finite or invalid weights")
    window_scales = _window_scales(arrays, path)
    analyzer_meta = meta.get("analyzer", {})
    if not isinstance(analyzer_meta, dict):
        raise ModelError(
            f"classifier file {path} has unreadable metadata: 'analyzer' is not an object"
        )
    analyzer = AnalyzerConfig(
        word_ngrams=_ngram_range(analyzer_meta.get("word_ngrams", (1, 2)), path),
        char_ngrams=_ngram_range(analyzer_meta.get("char_ngrams", (2, 5)), path),
    )
    return ClassifierModel(
        vocab=vocab,
        idf=idf.tolist(),
        text_coef=text_coef,
        timing_coef=timing_coef,
        intercept=intercept,
        timing_mean=mean,
        timing_scale=scale,
        analyzer=analyzer,
        meta=meta,
        logit_scale=logit_scale,
        window_scales=window_scales,
    )


def _window_scales(arrays: dict[str, np.ndarray], path: Path) -> WindowScales | None:
    """The per-window scales, or None: files from before they existed have none, and a
    model calibrated with one scale stores empty arrays."""
    windows = arrays.get("scale_windows", np.zeros(0)).astype(np.float64)
    values = arrays.get("window_scale_values", np.zeros(0)).astype(np.float64)
    if windows.ndim != 1 or values.ndim != 1:
        raise ModelError(f"classifier file {path} has invalid window scales: not 1-D arrays")
    if len(windows) == 0 and len(values) == 0:
        return None
    try:
        return WindowScales(tuple(windows.tolist()), tuple(values.tolist()))
    except ValueError as exc:
        raise ModelError(f"classifier file {path} has invalid window scales: {exc}") from exc


def _ngram_range(value: Any, path: Path) -> tuple[int, int]:
    if (
        isinstance(value, list | tuple)
        and len(value) == 2
        and all(isinstance(v, int) for v in value)
        and 1 <= value[0] <= value[1] <= 10
    ):
        return (value[0], value[1])
    raise ModelError(f"classifier file {path} has an invalid n-gram range {value!r}")
