"""What the engine returns for a clip, and what a call's decision carries."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Status(enum.Enum):
    """The values of ``AMDSTATUS``, as Asterisk's own ``AMD()`` sets them."""

    HUMAN = "HUMAN"
    MACHINE = "MACHINE"
    NOTSURE = "NOTSURE"
    HANGUP = "HANGUP"


class Cause(enum.Enum):
    """Why a decision was taken; the first word of ``AMDCAUSE``.

    ``AMDCAUSE`` is ``<CAUSE>-<n>-<n>`` in the spirit of ``AMD()`` (whose causes
    look like ``INITIALSILENCE-2500-2500``); see ``Decision.amd_cause``.
    """

    CLASSIFIER = "CLASSIFIER"  # the model cleared the threshold: CLASSIFIER-<conf%>-<audio ms>
    LOWCONFIDENCE = "LOWCONFIDENCE"  # max window reached below threshold: -<conf%>-<audio ms>
    SILENCE = "SILENCE"  # audio arrived but no speech in it: SILENCE-<audio ms>
    NOAUDIO = "NOAUDIO"  # no audio at all (stream ended or timed out): NOAUDIO-<audio ms>
    HANGUP = "HANGUP"  # the callee hung up before a decision: HANGUP-<audio ms>
    ERROR = "ERROR"  # inference failed or timed out: ERROR-<audio ms>
    OVERLOAD = "OVERLOAD"  # refused at the service's concurrency limit: OVERLOAD-0
    SHUTDOWN = "SHUTDOWN"  # the service stopped before a decision: SHUTDOWN-<audio ms>
    FAX = "FAX"  # MACHINE: a fax answer (CED 2100 Hz) or calling (CNG 1100 Hz) tone: FAX-<ms>
    SIT = "SIT"  # MACHINE: special information tones ("not in service"): SIT-<audio ms>
    # MACHINE: a beep after the callee's first sounds, as a voicemail plays when it starts
    # recording: BEEP-<audio ms>
    BEEP = "BEEP"


@dataclass(frozen=True)
class TimingFeatures:
    """When the callee spoke inside the analysed clip, from the VAD (seconds)."""

    initial_silence_s: float  # from the start to the first speech (clip length if none)
    speech_s: float  # total speech
    trailing_silence_s: float  # from the end of the last speech to the end of the clip
    segments: int  # separate stretches of speech
    clip_s: float  # length of the analysed clip
    # The same for the loudest voice only (the talker, not people talking behind them;
    # ``bridge.engine.vad.foreground_timing`` says how it is told apart).
    foreground_speech_s: float = 0.0
    foreground_trailing_s: float = 0.0  # from the foreground's last speech to the end
    foreground_segments: int = 0
    background_speech_s: float = 0.0  # speech quieter than the foreground
    snr_db: float = 0.0  # the loud speech over the clip's quietest tenth, dB

    @property
    def has_speech(self) -> bool:
        return self.segments > 0

    def as_vector(self) -> list[float]:
        """The classifier's numeric inputs, in ``TIMING_FEATURE_NAMES`` order."""
        return [
            self.initial_silence_s,
            self.speech_s,
            self.trailing_silence_s,
            float(self.segments),
            self.speech_s / self.clip_s if self.clip_s > 0 else 0.0,
            self.foreground_speech_s,
            self.foreground_trailing_s,
            float(self.foreground_segments),
            self.background_speech_s,
            self.snr_db,
        ]


TIMING_FEATURE_NAMES = (
    "initial_silence_s",
    "speech_s",
    "trailing_silence_s",
    "segments",
    "speech_ratio",
    "foreground_speech_s",
    "foreground_trailing_s",
    "foreground_segments",
    "background_speech_s",
    "snr_db",
)


@dataclass(frozen=True)
class EarlierHearing:
    """What an earlier analysis of the same call heard: its transcript, and how much
    of the call's audio that clip held. When the later clip has no speech past that
    point, the engine reuses the transcript instead of running Whisper again."""

    transcript: str
    audio_s: float


@dataclass(frozen=True)
class AnalysisResult:
    """The engine's answer for one clip."""

    transcript: str
    proba_human: float
    timing: TimingFeatures
    compute_ms: float  # time spent in the batch that held this clip
    batch_size: int = 1
    asr_looped: bool = False  # the repetition guard cut the transcript
    asr_reused: bool = False  # nothing new was said: the earlier transcript stands


@dataclass(frozen=True)
class Decision:
    """The outcome of a call; everything a PBX variable or a JSON line needs."""

    status: Status
    cause: Cause
    decision_audio_s: float  # callee audio received when the decision was taken
    proba_human: float | None = None
    transcript: str = ""
    elapsed_ms: float | None = None  # wall time from analysis request to its result
    compute_ms: float | None = None
    timing: TimingFeatures | None = None

    @property
    def label(self) -> str:
        """``human``, ``machine`` or ``notsure`` (HANGUP counts as notsure), as in the seed API."""
        if self.status is Status.HUMAN:
            return "human"
        if self.status is Status.MACHINE:
            return "machine"
        return "notsure"

    @property
    def confidence(self) -> float | None:
        """Probability of the label given (for NOTSURE: of the likelier class)."""
        if self.proba_human is None:
            return None
        if self.status is Status.MACHINE:
            return 1.0 - self.proba_human
        if self.status is Status.HUMAN:
            return self.proba_human
        return max(self.proba_human, 1.0 - self.proba_human)

    def summary(self) -> dict[str, object]:
        """The fields every output carries (JSON lines, WebSocket messages, logs)."""
        return {
            "label": self.label,
            "status": self.status.value,
            "cause": self.amd_cause,
            "confidence": round_or_none(self.confidence, 4),
            "proba_human": round_or_none(self.proba_human, 4),
            "transcript": self.transcript,
            "decision_audio_s": round(self.decision_audio_s, 3),
            "elapsed_ms": round_or_none(self.elapsed_ms, 1),
        }

    @property
    def amd_cause(self) -> str:
        """The ``AMDCAUSE`` string, e.g. ``CLASSIFIER-93-2000`` or ``SILENCE-5000``."""
        audio_ms = round(self.decision_audio_s * 1000)
        if self.cause in (Cause.CLASSIFIER, Cause.LOWCONFIDENCE) and self.confidence is not None:
            return f"{self.cause.value}-{round(self.confidence * 100)}-{audio_ms}"
        return f"{self.cause.value}-{audio_ms}"


def round_or_none(value: float | None, digits: int) -> float | None:
    """``round`` that lets a missing figure stay missing."""
    return None if value is None else round(value, digits)
