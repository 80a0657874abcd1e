"""The end of a machine's greeting: when a voicemail drop should start talking.

After a MACHINE decision a call may ask to wait for the greeting to end. The
watch reads the call's ``ToneTracker`` and ends at the first of:

* **BEEP**: a beep with no speech after it (one heard before the decision counts);
* **SILENCE**: speech was heard, then nothing louder than the noise floor for
  ``silence_s`` (a greeting that ends without a beep);
* **TIMEOUT**: ``timeout_s`` of audio from the start of the call, or the stream
  stopped (no audio for the no-audio timeout, or its end).

Twilio's ``DetectMessageEnd`` reports the same three as ``machine_end_beep``,
``machine_end_silence`` and ``machine_end_other``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from bridge.errors import ConfigError
from bridge.tones import ToneKind, ToneTracker


class MessageEndKind(enum.Enum):
    """The values of ``AMDMESSAGEEND``."""

    BEEP = "BEEP"
    SILENCE = "SILENCE"
    TIMEOUT = "TIMEOUT"


@dataclass(frozen=True)
class MessageEndPolicy:
    silence_s: float = 1.5  # silence after speech that ends a greeting without a beep
    timeout_s: float = 30.0  # audio from the call's start after which we stop waiting

    def __post_init__(self) -> None:
        if not 0.3 <= self.silence_s <= 10.0:
            raise ConfigError("message-end silence must be between 0.3 and 10 s")
        if not 1.0 <= self.timeout_s <= 120.0:
            raise ConfigError("message-end timeout must be between 1 and 120 s")


@dataclass(frozen=True)
class MessageEnd:
    kind: MessageEndKind
    audio_s: float  # call audio received when the end was known
    beep_end_s: float | None = None  # BEEP: audio time the beep ended

    def variables(self) -> dict[str, str]:
        """``AMDBEEPMS`` (the beep's end in ms, empty without one), then ``AMDMESSAGEEND``,
        in the order they are to be set: a poller that waits for ``AMDMESSAGEEND``
        finds ``AMDBEEPMS`` already set."""
        beep_ms = "" if self.beep_end_s is None else str(round(self.beep_end_s * 1000))
        return {"AMDBEEPMS": beep_ms, "AMDMESSAGEEND": self.kind.value}

    def summary(self) -> dict[str, object]:
        return {
            "message_end": self.kind.value,
            "beep_ms": None if self.beep_end_s is None else round(self.beep_end_s * 1000),
            "audio_s": round(self.audio_s, 3),
        }


def message_end(tones: ToneTracker, policy: MessageEndPolicy) -> MessageEnd | None:
    """The greeting's end if the audio so far shows one, else None."""
    heard = tones.audio_s
    speech = tones.last_speech_s
    beep = next((e for e in reversed(tones.events) if e.kind is ToneKind.BEEP), None)
    if beep is not None and (speech is None or speech <= beep.end_s):
        return MessageEnd(MessageEndKind.BEEP, heard, beep.end_s)
    if speech is not None and heard - speech >= policy.silence_s:
        return MessageEnd(MessageEndKind.SILENCE, heard)
    if heard >= policy.timeout_s:
        return MessageEnd(MessageEndKind.TIMEOUT, heard)
    return None
