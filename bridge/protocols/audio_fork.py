"""What FreeSWITCH's ``mod_audio_fork`` sends over its WebSocket, as pure code.

Written from the module's sources (``mod_audio_fork.c``, ``lws_glue.cpp``,
``audio_pipe.cpp`` in drachtio-freeswitch-modules):

- ``uuid_audio_fork <uuid> start <url> <mono|mixed|stereo> <8k|16k|N> [metadata]``
  connects with the subprotocol ``audio.drachtio.org`` and, if metadata was
  given, sends it as the first (text) frame.
- Then binary frames of L16 little-endian at the rate asked for, holding
  whatever accumulated since the last write (so their length varies). ``mono``
  is what the channel reads (the callee on an outbound call); ``mixed`` is that
  mixed with what is played to it; ``stereo`` interleaves read (left) and
  written (right) samples.
- ``graceful-shutdown`` sends a binary frame of length zero.
- The module never says which rate or mix it was started with, so the URL or
  the metadata must: ``?rate=16000&mix=mono`` or ``{"rate": 16000, "mix": "mono"}``.
  The channel's uuid comes the same way: ``"uuid"`` in the metadata or ``?uuid=``,
  and so does ``message_end`` (wait for the end of a machine's greeting).
- Text from the server is JSON with a ``type``; ``{"type": "json", ...}`` becomes
  a ``mod_audio_fork::json`` event whose body is the whole message.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import parse_qs, urlsplit

import numpy as np

from bridge.audio.chunk import AudioFormat, Encoding
from bridge.errors import AmdError, ProtocolError
from bridge.protocols.esl import is_channel_uuid
from bridge.protocols.flags import parse_flag
from bridge.protocols.json_text import load_bounded
from bridge.session.decision import Decision
from bridge.session.message_end import MessageEnd

PATH = "/ws/audio-fork"
SUBPROTOCOLS = ("audio.drachtio.org", "audiostream.drachtio.org")
DEFAULT_RATE = 16000
MIXES = ("mono", "mixed", "stereo")
MAX_METADATA_BYTES = 8192  # the module's own MAX_METADATA_LEN
_FIELDS = ("rate", "mix", "uuid", "message_end")
# uuid_audio_fork splits its arguments at spaces (switch_separate_string), so JSON
# with spaces reaches us in pieces: the first word or two as a "bugname", the rest
# as the metadata.
SPACES_HINT = (
    "FreeSWITCH splits uuid_audio_fork's arguments at spaces: "
    'write the metadata without any, as {"uuid":"<uuid>","rate":8000}'
)


@dataclass(frozen=True)
class ForkParams:
    rate: int = DEFAULT_RATE
    mix: str = "mono"
    uuid: str | None = None
    message_end: bool | None = None  # wait for the greeting's end (None: the service default)

    @property
    def channels(self) -> int:
        return 2 if self.mix == "stereo" else 1

    @property
    def format(self) -> AudioFormat:
        """The format of the callee's audio once the left channel is taken."""
        return AudioFormat(Encoding.SLIN, self.rate)


def params_from_path(path: str) -> ForkParams:
    """``rate``, ``mix`` and ``uuid`` from the URL's query string (all optional)."""
    query = parse_qs(urlsplit(path).query, keep_blank_values=True)
    values: dict[str, Any] = {n: query[n][-1] for n in _FIELDS if n in query}
    return _merge(ForkParams(), values, "query parameter")


def params_with_metadata(params: ForkParams, text: str) -> ForkParams:
    """Apply the metadata frame: a JSON object's ``rate``, ``mix`` and ``uuid``
    override the URL's. Other JSON (an array, say) carries none of them."""
    metadata = load_bounded(
        text,
        MAX_METADATA_BYTES,
        "metadata",
        not_json=f"metadata {text[:48]!r} is not JSON ({SPACES_HINT})",
    )
    if not isinstance(metadata, dict):
        return params
    values = {name: metadata[name] for name in _FIELDS if name in metadata}
    return _merge(params, values, "metadata field")


def _merge(params: ForkParams, values: dict[str, Any], where: str) -> ForkParams:
    if "rate" in values:
        raw = values["rate"]
        rate = _rate(raw)
        if rate is None:
            raise ProtocolError(f"{where} rate={str(raw)[:20]!r}: expected 8000, 16000, ...")
        try:
            AudioFormat(Encoding.SLIN, rate)
        except AmdError as exc:
            raise ProtocolError(f"{where} rate={rate}: {exc}") from None
        params = replace(params, rate=rate)
    if "mix" in values:
        mix = values["mix"]
        if mix not in MIXES:
            raise ProtocolError(f"{where} mix={str(mix)[:20]!r}: expected mono, mixed or stereo")
        params = replace(params, mix=mix)
    if "uuid" in values:
        uuid = values["uuid"]
        if not isinstance(uuid, str) or not is_channel_uuid(uuid):
            raise ProtocolError(f"{where} uuid={str(uuid)[:70]!r} is not a channel uuid")
        params = replace(params, uuid=uuid)
    if "message_end" in values:
        params = replace(
            params, message_end=parse_flag(values["message_end"], where + " message_end")
        )
    return params


def _rate(raw: object) -> int | None:
    """``16000``, ``"16000"`` or ``"16k"`` (the forms the fork command takes)."""
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int):
        rate = raw
    elif isinstance(raw, str) and raw.isascii():
        text = raw.strip().lower()
        if text.endswith("k") and text[:-1].isdigit():
            rate = int(text[:-1]) * 1000
        elif text.isdigit():
            rate = int(text)
        else:
            return None
    else:
        return None
    return rate if rate > 0 and rate % 8000 == 0 else None


class LeftChannel:
    """Stereo frames to their left channel (the callee), whatever the frame lengths.

    Frames may end mid-sample or mid-pair; the remainder waits for the next one.
    """

    def __init__(self, channels: int) -> None:
        self.frame_bytes = 2 * channels
        self._rest = b""

    def feed(self, data: bytes) -> bytes:
        if self.frame_bytes == 2:
            return data  # mono: the session carries odd bytes over itself
        data = self._rest + data
        usable = len(data) - len(data) % self.frame_bytes
        self._rest = data[usable:]
        samples = np.frombuffer(data, dtype="<i2", count=usable // 2)
        return samples[:: self.frame_bytes // 2].tobytes()


def result_message(result: Decision | MessageEnd, uuid: str | None) -> str:
    """The text frame FreeSWITCH turns into a ``mod_audio_fork::json`` event: the
    decision (``"type": "amd"``) or the greeting's end (``"type": "amd_message_end"``)."""
    kind = "amd" if isinstance(result, Decision) else "amd_message_end"
    return json.dumps({"type": "json", "data": {"type": kind, "uuid": uuid, **result.summary()}})


def error_message(text: str) -> str:
    """Shows up in FreeSWITCH as a ``mod_audio_fork::error`` event."""
    return json.dumps({"type": "error", "data": {"error": text}})
