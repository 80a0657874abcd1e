"""The engine: Whisper on CTranslate2, silero VAD timing, the classifier, the batcher."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bridge.engine.batcher import BatchingEngine
from bridge.engine.detector import Detector

if TYPE_CHECKING:
    from bridge.settings import Settings


def build_detector(settings: Settings) -> Detector:
    """Load every model named by the settings; raises ``ModelError`` with the cause."""
    return Detector(
        whisper_dir=settings.whisper_dir(),
        classifier_path=settings.classifier_path(),
        asr_options=settings.asr_options,
        vad_threshold=settings.vad_threshold,
    )


def build_batching_engine(settings: Settings, detector: Detector) -> BatchingEngine:
    """The async front; call inside the event loop that will use it."""
    return BatchingEngine(
        detector.analyze_batch,
        max_batch=settings.batch_size,
        max_wait_s=settings.batch_wait_ms / 1000.0,
        workers=settings.engine_workers,
        max_queue=settings.engine_queue,
    )


__all__ = ["BatchingEngine", "Detector", "build_batching_engine", "build_detector"]
