"""freeswitch_conf/scripts/amd_campaign.py end to end: it originates calls on a
FreeSWITCH event socket (the listener written from mod_event_socket.c), starts
mod_audio_fork toward the bridge (the module's client plays each callee's
speech), waits for AMDSTATUS and transfers each call to its extension."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import sys
from pathlib import Path

import pytest

from bridge.server import running_service
from tests.freeswitch.esl_server import FakeFreeSwitch
from tests.test_engine_real import HUMAN_OPENER, MACHINE_GREETING
from tests.test_freeswitch_fork import PASSWORD, audio, free_port, settings_for

pytestmark = pytest.mark.slow
SCRIPT = Path(__file__).parents[1] / "freeswitch_conf" / "scripts" / "amd_campaign.py"


def load_script():
    spec = importlib.util.spec_from_file_location("amd_campaign", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_the_campaign_script_branches_on_the_bridge_answer(detector, speech_wav, capsys):
    campaign = load_script()
    speech = {"+15550001": MACHINE_GREETING, "+15550002": HUMAN_OPENER}

    async def main():
        fake = FakeFreeSwitch(PASSWORD)
        fake.callee_audio = lambda channel, rate: audio(
            speech_wav, speech[channel.variables["dialstring"].rsplit("/", 1)[1]], rate
        )
        await fake.start()
        try:
            async with running_service(settings_for(fake.port), detector) as service:
                argv = [
                    "--port",
                    str(fake.port),
                    "--password",
                    PASSWORD,
                    "--bridge-url",
                    f"ws://127.0.0.1:{service.http_port}/ws/audio-fork",
                    *speech,
                ]
                code = await asyncio.to_thread(campaign.main, argv)
                return code, fake.channels, fake.commands
        finally:
            await fake.stop()

    code, channels, commands = asyncio.run(main())
    assert code == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    by_number = {line["number"]: line for line in lines}
    assert by_number["+15550001"]["amdstatus"] == "MACHINE"
    assert by_number["+15550002"]["amdstatus"] == "HUMAN"
    machine = channels[by_number["+15550001"]["uuid"]]
    human = channels[by_number["+15550002"]["uuid"]]
    assert machine.transferred_to == "amd_machine XML amd"
    assert human.transferred_to == "amd_human XML amd"
    assert machine.variables["AMDCAUSE"] == by_number["+15550001"]["amdcause"]
    assert any(c.startswith("api uuid_audio_fork") and c.endswith(" stop") for c in commands)


def test_a_wrong_password_is_a_clear_error(capsys):
    campaign = load_script()

    async def main():
        fake = FakeFreeSwitch(PASSWORD)
        await fake.start()
        try:
            argv = ["--port", str(fake.port), "--password", "ClueCon", "+15550001"]
            return await asyncio.to_thread(campaign.main, argv)
        finally:
            await fake.stop()

    assert asyncio.run(main()) == 2
    assert "authentication refused: -ERR invalid" in capsys.readouterr().err


def test_a_voicemail_drop_transfers_the_machine_after_its_beep(
    detector, greeting_then_beep, capsys
):
    campaign = load_script()
    stream, beep_end_s = greeting_then_beep(16000, 0.5, 1000.0, 0.4, 3.0)

    async def main():
        fake = FakeFreeSwitch(PASSWORD)
        fake.callee_audio = lambda channel, rate: (stream * 32767).astype("<i2").tobytes()
        await fake.start()
        try:
            async with running_service(settings_for(fake.port), detector) as service:
                argv = ["--port", str(fake.port), "--password", PASSWORD, "--voicemail-drop"]
                argv += ["--bridge-url", f"ws://127.0.0.1:{service.http_port}/ws/audio-fork"]
                code = await asyncio.to_thread(campaign.main, [*argv, "+15550003"])
                return code, fake.channels, fake.commands
        finally:
            await fake.stop()

    code, channels, commands = asyncio.run(main())
    assert code == 0
    (line,) = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert (line["amdstatus"], line["message_end"]) == ("MACHINE", "BEEP")
    assert int(line["beep_ms"]) / 1000 == pytest.approx(beep_end_s, abs=0.05)
    assert channels[line["uuid"]].transferred_to == "amd_machine XML amd"
    # held past the decision until the bridge heard the beep, then transferred
    order = [c.split()[1] + (" " + c.split()[3] if "setvar" in c else "") for c in commands]
    order = [
        c
        for c in order
        if c in ("uuid_setvar AMDSTATUS", "uuid_setvar AMDMESSAGEEND", "uuid_transfer")
    ]
    assert order == ["uuid_setvar AMDSTATUS", "uuid_setvar AMDMESSAGEEND", "uuid_transfer"]


def run_campaign(campaign, bridge_url: str, numbers: list[str], service_detector=None):
    """The campaign against the fake FreeSWITCH, with the bridge running when a
    detector is given; returns the exit code, the channels and the commands."""

    async def main():
        fake = FakeFreeSwitch(PASSWORD)
        fake.callee_audio = lambda channel, rate: bytes(rate * 2 * 3)
        await fake.start()
        argv = ["--port", str(fake.port), "--password", PASSWORD, *numbers]
        try:
            if service_detector is None:
                code = await asyncio.to_thread(campaign.main, ["--bridge-url", bridge_url, *argv])
            else:
                async with running_service(settings_for(fake.port), service_detector) as service:
                    url = bridge_url.format(port=service.http_port)
                    code = await asyncio.to_thread(campaign.main, ["--bridge-url", url, *argv])
            return code, fake.channels, fake.commands
        finally:
            await fake.stop()

    return asyncio.run(main())


def test_a_bridge_that_is_down_is_nofork_at_once_not_a_timeout(capsys):
    """uuid_audio_fork answers +OK and connects in the background; the refused
    connection comes as mod_audio_fork::connect_failed, which ends the wait."""
    campaign = load_script()
    url = f"ws://127.0.0.1:{free_port()}/ws/audio-fork"  # nothing listens there
    code, channels, commands = run_campaign(campaign, url, ["+15550004"])
    assert code == 0
    (line,) = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert (line["amdstatus"], line["amdcause"]) == ("NOTSURE", "NOFORK")
    assert line["waited_s"] < 2.0, "not the whole --amd-timeout (8 s)"
    assert channels[line["uuid"]].transferred_to == "amd_human XML amd"
    originate = next(c for c in commands if c.startswith("api originate"))
    assert originate.endswith("&playback(silence_stream://-1)"), "silence, not park"


def test_a_fork_the_bridge_closes_without_a_result_is_forkclosed(detector, capsys):
    campaign = load_script()
    url = "ws://127.0.0.1:{port}/ws/audio-fork?rate=12345"  # refused by the bridge
    code, channels, _ = run_campaign(campaign, url, ["+15550005"], detector)
    assert code == 0
    out, err = capsys.readouterr()
    (line,) = [json.loads(x) for x in out.splitlines()]
    assert (line["amdstatus"], line["amdcause"]) == ("NOTSURE", "FORKCLOSED")
    assert line["waited_s"] < 2.0
    assert channels[line["uuid"]].transferred_to == "amd_human XML amd"
    assert "rate=12345" in err, "the bridge's reason, from its mod_audio_fork::error event"
