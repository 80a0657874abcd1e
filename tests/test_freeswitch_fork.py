"""The bridge as FreeSWITCH meets it: mod_audio_fork streams real speech to
/ws/audio-fork (tests/freeswitch/fork_client.py, written from the module's
sources) and the results come back over the event socket to a listener written
from mod_event_socket.c (tests/freeswitch/esl_server.py)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket

import numpy as np
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from bridge.errors import ConfigError
from bridge.server import running_service
from bridge.settings import Settings
from tests.freeswitch.esl_server import FakeFreeSwitch
from tests.freeswitch.fork_client import fork_call, interleave
from tests.test_engine_real import HUMAN_OPENER, MACHINE_GREETING
from tests.test_ws_amd import pcm

pytestmark = pytest.mark.slow
PASSWORD = "s3cret-esl"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def settings_for(esl_port: int, password: str = PASSWORD, **extra: str) -> Settings:
    environ = {
        "AMD_HTTP_PORT": "0",
        "AMD_AUDIOSOCKET_PORT": "0",
        "AMD_NO_AUDIO_TIMEOUT_S": "2",
        "AMD_ESL_HOST": "127.0.0.1",
        "AMD_ESL_PORT": str(esl_port),
        "AMD_ESL_PASSWORD": password,
        **extra,
    }
    return Settings.load(environ=environ)


def run(detector, scenario, start_fake=True, **extra):
    async def main():
        fake = FakeFreeSwitch(PASSWORD)
        port = free_port()
        if start_fake:
            await fake.start(port)
        try:
            async with running_service(settings_for(port, **extra), detector) as service:
                return await scenario(service, fake, port)
        finally:
            if fake.server is not None:
                await fake.stop()

    return asyncio.run(main())


def audio(speech_wav, text, rate, seconds=6.0):
    samples = pcm(speech_wav(text, total_s=seconds), rate)
    return samples[: int(seconds * rate)].astype("<i2").tobytes()


def url(service, query=""):
    return f"ws://127.0.0.1:{service.http_port}/ws/audio-fork{query}"


def test_machine_and_human_calls_set_amdstatus_on_their_channels(detector, speech_wav):
    machine = audio(speech_wav, MACHINE_GREETING, 16000)
    human = audio(speech_wav, HUMAN_OPENER, 8000)

    async def scenario(service, fake, _port):
        a, b = fake.add_channel(), fake.add_channel()
        results = await asyncio.gather(
            fork_call(url(service), json.dumps({"uuid": a.uuid}), machine, 16000),
            fork_call(url(service, f"?uuid={b.uuid}&rate=8k"), None, human, 8000, seed=1),
        )
        return a, b, results, fake.events

    a, b, (fork_a, fork_b), events = run(detector, scenario)
    assert a.variables["AMDSTATUS"] == "MACHINE" and a.variables["AMDCAUSE"].startswith("CLASS")
    assert b.variables["AMDSTATUS"] == "HUMAN"
    for channel, fork in ((a, fork_a), (b, fork_b)):
        (message,) = fork.json_events()
        assert message["type"] == "json"
        assert message["data"]["uuid"] == channel.uuid
        assert message["data"]["status"] == channel.variables["AMDSTATUS"]
        assert fork.close_code == 1000 and ("mod_audio_fork::disconnect", "") in fork.events
        assert not fork.errors
    subclass = {dict(e.headers)["AMD-Channel-UUID"]: dict(e.headers) for e in events}
    assert subclass[a.uuid]["AMD-Status"] == "MACHINE"
    assert subclass[b.uuid]["Event-Subclass"] == "amd::result"


def test_stereo_takes_the_callee_from_the_left_channel(detector, speech_wav):
    greeting = audio(speech_wav, MACHINE_GREETING, 16000)
    ours = audio(speech_wav, HUMAN_OPENER, 16000)  # what is played to the callee
    loud_right = (np.frombuffer(ours, "<i2").astype(np.int32) * 2).clip(-32768, 32767)
    stereo = interleave(greeting, loud_right.astype("<i2").tobytes())

    async def scenario(service, fake, _port):
        channel = fake.add_channel()
        metadata = json.dumps({"uuid": channel.uuid, "mix": "stereo"})
        await fork_call(url(service), metadata, stereo, 16000, channels=2)
        return channel

    channel = run(detector, scenario)
    assert channel.variables["AMDSTATUS"] == "MACHINE"


def test_graceful_shutdown_decides_on_what_was_sent(detector, speech_wav):
    greeting = audio(speech_wav, MACHINE_GREETING, 16000, seconds=1.2)

    async def scenario(service, fake, _port):
        channel = fake.add_channel()
        fork = await fork_call(
            url(service, f"?uuid={channel.uuid}"), None, greeting, 16000, graceful_shutdown=True
        )
        return fork

    fork = run(detector, scenario)
    (message,) = fork.json_events()
    assert message["data"]["decision_audio_s"] == pytest.approx(1.2, abs=0.03)


def test_a_callee_who_hangs_up_mid_call_is_a_hangup(detector, speech_wav):
    greeting = audio(speech_wav, MACHINE_GREETING, 16000)

    async def scenario(service, fake, _port):
        channel = fake.add_channel()
        meta = json.dumps({"uuid": channel.uuid})
        await fork_call(url(service), meta, greeting, 16000, stop_after_s=0.6)
        for _ in range(100):
            if fake.events:
                break
            await asyncio.sleep(0.02)
        return channel, fake.events, fake.commands, service.audio_fork_handler.active

    channel, events, commands, active = run(detector, scenario)
    assert dict(events[0].headers)["AMD-Status"] == "HANGUP"
    assert not any("uuid_setvar" in c for c in commands), "the channel is gone"
    assert "AMDSTATUS" not in channel.variables and active == 0


def test_with_the_event_socket_down_results_still_reach_the_stream(detector, speech_wav):
    greeting = audio(speech_wav, MACHINE_GREETING, 16000)

    async def scenario(service, fake, port):
        first = await fork_call(
            url(service, "?uuid=1f0c0c2e-0000-4a7c-9a39-5c6c3b0e8e11"), None, greeting, 16000
        )
        outcomes_before = dict(service.esl.outcomes)
        await fake.start(port)  # FreeSWITCH comes up; the link finds it on its own
        for _ in range(500):
            if service.esl.up:
                break
            await asyncio.sleep(0.02)
        channel = fake.add_channel()
        await fork_call(url(service, f"?uuid={channel.uuid}"), None, greeting, 16000)
        return first, outcomes_before, channel

    first, outcomes, channel = run(detector, scenario, start_fake=False, AMD_ESL_RETRY_S="0.5")
    assert first.json_events()[0]["data"]["status"] == "MACHINE"
    assert outcomes["publish_failed"] == 1 and outcomes["not_connected"] >= 1
    assert channel.variables["AMDSTATUS"] == "MACHINE"


def test_a_wrong_event_socket_password_stops_the_service_at_start(detector):
    async def main():
        fake = FakeFreeSwitch(PASSWORD)
        await fake.start()
        try:
            async with running_service(settings_for(fake.port, "ClueCon"), detector):
                raise AssertionError("the service should not have started")
        finally:
            await fake.stop()

    with pytest.raises(ConfigError, match="-ERR invalid"):
        asyncio.run(main())


def test_garbage_is_refused_while_a_good_call_goes_on(detector, speech_wav):
    greeting = audio(speech_wav, MACHINE_GREETING, 16000)
    rng = np.random.default_rng(7)

    async def huge_call(service):
        async with connect(url(service), subprotocols=["audio.drachtio.org"], max_size=None) as ws:
            await ws.send(bytes(600_000))  # past the 512 KiB limit
            with contextlib.suppress(ConnectionClosed):
                await ws.recv()
            return ws.close_code

    async def noise_call(service):
        async with connect(url(service), subprotocols=["audio.drachtio.org"]) as ws:
            for n in rng.integers(1, 3000, 60):
                await ws.send(rng.bytes(int(n)))  # odd lengths, no structure at all
                await asyncio.sleep(0.002)
            await ws.send(b"")
            return json.loads(await ws.recv())

    async def scenario(service, fake, _port):
        channel = fake.add_channel()
        good = fork_call(url(service, f"?uuid={channel.uuid}"), None, greeting, 16000)
        bad_json = fork_call(url(service), "{not json", greeting[:32000], 16000)
        bad_uuid = fork_call(url(service), '{"uuid": "x; api shutdown"}', greeting[:32000], 16000)
        results = await asyncio.gather(
            good, bad_json, bad_uuid, huge_call(service), noise_call(service)
        )
        return channel, results, service.audio_fork_handler.outcomes

    channel, (good, bad_json, bad_uuid, huge, noise), outcomes = run(detector, scenario)
    assert channel.variables["AMDSTATUS"] == "MACHINE"
    assert bad_json.close_code == 1008 and "not JSON" in bad_json.close_reason
    assert tuple(n for n, _ in bad_json.events[:1]) == ("mod_audio_fork::error",)
    assert bad_uuid.close_code == 1008 and "not a channel uuid" in bad_uuid.close_reason
    assert huge == 1009
    assert noise["type"] == "json" and noise["data"]["status"] in ("NOTSURE", "HUMAN", "MACHINE")
    assert outcomes["refused"] == 2 and outcomes["protocol_error"] == 1
    assert outcomes["no_uuid"] == 1  # the noise (the huge frame came before any call)


def test_a_fork_that_asks_for_the_greetings_end_gets_it_after_the_beep(
    detector, greeting_then_beep
):
    audio_f, beep_end_s = greeting_then_beep(16000, 0.4, 1000.0, 0.4, 2.0)
    stream = (audio_f * 32767).astype("<i2").tobytes()

    async def scenario(service, fake, _port):
        channel = fake.add_channel()
        metadata = json.dumps({"uuid": channel.uuid, "message_end": True})
        fork = await fork_call(url(service), metadata, stream, 16000, pace=1.0)
        return channel, fork, fake.events, service.audio_fork_handler.outcomes

    channel, fork, events, outcomes = run(detector, scenario)
    assert channel.variables["AMDSTATUS"] == "MACHINE"
    assert channel.variables["AMDMESSAGEEND"] == "BEEP"
    assert int(channel.variables["AMDBEEPMS"]) / 1000 == pytest.approx(beep_end_s, abs=0.05)
    decision, end = (m["data"] for m in fork.json_events())
    assert (decision["type"], decision["status"]) == ("amd", "MACHINE")
    assert (end["type"], end["message_end"], end["uuid"]) == (
        "amd_message_end",
        "BEEP",
        channel.uuid,
    )
    assert end["beep_ms"] == int(channel.variables["AMDBEEPMS"])
    subclasses = [dict(e.headers)["Event-Subclass"] for e in events]
    assert subclasses == ["amd::result", "amd::message_end"]
    assert outcomes["message_end_BEEP"] == 1
    assert fork.close_code == 1000


def masked_frame(opcode: int, payload: bytes) -> bytes:
    """A client frame as RFC 6455 section 5.2 lays it out (FIN, masked)."""
    mask = bytes([0x5A, 0x17, 0xC3, 0x09])
    length = len(payload)
    if length < 126:
        header = bytes([0x80 | opcode, 0x80 | length])
    else:
        header = bytes([0x80 | opcode, 0x80 | 126]) + length.to_bytes(2, "big")
    return header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def test_a_half_open_fork_is_decided_on_what_came_and_dropped(detector, speech_wav):
    """The fork's host vanishes mid-call without closing (a half-open TCP
    connection): no more frames, no close, no reading. The no-audio timeout decides
    on what came, the result still reaches the channel, and the socket is dropped.
    1.5 s come: less than the first ask's 2 s, so only the timeout can decide."""
    greeting = audio(speech_wav, MACHINE_GREETING, 16000, seconds=1.5)

    async def scenario(service, fake, _port):
        channel = fake.add_channel()
        reader, writer = await asyncio.open_connection("127.0.0.1", service.http_port)
        writer.write(
            b"GET /ws/audio-fork?rate=16k HTTP/1.1\r\nHost: bridge\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: audio.drachtio.org\r\n\r\n"
        )
        response = await reader.readuntil(b"\r\n\r\n")
        writer.write(masked_frame(0x1, json.dumps({"uuid": channel.uuid}).encode()))
        for i in range(0, len(greeting), 640):
            writer.write(masked_frame(0x2, greeting[i : i + 640]))
        await writer.drain()  # then silence on the wire, and nobody reads
        handler = service.audio_fork_handler
        for _ in range(1000):
            if handler.active == 0:
                break
            await asyncio.sleep(0.01)
        writer.close()
        return response, channel, handler.active

    response, channel, active = run(detector, scenario)
    assert response.startswith(b"HTTP/1.1 101")
    # Decided by the engine on the 1.5 s that came (the greeting's first words: MACHINE,
    # or NOTSURE when the classifier is not yet sure), not left undecided or an error.
    assert channel.variables["AMDSTATUS"] in ("MACHINE", "NOTSURE")
    cause, *_, audio_ms = channel.variables["AMDCAUSE"].split("-")
    assert cause in ("CLASSIFIER", "LOWCONFIDENCE") and 1400 <= int(audio_ms) < 2000
    assert active == 0


