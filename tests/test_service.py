"""The service as an operator runs it: readiness, metrics, the token and origin
gate, the concurrency limit, draining on shutdown. Real engine, real sockets,
websockets' own client and AudioSocket frames built from res_audiosocket.h."""

from __future__ import annotations

import asyncio
import contextlib
import json
import struct
import urllib.error
import urllib.request
import uuid

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from bridge.audio.chunk import Encoding
from bridge.audio.codecs import encode_from_int16
from bridge.server import running_service
from bridge.settings import Settings
from tests.test_engine_real import HUMAN_OPENER
from tests.test_ws_amd import converse, pcm

pytestmark = pytest.mark.slow


def run(detector, scenario, **environ: str):
    settings = Settings.load(environ={"AMD_HTTP_PORT": "0", "AMD_AUDIOSOCKET_PORT": "0", **environ})

    async def main():
        async with running_service(settings, detector) as service:
            return await scenario(service)

    return asyncio.run(main())


async def get(service, path: str) -> tuple[int, str, str]:
    def fetch():
        url = f"http://127.0.0.1:{service.http_port}{path}"
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                return r.status, r.headers.get("Content-Type", ""), r.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, "", exc.read().decode()

    return await asyncio.to_thread(fetch)


def ws_url(service, query: str = "") -> str:
    return f"ws://127.0.0.1:{service.http_port}/ws/amd?{query}"


def human_ulaw(speech_wav) -> bytes:
    return encode_from_int16(Encoding.ULAW, pcm(speech_wav(HUMAN_OPENER, total_s=5.0), 8000))


def test_readiness_follows_the_pbx_links_and_the_drain(detector):
    async def scenario(service):
        ready = await get(service, "/readyz")
        service.draining = True
        draining = await get(service, "/readyz")
        return ready, draining

    ready, draining = run(detector, scenario)
    assert ready[0] == 200 and ready[2] == "ready\n"
    assert draining[0] == 503 and "shutting down" in draining[2]

    async def esl_down(service):
        return await get(service, "/readyz"), await get(service, "/healthz")

    closed_port = str(_free_port())
    (code, _, body), health = run(
        detector,
        esl_down,
        AMD_ESL_HOST="127.0.0.1",
        AMD_ESL_PORT=closed_port,
        AMD_ESL_PASSWORD="x",
    )
    assert code == 503 and "event socket link down" in body
    assert health[0] == 200  # alive, just not ready


def test_metrics_count_the_call_its_timing_and_the_engine(detector, speech_wav):
    audio = human_ulaw(speech_wav)

    async def scenario(service):
        await converse(service.http_port, "rate=8000&encoding=ulaw", audio)
        assert await service.calls.wait_idle(5)  # the handler logs the call after it closes
        return await get(service, "/metrics")

    code, content_type, body = run(detector, scenario)
    assert code == 200 and content_type.startswith("text/plain")
    lines = body.splitlines()

    def value(prefix: str) -> float:
        (line,) = [x for x in lines if x.startswith(prefix)]
        return float(line.rsplit(" ", 1)[1])

    # (the exposition lists labels in alphabetical order)
    assert value('amd_decisions_total{cause="CLASSIFIER",status="HUMAN",transport="ws_amd"}') == 1
    assert value('amd_decision_audio_seconds_count{status="HUMAN",transport="ws_amd"}') == 1
    assert value('amd_decision_compute_seconds_count{transport="ws_amd"}') == 1
    assert value("amd_engine_batch_size_count") >= 1
    assert value("amd_engine_queue_wait_seconds_count") >= 1
    assert value('amd_calls_active{transport="all"}') == 0
    assert value('amd_calls_active{transport="ws_amd"}') == 0  # the gauge exists for it too
    assert value('amd_outcomes_total{component="ws_amd",outcome="HUMAN"}') == 1


def test_the_token_gate_and_the_origin_check(detector, speech_wav):
    audio = human_ulaw(speech_wav)

    async def attempt(url: str, **kw) -> str:
        try:
            async with connect(url, **kw) as ws:
                await ws.send(audio[:1600])
                return "open"
        except InvalidStatus as exc:
            return str(exc.response.status_code)

    async def scenario(service):
        q = "rate=8000&encoding=ulaw"
        bearer = {"Authorization": "Bearer s3cret-token"}
        return {
            "none": await attempt(ws_url(service, q)),
            "wrong": await attempt(ws_url(service, q + "&token=nope")),
            "header": await attempt(ws_url(service, q), additional_headers=bearer),
            "query": await attempt(ws_url(service, q + "&token=s3cret-token")),
            "bad origin": await attempt(
                ws_url(service, q), additional_headers=bearer, origin="https://evil.example"
            ),
            "good origin": await attempt(
                ws_url(service, q), additional_headers=bearer, origin="https://crm.example"
            ),
            "fork without": await attempt(f"ws://127.0.0.1:{service.http_port}/ws/audio-fork"),
            "metrics": (await get(service, "/metrics"))[0],
        }

    got = run(
        detector,
        scenario,
        AMD_API_TOKEN="s3cret-token",
        AMD_ALLOWED_ORIGINS="https://crm.example",
    )
    assert got == {
        "none": "401",
        "wrong": "401",
        "header": "open",
        "query": "open",
        "bad origin": "403",
        "good origin": "open",
        "fork without": "401",
        "metrics": 200,
    }
    settings = Settings.load(environ={"AMD_API_TOKEN": "s3cret-token"})
    assert "s3cret-token" not in repr(settings)


