"""The event socket link against a peer written from FreeSWITCH's mod_event_socket.c
(tests/freeswitch/esl_server.py), whose uuid_setvar splits its argument with
FreeSWITCH's own rules: results land on the channel exactly, a lost or silent
link comes back, and a refused password stops the service at start-up."""

from __future__ import annotations

import asyncio
import json

import pytest

from bridge.errors import ConfigError
from bridge.pbx.esl import EslConfig, EslLink
from bridge.protocols.channel_vars import sanitize
from bridge.session import Cause, Decision, MessageEnd, MessageEndKind, Status
from tests.freeswitch.esl_server import FakeFreeSwitch

PASSWORD = "s3cret-esl"


def decision(status=Status.MACHINE, transcript="Please leave a message after the tone."):
    return Decision(status, Cause.CLASSIFIER, 2.0, proba_human=0.04, transcript=transcript)


def run(scenario, password=PASSWORD, **config):
    async def main():
        fake = FakeFreeSwitch(PASSWORD)
        await fake.start()
        link = EslLink(EslConfig("127.0.0.1", fake.port, password, **config))
        try:
            await link.start()
            return await scenario(fake, link)
        finally:
            await link.aclose()
            await fake.stop()

    return asyncio.run(main())


async def wait_for(predicate, timeout=5.0):
    for _ in range(int(timeout / 0.02)):
        if predicate():
            return True
        await asyncio.sleep(0.02)
    return predicate()


def test_a_result_sets_four_variables_then_fires_the_event():
    async def scenario(fake, link):
        channel = fake.add_channel()
        ok = await link.publish(channel.uuid, decision())
        return ok, channel, fake.events, fake.commands, link.outcomes

    ok, channel, events, commands, outcomes = run(scenario)
    assert ok and outcomes["ok"] == 1
    assert channel.variables["AMDSTATUS"] == "MACHINE"
    assert channel.variables["AMDCAUSE"] == "CLASSIFIER-96-2000"
    assert channel.variables["AMDCONFIDENCE"] == "0.96"
    assert channel.variables["AMDTRANSCRIPT"] == "Please leave a message after the tone."
    assert commands[0] == f"auth {PASSWORD}"
    assert [c.split(" ")[3] for c in commands[1:5]] == [
        "AMDCAUSE",
        "AMDCONFIDENCE",
        "AMDTRANSCRIPT",
        "AMDSTATUS",
    ]
    (event,) = events
    headers = dict(event.headers)
    assert event.command == "sendevent CUSTOM"
    assert headers["Event-Subclass"] == "amd::result"
    assert headers["AMD-Channel-UUID"] == channel.uuid and headers["AMD-Status"] == "MACHINE"
    assert json.loads(event.body)["uuid"] == channel.uuid


def test_a_hostile_transcript_arrives_as_one_harmless_value():
    transcript = "it's \\ ${system(rm)} 'x'\r\napi shutdown\nexit\x00 end  "

    async def scenario(fake, link):
        channel = fake.add_channel()
        await link.publish(channel.uuid, decision(transcript=transcript))
        return channel, fake.commands

    channel, commands = run(scenario)
    assert channel.variables["AMDTRANSCRIPT"] == sanitize(transcript)
    assert not any(c.startswith(("api shutdown", "exit")) for c in commands)
    assert len(commands) == 6  # auth, four uuid_setvar, sendevent


def test_a_hangup_only_fires_the_event():
    async def scenario(fake, link):
        ok = await link.publish("9c1f0e2a-1111-4c1e-9d6e-0a1b2c3d4e5f", decision(Status.HANGUP))
        return ok, fake.commands, fake.events

    ok, commands, events = run(scenario)
    assert ok
    assert not any("uuid_setvar" in c for c in commands)
    assert dict(events[0].headers)["AMD-Status"] == "HANGUP"


