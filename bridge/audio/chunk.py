"""The one typed audio chunk every media adapter emits."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from bridge.errors import UnsupportedAudioFormat


class Encoding(enum.Enum):
    """Sample encodings PBXs send us."""

    SLIN = "slin"  # signed 16-bit linear PCM, little-endian (Asterisk slin, FreeSWITCH L16)
    ULAW = "ulaw"  # G.711 mu-law, one byte a sample
    ALAW = "alaw"  # G.711 A-law, one byte a sample


# The rates Asterisk's AudioSocket kinds 0x10-0x18 name (res_audiosocket.h), which
# include every rate mod_audio_fork and the /ws/amd API can be asked for.
SLIN_RATES = frozenset({8000, 12000, 16000, 24000, 32000, 44100, 48000, 96000, 192000})
# G.711 is defined at 8 kHz only.
G711_RATES = frozenset({8000})


@dataclass(frozen=True)
class AudioFormat:
    """Encoding, sample rate and channel count of a stream (mono only)."""

    encoding: Encoding
    rate: int

    def __post_init__(self) -> None:
        allowed = SLIN_RATES if self.encoding is Encoding.SLIN else G711_RATES
        if self.rate not in allowed:
            raise UnsupportedAudioFormat(
                f"{self.encoding.value} at {self.rate} Hz is not supported "
                f"(allowed rates: {', '.join(str(r) for r in sorted(allowed))})"
            )

    @property
    def bytes_per_sample(self) -> int:
        return 2 if self.encoding is Encoding.SLIN else 1

    def duration(self, n_bytes: int) -> float:
        """Seconds of audio in ``n_bytes`` of this format."""
        return n_bytes / (self.bytes_per_sample * self.rate)

    @classmethod
    def parse(cls, encoding: str, rate: int) -> AudioFormat:
        """Build a format from common names: ``slin``/``pcm16``/``l16``, ``ulaw``, ``alaw``."""
        aliases = {
            "slin": Encoding.SLIN,
            "pcm16": Encoding.SLIN,
            "l16": Encoding.SLIN,
            "s16le": Encoding.SLIN,
            "ulaw": Encoding.ULAW,
            "mulaw": Encoding.ULAW,
            "pcmu": Encoding.ULAW,
            "alaw": Encoding.ALAW,
            "pcma": Encoding.ALAW,
        }
        try:
            enc = aliases[encoding.strip().lower()]
        except KeyError:
            raise UnsupportedAudioFormat(
                f"unknown encoding {encoding!r} (use slin, ulaw or alaw)"
            ) from None
        return cls(enc, rate)


SLIN_8K = AudioFormat(Encoding.SLIN, 8000)
SLIN_16K = AudioFormat(Encoding.SLIN, 16000)
ULAW_8K = AudioFormat(Encoding.ULAW, 8000)
ALAW_8K = AudioFormat(Encoding.ALAW, 8000)


@dataclass(frozen=True)
class AudioChunk:
    """Raw audio as it arrived from the PBX, with its format.

    ``data`` may end in the middle of a sample; ``CallAudio`` carries the odd
    byte over to the next chunk, since frames on the wire are not always aligned.
    """

    format: AudioFormat
    data: bytes

    @property
    def duration(self) -> float:
        return self.format.duration(len(self.data))