def audiosocket_call_id(call_id: uuid.UUID) -> bytes:
    return struct.pack(">BH", 0x01, 16) + call_id.bytes


def slin_frame(payload: bytes = bytes(320)) -> bytes:
    return struct.pack(">BH", 0x10, len(payload)) + payload


async def read_kinds(reader: asyncio.StreamReader, timeout: float) -> list[int]:
    """Kinds of the frames the bridge sends until it closes (or ``timeout``)."""
    kinds = []
    with contextlib.suppress(asyncio.TimeoutError, asyncio.IncompleteReadError, ConnectionError):
        async with asyncio.timeout(timeout):
            while True:
                kind, length = struct.unpack(">BH", await reader.readexactly(3))
                await reader.readexactly(length)
                kinds.append(kind)
    return kinds


def test_past_the_limit_calls_get_notsure_overload_on_every_transport(detector):
    async def scenario(service):
        holder = await connect(ws_url(service, "rate=8000&encoding=ulaw"))
        await holder.send(b"\xff" * 800)  # one open call: the limit is 1
        await asyncio.sleep(0.2)
        async with connect(ws_url(service)) as second:
            refused_ws = json.loads(await second.recv())
            with contextlib.suppress(ConnectionClosed):
                await second.recv()
            close_code = second.close_code
        fork_url = f"ws://127.0.0.1:{service.http_port}/ws/audio-fork"
        async with connect(fork_url) as fork:
            await fork.send(json.dumps({"mix": "mono"}))
            refused_fork = json.loads(await fork.recv())
        reader, writer = await asyncio.open_connection("127.0.0.1", service.audiosocket_port)
        writer.write(audiosocket_call_id(uuid.uuid4()) + slin_frame())
        kinds = await read_kinds(reader, 5)
        writer.close()
        await holder.close()
        return refused_ws, close_code, refused_fork, kinds, service.metrics.render().decode()

    refused_ws, close_code, refused_fork, kinds, metrics = run(
        detector, scenario, AMD_MAX_CALLS="1"
    )
    assert (refused_ws["type"], refused_ws["status"], refused_ws["cause"]) == (
        "final",
        "NOTSURE",
        "OVERLOAD-0",
    )
    assert close_code == 1013
    assert refused_fork["data"]["cause"] == "OVERLOAD-0"
    assert kinds == [0x00]  # AudioSocket: the hangup message at once, no audio answered
    for transport in ("ws_amd", "audio_fork", "audiosocket"):
        assert f'amd_calls_refused_total{{transport="{transport}"}} 1.0' in metrics


def test_draining_ends_calls_past_the_deadline_as_notsure_shutdown(detector):
    async def scenario(service):
        ws = await connect(ws_url(service, "rate=8000&encoding=ulaw"))
        await ws.send(b"\xff" * 4000)  # half a second, then nothing: undecided
        reader, writer = await asyncio.open_connection("127.0.0.1", service.audiosocket_port)
        writer.write(audiosocket_call_id(uuid.uuid4()) + slin_frame() * 10)
        await asyncio.sleep(0.3)
        assert service.calls.active == 2
        await service.drain(0.3)
        final = json.loads(await ws.recv())
        with contextlib.suppress(ConnectionClosed):
            await ws.recv()
        kinds = await read_kinds(reader, 3)
        writer.close()
        return final, ws.close_code, kinds, service.calls.active, service.not_ready()

    final, close_code, kinds, active, after = run(detector, scenario)
    assert (final["type"], final["status"], final["cause"]) == ("final", "NOTSURE", "SHUTDOWN-500")
    assert close_code == 1001
    assert kinds[-1] == 0x00  # the AudioSocket call got its hangup message
    assert active == 0
    assert after == ["shutting down"]


def test_final_comes_at_the_maximum_window_without_a_flush(detector, speech_wav):
    audio = encode_from_int16(Encoding.ULAW, pcm(speech_wav(HUMAN_OPENER, total_s=6.0), 8000))

    async def scenario(service):
        got = []
        async with connect(ws_url(service, "rate=8000&encoding=ulaw")) as ws:
            for i in range(0, len(audio), 160):
                try:
                    await ws.send(audio[i : i + 160])
                except ConnectionClosed:
                    break
            with contextlib.suppress(ConnectionClosed):
                async for message in ws:
                    got.append(json.loads(message))
        return got

    got = run(detector, scenario)
    assert [m["type"] for m in got] == ["early", "final"]


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
