"""The /ws/amd service end to end: a websockets client (the library's own, not ours)
against ``running_service`` with the real engine."""

import asyncio
import contextlib
import json
import urllib.request

import numpy as np
import pytest
import soxr
from hypothesis import given
from hypothesis import strategies as st
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from bridge.audio.chunk import Encoding
from bridge.audio.codecs import encode_from_int16
from bridge.cli.audio_files import read_audio_file
from bridge.errors import ProtocolError
from bridge.protocols.amd_ws import Flush, parse_request_path, parse_text_message
from bridge.server import running_service
from bridge.settings import Settings
from tests.test_engine_real import HUMAN_OPENER, MACHINE_GREETING


def pcm(path, rate: int) -> np.ndarray:
    fmt, data = read_audio_file(path)
    x = np.frombuffer(data, "<i2").astype(np.float32) / 32768
    if fmt.rate != rate:
        x = soxr.resample(x, fmt.rate, rate)
    return np.clip(x * 32768, -32768, 32767).astype(np.int16)


def run_with_service(detector, scenario):
    settings = Settings.load(
        environ={"AMD_HTTP_PORT": "0", "AMD_AUDIOSOCKET_PORT": "0", "AMD_NO_AUDIO_TIMEOUT_S": "2"}
    )

    async def main():
        async with running_service(settings, detector) as service:
            return await scenario(service.http_port)

    return asyncio.run(main())


async def stream(ws, samples: bytes, frame_bytes: int) -> list[dict]:
    """Send frames; collect any server messages that arrive meanwhile. Stops early
    when the server closes (it does after the final answer)."""
    got = []
    for off in range(0, len(samples), frame_bytes):
        try:
            await ws.send(samples[off : off + frame_bytes])
        except ConnectionClosed:
            return got
        try:
            while True:
                got.append(json.loads(await asyncio.wait_for(ws.recv(), 0.001)))
        except (asyncio.TimeoutError, ConnectionClosed):
            pass
    return got


async def converse(port: int, query: str, audio: bytes) -> list[dict]:
    """Stream 20 ms mu-law frames, flush, and collect every message until the close."""
    async with connect(f"ws://127.0.0.1:{port}/ws/amd?{query}") as ws:
        got = await stream(ws, audio, 160)
        with contextlib.suppress(ConnectionClosed):  # closed at the maximum window already
            await ws.send(json.dumps({"type": "flush"}))
        async for message in ws:
            got.append(json.loads(message))
    return got


def test_mu_law_human_gets_early_then_final_after_flush(detector, speech_wav):
    audio = encode_from_int16(Encoding.ULAW, pcm(speech_wav(HUMAN_OPENER, total_s=5.0), 8000))
    messages = run_with_service(
        detector, lambda port: converse(port, "rate=8000&encoding=ulaw&call_id=test-1", audio)
    )
    assert [m["type"] for m in messages] == ["early", "final"]
    early = messages[0]
    assert early["label"] == "human" and early["status"] == "HUMAN"
    assert early["cause"].startswith("CLASSIFIER-")
    assert set(early) >= {"confidence", "proba_human", "transcript", "elapsed_ms"}
    assert messages[1]["label"] == "human"


def test_pcm16_16k_machine_and_a_malformed_message_in_between(detector, speech_wav):
    audio = pcm(speech_wav(MACHINE_GREETING, total_s=6.0), 16000).tobytes()

    async def scenario(port):
        async with connect(f"ws://127.0.0.1:{port}/ws/amd") as ws:
            got = await stream(ws, audio[:16000], 640)
            await ws.send("{not json")
            await ws.send(json.dumps({"type": "dance"}))
            got += await stream(ws, audio[16000:], 640)
            # A call decided only at the maximum window (5 s) gets its final answer, and
            # the close, while the rest is still being sent: then there is no flush to send.
            with contextlib.suppress(ConnectionClosed):
                await ws.send(json.dumps({"type": "flush"}))
            async for message in ws:
                got.append(json.loads(message))
        return got

    messages = run_with_service(detector, scenario)
    kinds = [m["type"] for m in messages]
    assert kinds == ["error", "error", "early", "final"]
    assert "malformed JSON" in messages[0]["error"]
    assert "unknown message type 'dance'" in messages[1]["error"]
    assert messages[2]["label"] == "machine"


def test_flush_without_audio_is_notsure_noaudio(detector):
    async def scenario(port):
        async with connect(f"ws://127.0.0.1:{port}/ws/amd") as ws:
            await ws.send(json.dumps({"type": "flush"}))
            return [json.loads(m) async for m in ws]

    messages = run_with_service(detector, scenario)
    assert [m["type"] for m in messages] == ["early", "final"]
    assert messages[1]["status"] == "NOTSURE" and messages[1]["cause"] == "NOAUDIO-0"


def test_bad_parameters_get_an_error_and_a_policy_close(detector):
    async def scenario(port):
        async with connect(f"ws://127.0.0.1:{port}/ws/amd?rate=11025") as ws:
            message = json.loads(await ws.recv())
            with pytest.raises(ConnectionClosed) as closed:
                await ws.recv()
            return message, closed.value.rcvd.code

    message, code = run_with_service(detector, scenario)
    assert message["type"] == "error" and "11025" in message["error"]
    assert code == 1008


