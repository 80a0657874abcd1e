"""The engine: ASR + VAD timing + classifier over a batch of clips, synchronously.

``Detector.analyze_batch`` is what worker threads run; nothing here uses asyncio.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bridge.audio.codecs import Float32Array
from bridge.engine.asr import AsrOptions, AsrOutput, ShortContextWhisper
from bridge.engine.classifier import AmdClassifier
from bridge.engine.vad import SpeechTimer
from bridge.engine.whisper_files import whisper_fingerprint
from bridge.session.decision import AnalysisResult, EarlierHearing, TimingFeatures

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Heard:
    """What the ASR and VAD made of one clip: the classifier's inputs."""

    asr: AsrOutput
    timing: TimingFeatures
    reused: bool = False  # the transcript is an earlier clip's (nothing new was said)


class Transcriber:
    """Whisper plus VAD timing; safe to call from several threads at once."""

    def __init__(self, whisper_dir: Path, options: AsrOptions, vad_threshold: float = 0.5) -> None:
        self.asr = ShortContextWhisper(whisper_dir, options)
        self._vad_threshold = vad_threshold
        self._local = threading.local()
        self._timer()  # load the VAD now: a broken install fails at start-up

    def _timer(self) -> SpeechTimer:
        # One onnxruntime session per thread: no contention between workers.
        timer: SpeechTimer | None = getattr(self._local, "timer", None)
        if timer is None:
            timer = SpeechTimer(self._vad_threshold)
            self._local.timer = timer
        return timer

    def hear_batch(
        self,
        clips: Sequence[Float32Array],
        heard_before: Sequence[EarlierHearing | None] | None = None,
    ) -> list[Heard]:
        """Timing for every clip; Whisper only for those that said something new (an
        ask that heard only silence since the last one keeps that one's transcript)."""
        timer = self._timer()
        timings = [timer.timing(c) for c in clips]
        earlier = list(heard_before) if heard_before is not None else [None] * len(clips)
        reused = [nothing_new(t, e) for t, e in zip(timings, earlier, strict=True)]
        fresh = iter(
            self.asr.transcribe_batch([c for c, r in zip(clips, reused, strict=True) if not r])
        )
        texts = [
            AsrOutput(e.transcript, looped=False) if r and e is not None else next(fresh)
            for r, e in zip(reused, earlier, strict=True)
        ]
        return [Heard(a, t, r) for a, t, r in zip(texts, timings, reused, strict=True)]


# Speech must have ended this long before the earlier clip did for its transcript to
# stand: a word cut at the clip's edge is heard whole only in the longer clip.
NOTHING_NEW_GAP_S = 0.2


def nothing_new(timing: TimingFeatures, earlier: EarlierHearing | None) -> bool:
    """Whether a clip holds no speech beyond what an earlier, shorter clip of the same
    call held (with ``NOTHING_NEW_GAP_S`` of silence at that clip's end)."""
    if earlier is None:
        return False
    speech_end = timing.clip_s - timing.trailing_silence_s
    return not timing.has_speech or speech_end <= earlier.audio_s - NOTHING_NEW_GAP_S


def warn_if_trained_on_another_whisper(
    classifier: AmdClassifier, classifier_path: Path, whisper_dir: Path
) -> bool:
    """A classifier learns the words one Whisper hears; served with another, its
    confidences no longer mean what they say. Logs a warning (and returns True) when the
    classifier names the Whisper it was trained with and this is not it."""
    trained = classifier.model.meta.get("training", {}).get("whisper")
    if not isinstance(trained, dict) or "sha256" not in trained:
        return False  # trained on text, or before classifiers recorded their Whisper
    if whisper_fingerprint(whisper_dir) == trained["sha256"]:
        return False
    log.warning(
        "classifier %s was trained on the transcripts of Whisper %r, not of %s: its "
        "confidence may not mean what it says; train one on this Whisper "
        "(amd-train classifier --whisper-model) or serve the two together",
        classifier_path,
        trained.get("model", "?"),
        whisper_dir,
    )
    return True


@dataclass(frozen=True)
class EngineInfo:
    whisper_dir: str
    classifier_path: str
    device: str
    compute_type: str


class Detector:
    """Loads the models once; ``analyze_batch`` may run on several threads at once."""

    def __init__(
        self,
        whisper_dir: Path,
        classifier_path: Path,
        asr_options: AsrOptions,
        vad_threshold: float = 0.5,
    ) -> None:
        t0 = time.perf_counter()
        self.classifier = AmdClassifier.load(classifier_path)
        warn_if_trained_on_another_whisper(self.classifier, classifier_path, whisper_dir)
        self.transcriber = Transcriber(whisper_dir, asr_options, vad_threshold)
        compute_type = self.transcriber.asr.compute_type
        self.info = EngineInfo(
            str(whisper_dir), str(classifier_path), asr_options.device, compute_type
        )
        log.info(
            "engine ready in %.2f s: whisper=%s (%s %s) classifier=%s",
            time.perf_counter() - t0,
            whisper_dir,
            asr_options.device,
            compute_type,
            classifier_path,
        )

    def analyze_batch(
        self,
        clips: Sequence[Float32Array],
        heard_before: Sequence[EarlierHearing | None] | None = None,
    ) -> list[AnalysisResult]:
        """Transcribe, time and classify clips; one result per clip, in order.
        ``heard_before``: per clip, what an earlier analysis of its call heard."""
        t0 = time.perf_counter()
        heard = self.transcriber.hear_batch(clips, heard_before)
        probs = self.classifier.proba_human_batch(
            [h.asr.text for h in heard], [h.timing for h in heard]
        )
        compute_ms = (time.perf_counter() - t0) * 1000.0
        return [
            AnalysisResult(
                transcript=h.asr.text,
                proba_human=p,
                timing=h.timing,
                compute_ms=compute_ms,
                batch_size=len(clips),
                asr_looped=h.asr.looped,
                asr_reused=h.reused,
            )
            for h, p in zip(heard, probs, strict=True)
        ]
