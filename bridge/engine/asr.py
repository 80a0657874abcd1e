"""Whisper on CTranslate2, run on the clip's real length.

Whisper was trained on 30 s windows; the encoder on 2 s instead of 30 s is
~27x cheaper here, but a decoder given a short context tends to loop
("Hello? Hello? Hello?"). Three guards keep it honest: new tokens are capped
by audio length, n-gram repeats are blocked and penalised during decoding,
and a transcript that still compresses too well (or ends in a repeated
phrase) is cut back and flagged. ``pad_to_30s`` restores the original
behaviour for models not tuned for short input.
"""

from __future__ import annotations

import gzip
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bridge.audio.codecs import Float32Array
from bridge.audio.resampler import TARGET_RATE
from bridge.engine.models import overlay_model_files
from bridge.errors import ConfigError, ModelError

log = logging.getLogger(__name__)

WHISPER_INPUT_S = 30
# faster-whisper's threshold: text whose gzip ratio exceeds this is a loop.
COMPRESSION_RATIO_LIMIT = 2.4


@dataclass(frozen=True)
class AsrOptions:
    device: str = "cpu"
    compute_type: str = "default"
    threads: int = 0  # intra-op threads per worker; 0 lets CTranslate2 choose
    workers: int = 1  # concurrent generate() calls the model allows
    language: str = "en"
    pad_to_30s: bool = False
    tail_silence_s: float = 0.0  # silence appended to every clip before encoding
    beam_size: int = 1
    tokens_per_second: float = 6.0  # cap on new tokens per second of audio
    repetition_penalty: float = 1.1
    no_repeat_ngram_size: int = 3


@dataclass(frozen=True)
class AsrOutput:
    text: str
    looped: bool


def model_languages(hf_tokenizer: Any, multilingual: bool) -> list[str]:
    """The language codes a Whisper model's own tokenizer has a token for."""
    from faster_whisper.tokenizer import _LANGUAGE_CODES

    if not multilingual:
        return ["en"]
    return [c for c in _LANGUAGE_CODES if hf_tokenizer.token_to_id(f"<|{c}|>") is not None]


def check_language(language: str, known: Sequence[str], model_dir: Path) -> None:
    """At start, not at the first clip: a language the model cannot transcribe is a
    configuration error that says what is accepted."""
    if language in known:
        return
    if known == ["en"]:
        raise ConfigError(
            f"AMD_LANGUAGE={language!r}: the Whisper model at {model_dir} is English-only; "
            "use 'en', or a multilingual model for other languages"
        )
    raise ConfigError(
        f"AMD_LANGUAGE={language!r}: not a language of the Whisper model at {model_dir} "
        f"(language detection is not done; use one of its {len(known)} codes: "
        f"{', '.join(known)})"
    )


class ShortContextWhisper:
    """Batched transcription of short clips with a CTranslate2 Whisper model."""

    def __init__(self, model_dir: Path, options: AsrOptions) -> None:
        import ctranslate2
        import tokenizers
        from faster_whisper.feature_extractor import FeatureExtractor
        from faster_whisper.tokenizer import Tokenizer

        self.options = options
        compute_type = options.compute_type
        if compute_type == "default":
            compute_type = "int8" if options.device == "cpu" else "float16"
        # An overlay directory is put together in memory from the embedded model.
        files = overlay_model_files(model_dir)
        try:
            self.model = ctranslate2.models.Whisper(
                str(model_dir),
                device=options.device,
                compute_type=compute_type,
                intra_threads=options.threads,
                inter_threads=options.workers,
                files=files,
            )
            hf_tokenizer = (
                tokenizers.Tokenizer.from_str(files["tokenizer.json"].decode("utf-8"))
                if files is not None
                else tokenizers.Tokenizer.from_file(str(model_dir / "tokenizer.json"))
            )
        except Exception as exc:  # CTranslate2 raises RuntimeError/ValueError/OSError
            raise ModelError(f"could not load Whisper model from {model_dir}: {exc}") from exc
        self.compute_type = compute_type
        multilingual = bool(self.model.is_multilingual)
        check_language(options.language, model_languages(hf_tokenizer, multilingual), model_dir)
        self.tokenizer = Tokenizer(
            hf_tokenizer,
            multilingual,
            task="transcribe",
            language=options.language if multilingual else "en",
        )
        self.features = FeatureExtractor(feature_size=self.model.n_mels)
        self.prompt = [*self.tokenizer.sot_sequence, self.tokenizer.no_timestamps]
        self.max_length = 448  # Whisper's decoder context

    def transcribe_batch(self, clips: Sequence[Float32Array]) -> list[AsrOutput]:
        """Transcribe clips of 16 kHz float32 audio in one ``generate`` call."""
        import ctranslate2

        if not clips:
            return []
        longest = max(len(c) for c in clips)
        tail = int(self.options.tail_silence_s * TARGET_RATE)
        padded_len = WHISPER_INPUT_S * TARGET_RATE if self.options.pad_to_30s else longest + tail
        padded_len = max(padded_len, TARGET_RATE // 10)
        feats = np.stack([self._features(c, padded_len) for c in clips])
        audio_s = longest / TARGET_RATE
        max_new = math.ceil(audio_s * self.options.tokens_per_second) + 2
        max_length = min(self.max_length, len(self.prompt) + max_new)
        encoded = ctranslate2.StorageView.from_array(np.ascontiguousarray(feats))
        results = self.model.generate(
            encoded,
            [self.prompt] * len(clips),
            beam_size=self.options.beam_size,
            max_length=max_length,
            repetition_penalty=self.options.repetition_penalty,
            no_repeat_ngram_size=self.options.no_repeat_ngram_size,
            suppress_blank=True,
            suppress_tokens=[-1],
        )
        out = []
        for res in results:
            tokens = [t for t in res.sequences_ids[0] if t < self.tokenizer.eot]
            text, looped = guard_repetition(self.tokenizer.decode(tokens).strip())
            out.append(AsrOutput(text, looped))
        return out

    def _features(self, clip: Float32Array, length: int) -> np.ndarray:
        audio = np.zeros(length, dtype=np.float32)
        n = min(len(clip), length)
        audio[:n] = clip[:n]
        feats: np.ndarray = self.features(audio)
        if self.options.pad_to_30s:
            feats = feats[:, : WHISPER_INPUT_S * 100]
        return feats


def compression_ratio(text: str) -> float:
    raw = text.encode("utf-8")
    return len(raw) / len(gzip.compress(raw)) if raw else 0.0


def guard_repetition(text: str) -> tuple[str, bool]:
    """Cut a decoding loop off the end of a transcript; say whether one was cut.

    Two shapes of loop: one or two words said more than twice in a row
    ("hello hello hello" keeps "hello hello": people do say "Hello? Hello?"),
    and a tail of three or more words that copies earlier text, as when the
    decoder restarts its sentence ("sorry I missed your call sorry I missed").
    Text that still compresses past faster-whisper's limit is flagged but kept.
    """
    words = text.split()
    key = [w.strip(".,?!;:").lower() for w in words]
    for n in (1, 2):
        for start in range(len(key) - 3 * n + 1):
            phrase = key[start : start + n]
            if key[start + n : start + 2 * n] == phrase == key[start + 2 * n : start + 3 * n]:
                return " ".join(words[: start + 2 * n]), True
    for cut in range(3, len(key) - 2):
        tail = key[cut:]
        for origin in range(cut):
            copy = key[origin : origin + len(tail)]
            if copy == tail[: len(copy)] and len(copy) >= 3:
                return " ".join(words[:cut]), True
    return text, compression_ratio(text) > COMPRESSION_RATIO_LIMIT
