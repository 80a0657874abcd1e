"""A WebSocket client that behaves as FreeSWITCH's mod_audio_fork does, written
from the module's sources (``audio_pipe.cpp``, ``lws_glue.cpp``, ``mod_audio_fork.c``):

- connects asking for the subprotocol ``audio.drachtio.org``;
- once connected, sends the metadata (if any) as one text frame, before audio;
- then sends, each time the socket is writable, everything the media bug
  collected since the last write as one binary frame of L16 little-endian
  (one 20 ms packet or several, so frame lengths vary);
- ``graceful-shutdown`` sends a binary frame of length zero;
- turns text frames from the server into events as ``processIncomingMessage``
  does: JSON with a ``type``; ``json`` -> ``mod_audio_fork::json`` with the
  whole message as body; ``error``/``disconnect``/``transcription``/
  ``transfer`` -> their events with ``data`` as body; no ``type`` -> a logged
  error; binary frames from the server are discarded;
- a close by the server while connected is ``mod_audio_fork::disconnect``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
from dataclasses import dataclass, field

import numpy as np
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

SUBPROTOCOL = "audio.drachtio.org"
PACKET_MS = 20


@dataclass
class ForkResult:
    events: list[tuple[str, str]] = field(default_factory=list)  # (subclass, body)
    errors: list[str] = field(default_factory=list)  # what FreeSWITCH would log
    close_code: int | None = None
    close_reason: str = ""
    sent_bytes: int = 0
    disconnecting: bool = False  # we started the close (LWS_CLIENT_DISCONNECTING)

    def json_events(self) -> list[dict[str, object]]:
        return [json.loads(body) for name, body in self.events if name == "mod_audio_fork::json"]


def interleave(left: bytes, right: bytes) -> bytes:
    a = np.frombuffer(left, "<i2")
    b = np.frombuffer(right, "<i2")
    return np.stack([a, b], axis=1).astype("<i2").tobytes()


def packets(pcm: bytes, rate: int, channels: int) -> list[bytes]:
    size = rate * 2 * channels * PACKET_MS // 1000
    return [pcm[i : i + size] for i in range(0, len(pcm), size)]


async def fork_call(
    url: str,
    metadata: str | None,
    pcm: bytes,
    rate: int,
    channels: int = 1,
    pace: float = 0.25,
    stop_after_s: float | None = None,
    graceful_shutdown: bool = False,
    seed: int = 0,
) -> ForkResult:
    """Stream ``pcm`` (20 ms packets, ``pace`` x real time) until the server ends
    the call or the audio runs out; ``stop_after_s`` drops the call like a hang-up."""
    result = ForkResult()
    rng = random.Random(seed)
    async with connect(url, subprotocols=[SUBPROTOCOL], max_size=None) as ws:
        if metadata:
            with contextlib.suppress(ConnectionClosed):  # the server may refuse at once
                await ws.send(metadata)
        receiving = asyncio.create_task(_receive(ws, result))
        pending = packets(pcm, rate, channels)
        sent_s = 0.0
        while pending and not receiving.done():
            n = rng.choice((1, 1, 1, 2, 3))  # what piled up since the last write
            batch, pending = pending[:n], pending[n:]
            data = b"".join(batch)
            with contextlib.suppress(ConnectionClosed):
                await ws.send(data)
            result.sent_bytes += len(data)
            sent_s += n * PACKET_MS / 1000
            if stop_after_s is not None and sent_s >= stop_after_s:
                result.disconnecting = True
                await ws.close()  # the channel hung up: the bug closes the socket
                break
            await asyncio.sleep(n * PACKET_MS / 1000 * pace)
        if graceful_shutdown and not receiving.done():
            with contextlib.suppress(ConnectionClosed):
                await ws.send(b"")
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.shield(receiving), 15)
        receiving.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await receiving
    return result


async def _receive(ws, result: ForkResult) -> None:  # type: ignore[no-untyped-def]
    try:
        async for message in ws:
            if isinstance(message, bytes):
                result.errors.append("received binary frame, discarding")
                continue
            _process_incoming(message, result)
    except ConnectionClosed:
        pass
    finally:
        if ws.close_code is not None:
            result.close_code = ws.close_code
            result.close_reason = ws.close_reason or ""
            if not result.disconnecting:  # closed by the far end while connected
                result.events.append(("mod_audio_fork::disconnect", ""))


def _process_incoming(message: str, result: ForkResult) -> None:
    try:
        parsed = json.loads(message)
    except json.JSONDecodeError:
        result.errors.append(f"parse - failed parsing json: {message}")
        return
    if not isinstance(parsed, dict) or not isinstance(parsed.get("type"), str):
        result.errors.append(f"parse - no type property found in: {message}")
        return
    kind = parsed["type"]
    data = json.dumps(parsed.get("data"), separators=(",", ":"))
    if kind == "json":
        result.events.append(("mod_audio_fork::json", json.dumps(parsed, separators=(",", ":"))))
    elif kind in ("error", "disconnect", "transcription", "transfer") or kind in (
        "playAudio",
        "killAudio",
    ):
        result.events.append((f"mod_audio_fork::{kind}", data))
    else:
        result.errors.append(f"processIncomingMessage - unsupported msg type {kind}")
