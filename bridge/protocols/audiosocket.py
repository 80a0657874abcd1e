"""Asterisk's AudioSocket wire protocol, as pure code (no I/O).

Every message is a 3-byte header, kind (1 byte) and payload length (16-bit
big-endian), then the payload. Kinds, from ``include/asterisk/res_audiosocket.h``:

====  ===========================  =========================================
kind  payload                      direction
====  ===========================  =========================================
0x00  none                         hang up (either way; we send it to finish)
0x01  16 raw bytes: the call UUID  Asterisk to us, first message
0x03  1 ASCII byte: a DTMF digit   Asterisk to us
0x10  slin 8 kHz                   both ways
0x11  slin 12 kHz ... 0x18 192k    both ways (newer Asterisk, channel driver)
0xFF  optional error code          Asterisk to us
====  ===========================  =========================================

Asterisk's ``AudioSocket()`` application treats any kind other than audio or
hangup from the server as an error and ends the call, so the encoders here make
only those two.
"""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass

from bridge.audio.chunk import AudioFormat, Encoding
from bridge.errors import ProtocolError

HEADER_BYTES = 3
MAX_PAYLOAD = 0xFFFF  # what the 16-bit length can say


class AudioSocketError(ProtocolError):
    """Bytes that are not a valid AudioSocket message; the stream cannot be resumed.

    ``messages`` holds the valid messages that came before the bad bytes in the
    same ``Parser.feed`` call, so a caller can still act on them.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.messages: list[Message] = []


class Kind(enum.IntEnum):
    HANGUP = 0x00
    UUID = 0x01
    DTMF = 0x03
    SLIN_8K = 0x10
    SLIN_12K = 0x11
    SLIN_16K = 0x12
    SLIN_24K = 0x13
    SLIN_32K = 0x14
    SLIN_44K = 0x15
    SLIN_48K = 0x16
    SLIN_96K = 0x17
    SLIN_192K = 0x18
    ERROR = 0xFF


AUDIO_RATES: dict[Kind, int] = {
    Kind.SLIN_8K: 8000,
    Kind.SLIN_12K: 12000,
    Kind.SLIN_16K: 16000,
    Kind.SLIN_24K: 24000,
    Kind.SLIN_32K: 32000,
    Kind.SLIN_44K: 44100,
    Kind.SLIN_48K: 48000,
    Kind.SLIN_96K: 96000,
    Kind.SLIN_192K: 192000,
}
AUDIO_KINDS: dict[int, Kind] = {rate: kind for kind, rate in AUDIO_RATES.items()}
# One format per audio kind, made once (every audio message names one).
_FORMATS: dict[int, AudioFormat] = {
    kind: AudioFormat(Encoding.SLIN, rate) for kind, rate in AUDIO_RATES.items()
}


@dataclass(frozen=True)
class Hangup:
    """The peer asks to end the call (Asterisk sends none; a closed socket says it)."""


@dataclass(frozen=True)
class CallId:
    """The first message: the id the dialplan passed to ``AudioSocket()``."""

    id: uuid.UUID


@dataclass(frozen=True)
class Dtmf:
    digit: str


@dataclass(frozen=True)
class Audio:
    """Signed 16-bit little-endian mono PCM at ``format.rate``; any even length."""

    format: AudioFormat
    data: bytes


@dataclass(frozen=True)
class PeerError:
    """Asterisk reports an error on its side; ``code`` is its payload, maybe empty."""

    code: bytes


Message = Hangup | CallId | Dtmf | Audio | PeerError


def decode(kind_byte: int, payload: bytes) -> Message:
    """One message from its kind and payload; ``AudioSocketError`` if it is not valid."""
    fmt = _FORMATS.get(kind_byte)
    if fmt is not None:  # audio, most messages by far: no enum lookup
        if not payload:
            raise AudioSocketError("an audio message with no samples")
        return Audio(fmt, payload)
    try:
        kind = Kind(kind_byte)
    except ValueError:
        raise AudioSocketError(f"unknown message kind 0x{kind_byte:02x}") from None
    if kind is Kind.HANGUP:
        return Hangup()
    if kind is Kind.UUID:
        if len(payload) != 16:
            raise AudioSocketError(f"a UUID message carries 16 bytes, not {len(payload)}")
        return CallId(uuid.UUID(bytes=payload))
    if kind is Kind.DTMF:
        if len(payload) != 1 or not 0x20 < payload[0] < 0x7F:
            raise AudioSocketError("a DTMF message carries one printable ASCII byte")
        return Dtmf(chr(payload[0]))
    assert kind is Kind.ERROR  # the audio kinds were taken above
    return PeerError(payload)


def joined_audio(messages: list[Message]) -> list[Message]:
    """The same messages with each run of audio at one rate made one message (a
    read that caught up with several frames is then handled once, not per frame)."""
    out: list[Message] = []
    for message in messages:
        last = out[-1] if out else None
        if isinstance(message, Audio) and isinstance(last, Audio) and last.format == message.format:
            out[-1] = Audio(message.format, last.data + message.data)
        else:
            out.append(message)
    return out


class Parser:
    """Incremental parser: feed bytes as they arrive, get whole messages back.

    A message split over reads is kept until complete; an invalid one raises
    ``AudioSocketError``, after which the stream is unusable (the protocol has no
    way to find the next header). ``max_payload`` bounds what one message may
    claim, so a hostile length cannot make us wait for or buffer 64 KB.
    """

    def __init__(self, max_payload: int = MAX_PAYLOAD) -> None:
        self.max_payload = max_payload
        self._pending = bytearray()
        self._broken = False

    @property
    def buffered(self) -> int:
        """Bytes held for an incomplete message."""
        return len(self._pending)

    def feed(self, data: bytes) -> list[Message]:
        if self._broken:
            raise AudioSocketError("the stream already broke the protocol")
        self._pending += data
        messages: list[Message] = []
        offset = 0
        try:
            while len(self._pending) - offset >= HEADER_BYTES:
                kind = self._pending[offset]
                length = int.from_bytes(self._pending[offset + 1 : offset + 3], "big")
                if length > self.max_payload:
                    raise AudioSocketError(
                        f"message of {length} bytes exceeds the limit of {self.max_payload}"
                    )
                end = offset + HEADER_BYTES + length
                if len(self._pending) < end:
                    if kind not in Kind._value2member_map_:
                        raise AudioSocketError(f"unknown message kind 0x{kind:02x}")
                    break
                messages.append(decode(kind, bytes(self._pending[offset + HEADER_BYTES : end])))
                offset = end
        except AudioSocketError as exc:
            self._broken = True
            self._pending.clear()
            exc.messages = messages
            raise
        del self._pending[:offset]
        return messages


def encode(kind: Kind, payload: bytes = b"") -> bytes:
    if len(payload) > MAX_PAYLOAD:
        raise ValueError(f"payload of {len(payload)} bytes does not fit one message")
    return bytes((kind,)) + len(payload).to_bytes(2, "big") + payload


def encode_audio(rate: int, pcm: bytes) -> bytes:
    """An audio message at ``rate`` (one of ``AUDIO_RATES``)."""
    return encode(AUDIO_KINDS[rate], pcm)


def encode_hangup() -> bytes:
    return encode(Kind.HANGUP)


def encode_call_id(call_id: uuid.UUID) -> bytes:
    """What Asterisk sends first; here for tests and clients written in Python."""
    return encode(Kind.UUID, call_id.bytes)
