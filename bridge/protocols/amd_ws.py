"""The generic ``/ws/amd`` WebSocket API, compatible with the seed project.

Client to server: binary frames of audio (PCM16 little-endian mono 16 kHz unless
the query string says otherwise: ``?rate=8000&encoding=ulaw``), and text frames
of JSON; ``{"type": "flush"}`` asks for the final answer now. With
``?message_end=1`` a MACHINE call keeps listening for the end of the greeting.

Server to client: ``{"type": "early", ...}`` when the call session decides,
``{"type": "message_end", "message_end": "BEEP", "beep_ms": 9850, ...}`` when a
watched greeting ends, ``{"type": "final", ...}`` after a flush or once the
maximum window of audio has arrived (then the server closes), and
``{"type": "error", "error": "..."}`` for a message it cannot use (the
connection stays open).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

from bridge.audio.chunk import AudioFormat
from bridge.errors import AmdError, ProtocolError
from bridge.protocols.flags import parse_flag
from bridge.protocols.json_text import load_bounded
from bridge.session.decision import Decision
from bridge.session.message_end import MessageEnd

PATH = "/ws/amd"
# A text frame is a small JSON command; anything longer is not ours.
MAX_TEXT_BYTES = 4096
_CALL_ID = re.compile(r"^[A-Za-z0-9._:@-]{1,128}$")


@dataclass(frozen=True)
class StreamParams:
    format: AudioFormat
    call_id: str | None
    message_end: bool | None = None  # wait for the greeting's end (None: the service default)


# The query parameters /ws/amd reads (``token`` is the HTTP layer's bearer token).
QUERY_PARAMETERS = ("rate", "encoding", "call_id", "message_end", "token")


def parse_request_path(path: str) -> StreamParams:
    """Read ``rate``, ``encoding``, ``call_id`` and ``message_end`` from the request's
    query string. An unknown parameter (a typo would silently decode the call wrongly)
    or a repeated one (which value?) is refused."""
    query = parse_qs(urlsplit(path).query, keep_blank_values=True)
    for name, values in query.items():
        if name not in QUERY_PARAMETERS:
            raise ProtocolError(
                f"unknown query parameter {name[:40]!r} (known: {', '.join(QUERY_PARAMETERS)})"
            )
        if len(values) > 1:
            raise ProtocolError(f"query parameter {name!r} given {len(values)} times")

    def one(name: str, default: str) -> str:
        values = query.get(name)
        return values[-1] if values else default

    raw_rate = one("rate", "16000")
    if not raw_rate.isdigit():
        raise ProtocolError(f"rate={raw_rate!r} is not a whole number of Hz")
    try:
        fmt = AudioFormat.parse(one("encoding", "slin"), int(raw_rate))
    except AmdError as exc:
        raise ProtocolError(str(exc)) from exc
    call_id = one("call_id", "") or None
    if call_id is not None and not _CALL_ID.match(call_id):
        raise ProtocolError("call_id must be 1-128 letters, digits or ._:@-")
    raw_end = one("message_end", "")
    message_end = parse_flag(raw_end, "message_end") if raw_end else None
    return StreamParams(fmt, call_id, message_end)


@dataclass(frozen=True)
class Flush:
    """The client has no more audio and wants the final answer."""


def parse_text_message(text: str) -> Flush:
    """Parse one client text frame; raise ``ProtocolError`` for anything else."""
    message = load_bounded(text, MAX_TEXT_BYTES, "text message", "malformed JSON")
    if not isinstance(message, dict):
        raise ProtocolError("a message must be a JSON object")
    kind = message.get("type")
    if kind == "flush":
        return Flush()
    raise ProtocolError(f"unknown message type {kind!r} (expected 'flush')")


def decision_message(kind: str, decision: Decision) -> str:
    """The seed's ``early``/``final`` message, with the AMD fields added."""
    return json.dumps({"type": kind, **decision.summary()})


def message_end_message(end: MessageEnd) -> str:
    return json.dumps({"type": "message_end", **end.summary()})


def error_message(error: str) -> str:
    return json.dumps({"type": "error", "error": error})