def test_a_channel_that_is_gone_is_counted_not_raised():
    async def scenario(fake, link):
        ok = await link.publish("9c1f0e2a-2222-4c1e-9d6e-0a1b2c3d4e5f", decision())
        return ok, link.outcomes, fake.events

    ok, outcomes, events = run(scenario)
    assert not ok and outcomes["channel_gone"] == 1
    assert len(events) == 1, "campaign software still hears about the call"


def test_a_wrong_password_stops_start_up_with_the_reason():
    async def scenario(fake, link):
        raise AssertionError("start should have failed")

    with pytest.raises(ConfigError, match="refused the bridge: -ERR invalid.*AMD_ESL_PASSWORD"):
        run(scenario, password="ClueCon")


def test_an_acl_rejection_stops_start_up_with_the_reason():
    async def main():
        fake = FakeFreeSwitch(PASSWORD)
        fake.refuse_peer = True
        await fake.start()
        try:
            await EslLink(EslConfig("127.0.0.1", fake.port, PASSWORD)).start()
        finally:
            await fake.stop()

    with pytest.raises(ConfigError, match="Access Denied"):
        asyncio.run(main())


def test_a_lost_connection_comes_back_and_results_go_through_again():
    async def scenario(fake, link):
        fake.drop_connections()
        assert await wait_for(lambda: not link.up, 2)
        channel = fake.add_channel()
        ok = await link.publish(channel.uuid, decision())  # waits for the reconnection
        return ok, fake.logins, link.outcomes

    ok, logins, outcomes = run(scenario, publish_deadline_s=5.0)
    assert ok and logins == 2 and outcomes["disconnects"] == 1


def test_freeswitch_saying_goodbye_is_logged_and_counted_as_a_lost_connection(caplog):
    """``reload mod_event_socket`` or a FreeSWITCH restart: the disconnect notice,
    then the close. The loss is a warning and a ``disconnects`` outcome."""

    async def scenario(fake, link):
        fake.say_goodbye()
        assert await wait_for(lambda: not link.up, 2)
        assert await wait_for(lambda: link.up and fake.logins == 2, 5)
        return link.outcomes

    with caplog.at_level("WARNING", logger="bridge.pbx.esl"):
        outcomes = run(scenario)
    assert outcomes["disconnects"] == 1 and outcomes["connect_failures"] == 0
    assert "connection lost" in caplog.text


def test_a_silent_link_times_out_drops_and_reconnects():
    async def scenario(fake, link):
        channel = fake.add_channel()
        fake.silent = True  # a half-open socket: commands vanish
        first = await link.publish(channel.uuid, decision())
        fake.silent = False
        assert await wait_for(lambda: link.up and fake.logins == 2, 5)
        second = await link.publish(channel.uuid, decision())
        return first, second, link.outcomes

    first, second, outcomes = run(scenario, command_timeout_s=0.3, publish_deadline_s=0.8)
    assert not first and second
    assert outcomes["command_timeout"] >= 1 and outcomes["publish_failed"] == 1


def test_the_password_never_shows_in_the_config_repr():
    assert PASSWORD not in repr(EslConfig("127.0.0.1", 8021, PASSWORD))


def test_a_poller_that_sees_the_status_or_the_message_end_finds_the_rest_set():
    """A campaign polling uuid_getvar waits for AMDSTATUS (then AMDMESSAGEEND): each
    is set last, so whenever it is there the variables that go with it are too."""

    async def scenario(fake, link):
        channel = fake.add_channel()
        await link.publish(channel.uuid, decision())
        await link.publish(channel.uuid, MessageEnd(MessageEndKind.BEEP, 10.06, 9.992))
        return fake.variable_states

    states = run(scenario)
    assert len(states) == 6
    for _, seen in states:
        if "AMDSTATUS" in seen:
            assert {"AMDCAUSE", "AMDCONFIDENCE", "AMDTRANSCRIPT"} <= seen.keys(), seen
        if "AMDMESSAGEEND" in seen:
            assert seen["AMDBEEPMS"] == "9992", seen