def test_a_client_vanishing_mid_call_does_not_disturb_the_next(detector, speech_wav):
    audio = pcm(speech_wav(HUMAN_OPENER, total_s=5.0), 16000).tobytes()

    async def scenario(port):
        ws = await connect(f"ws://127.0.0.1:{port}/ws/amd")
        await ws.send(audio[:8000])
        ws.transport.abort()  # no close frame: a dropped TCP connection
        async with connect(f"ws://127.0.0.1:{port}/ws/amd") as ws2:
            got = await stream(ws2, audio, 640)
            await ws2.send(json.dumps({"type": "flush"}))
            got += [json.loads(m) async for m in ws2]
        return got

    messages = run_with_service(detector, scenario)
    assert messages[0]["type"] == "early" and messages[0]["label"] == "human"


def test_health_and_unknown_paths(detector):
    async def scenario(port):
        def get(path):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
                    return r.status, r.read().decode()
            except urllib.error.HTTPError as exc:
                return exc.code, ""

        return await asyncio.to_thread(get, "/healthz"), await asyncio.to_thread(get, "/nope")

    (ok, body), (missing, _) = run_with_service(detector, scenario)
    assert (ok, body) == (200, "ok\n")
    assert missing == 404


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/ws/amd?rate=abc", "not a whole number"),
        ("/ws/amd?encoding=opus", "unknown encoding"),
        ("/ws/amd?encoding=ulaw&rate=16000", "not supported"),
        ("/ws/amd?call_id=a%20b", "call_id"),
        ("/ws/amd?encodng=ulaw", "unknown query parameter 'encodng'"),
        ("/ws/amd?rate=8000&encoding=ulaw&rate=16000", "'rate' given 2 times"),
    ],
)
def test_request_parameters_are_validated(path, message):
    with pytest.raises(ProtocolError, match=message):
        parse_request_path(path)


def test_defaults_are_the_seeds_pcm16_16k():
    params = parse_request_path("/ws/amd")
    assert (params.format.encoding, params.format.rate, params.call_id) == (
        Encoding.SLIN,
        16000,
        None,
    )


@pytest.mark.parametrize("text", ["[]", "null", '"flush"', "{}", "x" * 5000, "[" * 100000])
def test_text_messages_other_than_flush_raise_protocol_error(text):
    with pytest.raises(ProtocolError):
        parse_text_message(text)


@given(st.text(max_size=300))
def test_any_text_is_a_flush_or_a_protocol_error(text):
    with contextlib.suppress(ProtocolError):
        assert isinstance(parse_text_message(text), Flush)


@given(st.text(max_size=200))
def test_any_request_path_parses_or_raises_protocol_error(query):
    with contextlib.suppress(ProtocolError):
        assert parse_request_path("/ws/amd?" + query).format.rate > 0


def test_message_end_parameter_reports_the_beep_after_the_early_machine(
    detector, greeting_then_beep
):
    audio_f, beep_end_s = greeting_then_beep(8000, 0.3, 850.0, 0.5, 1.0)
    audio = encode_from_int16(Encoding.ULAW, (audio_f * 32767).astype(np.int16))
    messages = run_with_service(
        detector, lambda port: converse(port, "rate=8000&encoding=ulaw&message_end=yes", audio)
    )
    assert [m["type"] for m in messages] == ["early", "message_end", "final"]
    assert messages[0]["status"] == "MACHINE"
    end = messages[1]
    assert end["message_end"] == "BEEP"
    assert end["beep_ms"] / 1000 == pytest.approx(beep_end_s, abs=0.05)


def test_message_end_parameter_must_be_yes_or_no():
    assert parse_request_path("/ws/amd?message_end=1").message_end is True
    assert parse_request_path("/ws/amd?message_end=off").message_end is False
    assert parse_request_path("/ws/amd").message_end is None
    with pytest.raises(ProtocolError, match="message_end"):
        parse_request_path("/ws/amd?message_end=later")


@pytest.mark.parametrize("query", ["rate=11025", "encodng=ulaw", "rate=8000&rate=16000"])
def test_a_refused_stream_closes_promptly_even_with_audio_already_sent(detector, query):
    """A client that streams before reading the refusal: the server reads and drops
    what is pending, so the client's close frame is not stuck behind it (it used to
    take the 10 s close timeout)."""

    async def scenario(port):
        loop = asyncio.get_running_loop()
        async with connect(f"ws://127.0.0.1:{port}/ws/amd?{query}") as ws:
            started = loop.time()
            with contextlib.suppress(ConnectionClosed):
                for _ in range(200):  # 200 s of 16 kHz audio, sent at once
                    await ws.send(bytes(64000))
            message = json.loads(await ws.recv())
            with pytest.raises(ConnectionClosed) as closed:
                while True:
                    await ws.recv()
            await ws.wait_closed()
            return message, closed.value.rcvd.code, loop.time() - started

    message, code, took_s = run_with_service(detector, scenario)
    assert message["type"] == "error" and code == 1008
    assert took_s < 2.0