def test_metadata_written_with_spaces_is_refused_with_a_reason_that_says_so(detector):
    """``uuid_audio_fork`` splits its arguments at spaces: JSON with spaces arrives in
    pieces (the module takes the first piece as a bug name). The bridge's refusal
    (a mod_audio_fork::error event, and the log) says what happened."""

    async def scenario(service, fake, _port):
        channel = fake.add_channel()
        fake.callee_audio = lambda _channel, rate: bytes(rate * 2)
        spaced = json.dumps({"uuid": channel.uuid, "rate": 16000})  # ", " and ": "
        reply = await fake.api(
            f"uuid_audio_fork {channel.uuid} start {url(service)} mono 16k {spaced}"
        )
        for _ in range(250):
            if channel.uuid in fake.forks:
                break
            await asyncio.sleep(0.02)
        return reply, fake.forks[channel.uuid], service.audio_fork_handler.outcomes

    reply, fork, outcomes = run(detector, scenario)
    assert reply == "+OK Success\n"
    (error,) = [json.loads(body) for name, body in fork.events if name == "mod_audio_fork::error"]
    assert "is not JSON" in error["error"]
    assert "splits uuid_audio_fork's arguments at spaces" in error["error"]
    assert fork.close_code == 1008 and outcomes["refused"] == 1
