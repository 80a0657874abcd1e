"""Every parser the network reaches, as a function of bytes, with its rule: any
input parses or raises the documented error (``ProtocolError`` and its
subclasses). Anything else escaping is a bug. Used by the Hypothesis test in the
suite and by the longer atheris run in ``scripts/fuzz.py``."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import numpy as np

from bridge.audio import AudioFormat, CallAudio, Encoding
from bridge.errors import ProtocolError
from bridge.protocols import amd_ws, audio_fork, audiosocket, esl
from bridge.tones import ToneTracker


def audiosocket_stream(data: bytes) -> None:
    """AudioSocket from Asterisk, cut into two reads at the first byte's value."""
    parser = audiosocket.Parser(16384)
    cut = data[0] if data else 0
    for piece in (data[:cut], data[cut:]):
        parser.feed(piece)


def esl_stream(data: bytes) -> None:
    """Event socket replies and events from FreeSWITCH."""
    parser = esl.Parser()
    for message in parser.feed(data):
        message.get("Content-Type")
        _ = message.reply, message.ok, message.is_reply


def fork_handshake(data: bytes) -> None:
    """mod_audio_fork's URL and metadata frame, then binary frames split to the left."""
    text = data.decode("utf-8", "replace")
    url, _, metadata = text.partition("\n")
    params = audio_fork.params_from_path("/ws/audio-fork?" + url)
    params = audio_fork.params_with_metadata(params, metadata)
    audio_fork.LeftChannel(params.channels).feed(data)


def amd_ws_messages(data: bytes) -> None:
    """/ws/amd's query string and a text message."""
    text = data.decode("utf-8", "replace")
    query, _, message = text.partition("\n")
    amd_ws.parse_request_path("/ws/amd?" + query)
    amd_ws.parse_text_message(message)


def audio_and_tones(data: bytes) -> None:
    """Audio bytes as any call sends them, through the decoder and the tone tracker."""
    fmt = [
        AudioFormat(Encoding.ULAW, 8000),
        AudioFormat(Encoding.SLIN, 16000),
        AudioFormat(Encoding.ALAW, 8000),
    ][len(data) % 3]
    call, tracker = CallAudio(fmt), ToneTracker(fmt.rate)
    samples = call.decode(data)
    tracker.feed(samples)
    tracker.feed(np.zeros(fmt.rate // 10, dtype=np.float32))
    tracker.end()


TARGETS: dict[str, Callable[[bytes], None]] = {
    "audiosocket": audiosocket_stream,
    "esl": esl_stream,
    "fork": fork_handshake,
    "amd_ws": amd_ws_messages,
    "tones": audio_and_tones,
}


# Well-formed inputs per target: where the fuzzer starts (it cannot guess
# "rate=" from coverage alone) and what the suite runs all the way through.
SEEDS: dict[str, list[bytes]] = {
    "audiosocket": [b"\x13\x01\x00\x10" + bytes(16) + b"\x10\x00\x04abcd\x00\x00\x00"],
    "esl": [
        b"Content-Type: auth/request\n\n",
        b"Content-Type: api/response\nContent-Length: 3\n\n+OK",
        b"Content-Type: command/reply\nReply-Text: -ERR invalid\n\n",
    ],
    "fork": [
        b'rate=8k&mix=stereo&uuid=0f8c9b1e-6a1d-4d0e-9a55-3d6f1c2b7e10\n{"message_end": true}',
        b'mix=mono\n{"rate": 16000, "uuid": "0f8c9b1e-6a1d-4d0e-9a55-3d6f1c2b7e10"}',
    ],
    "amd_ws": [
        b'rate=8000&encoding=ulaw&call_id=a1&message_end=yes\n{"type": "flush"}',
        b'rate=16000\n{"type": "flush"}',
    ],
    "tones": [bytes(range(256)) * 8],
}


def check(target: Callable[[bytes], None], data: bytes) -> None:
    """The rule: parsed, or the documented error."""
    with contextlib.suppress(ProtocolError):
        target(data)
