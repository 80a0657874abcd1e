"""The AMI link against a peer that speaks AMI as Asterisk's manager.c does: a banner
line, then ``Key: Value`` packets ended by an empty line; responses carry the
action's ``ActionID``. The peer can go silent (a half-open link) or start late."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from bridge.pbx.ami import AmiConfig, AmiLink
from bridge.session import Cause, Decision, MessageEnd, MessageEndKind, Status
from tests.loopback import LoopbackServer

CHANNEL = "PJSIP/trunk-00000042"
CALL = "4f6c2c1e-5a4b-4c1e-9d6e-0a1b2c3d4e5f"


class FakeAsterisk(LoopbackServer):
    def __init__(self) -> None:
        super().__init__()
        self.actions: list[dict[str, str]] = []
        self.logins = 0
        self.answer = True
        self.heal_at_login: int | None = None  # answer again from this login on
        # Each channel's variables after each Setvar: all that a Getvar poller could see
        # (manager.c runs one connection's actions in order).
        self.variables: dict[str, dict[str, str]] = {}
        self.variable_states: list[dict[str, str]] = []

    def event(self, **headers: str) -> None:
        packet = "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
        for w in self.writers:
            w.write(packet.encode())

    async def connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"Asterisk Call Manager/11.0.0\r\n")
        with contextlib.suppress(asyncio.CancelledError, ConnectionError):  # the test is over
            await self._converse(reader, writer)

    async def _converse(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        packet: dict[str, str] = {}
        while line := await reader.readline():
            text = line.decode().rstrip("\r\n")
            if text:
                key, _, value = text.partition(": ")
                packet[key] = value
                continue
            self.actions.append(packet)
            action = packet.get("Action", "").lower()
            if action == "setvar" and self.answer:
                variables = self.variables.setdefault(packet.get("Channel", ""), {})
                variables[packet.get("Variable", "")] = packet.get("Value", "")
                self.variable_states.append(dict(variables))
            if action == "login":
                self.logins += 1
                if self.heal_at_login is not None and self.logins >= self.heal_at_login:
                    self.answer = True
            if action == "login" or self.answer:
                writer.write(
                    f"Response: Success\r\nActionID: {packet.get('ActionID')}\r\n"
                    "Message: ok\r\n\r\n".encode()
                )
            packet = {}


def decision(transcript: str = "hi you have reached tom") -> Decision:
    return Decision(Status.MACHINE, Cause.CLASSIFIER, 2.0, proba_human=0.07, transcript=transcript)


def run(scenario):
    async def main():
        peer = FakeAsterisk()
        await peer.start()
        try:
            return await scenario(peer)
        finally:
            await peer.stop()

    return asyncio.run(main())


def config(port: int, **kw) -> AmiConfig:
    return AmiConfig("127.0.0.1", port, "amd-bridge", "s3cret", **kw)


def test_publish_sets_the_variables_on_the_announced_channel_and_raises_the_event():
    async def scenario(peer):
        link = AmiLink(config(peer.port))
        await link.start()
        peer.event(Event="UserEvent", Channel=CHANNEL, UserEvent="AMDStart", AmdId=CALL)
        await asyncio.sleep(0.05)
        hostile = "leave a message\r\nAction: Originate\r\nChannel: PJSIP/premium"
        ok = await link.publish(CALL, decision(hostile))
        await link.aclose()
        return ok, peer.actions

    ok, actions = run(scenario)
    assert ok
    setvars = {a["Variable"]: a["Value"] for a in actions if a.get("Action") == "Setvar"}
    assert setvars["AMDSTATUS"] == "MACHINE"
    assert setvars["AMDCAUSE"] == "CLASSIFIER-93-2000"
    assert setvars["AMDCONFIDENCE"] == "0.93"
    # the transcript stays one header: no injected action reached the peer
    assert setvars["AMDTRANSCRIPT"] == ("leave a message Action: Originate Channel: PJSIP/premium")
    assert not any(a.get("Action") == "Originate" for a in actions)
    assert all(a["Channel"] == CHANNEL for a in actions if a.get("Action") == "Setvar")
    (event,) = [a for a in actions if a.get("Action") == "UserEvent"]
    assert (event["UserEvent"], event["AmdId"], event["Status"]) == ("AMDResult", CALL, "MACHINE")
    assert actions[0]["Action"] == "Login" and actions[0]["Events"] == "user"


def test_a_call_never_announced_is_counted_not_waited_for_forever():
    async def scenario(peer):
        link = AmiLink(config(peer.port, publish_deadline_s=0.3))
        await link.start()
        ok = await link.publish(CALL, decision())
        await link.aclose()
        return ok, link.outcomes

    ok, outcomes = run(scenario)
    assert not ok and outcomes["channel_unknown"] == 1


def test_a_half_open_link_is_dropped_and_the_result_retried_on_a_new_one():
    async def scenario(peer):
        link = AmiLink(config(peer.port, action_timeout_s=0.3, publish_deadline_s=5.0))
        await link.start()
        peer.event(Event="UserEvent", Channel=CHANNEL, UserEvent="AMDStart", AmdId=CALL)
        await asyncio.sleep(0.05)
        peer.answer = False  # Asterisk stops answering on this connection ...
        peer.heal_at_login = 2  # ... and answers on the next one
        ok = await link.publish(CALL, decision())
        await link.aclose()
        return ok, link.outcomes, peer.logins

    ok, outcomes, logins = run(scenario)
    assert ok and logins == 2
    assert outcomes["action_timeout"] == 1 and outcomes["ok"] == 1


def test_asterisk_starting_after_the_bridge_is_picked_up_by_the_backoff():
    async def scenario(peer):
        port = peer.port
        await peer.stop()  # nothing listens on the port now
        link = AmiLink(config(port))
        await link.start(wait_s=0.3)
        assert not link.up
        await peer.start(port)
        for _ in range(100):
            if link.up:
                break
            await asyncio.sleep(0.05)
        up = link.up
        await link.aclose()
        return up, link.outcomes

    up, outcomes = run(scenario)
    assert up and outcomes["connect_failures"] >= 1


@pytest.mark.parametrize("secret", ["s3cret"])
def test_the_secret_is_never_in_the_config_repr(secret):
    assert secret not in repr(config(5038))


def test_a_call_that_asks_for_the_greetings_end_gets_it_on_the_same_channel():
    async def scenario(peer):
        link = AmiLink(config(peer.port))
        await link.start()
        peer.event(
            Event="UserEvent", Channel=CHANNEL, UserEvent="AMDStart", AmdId=CALL, MessageEnd="yes"
        )
        peer.event(Event="UserEvent", Channel="PJSIP/b-2", UserEvent="AMDStart", AmdId="other")
        peer.event(
            Event="UserEvent",
            Channel="PJSIP/c-3",
            UserEvent="AMDStart",
            AmdId="bad",
            MessageEnd="maybe",
        )
        await asyncio.sleep(0.05)
        asked = (
            link.message_end_requested(CALL.upper()),
            link.message_end_requested("other"),
            link.message_end_requested("bad"),
        )
        await link.publish(CALL, decision())
        ok = await link.publish(CALL, MessageEnd(MessageEndKind.BEEP, 10.06, 9.992))
        await link.aclose()
        return asked, ok, link.outcomes, peer.actions

    asked, ok, outcomes, actions = run(scenario)
    assert asked == (True, None, None)
    assert outcomes["bad_start_event"] == 1
    assert ok
    setvars = [
        (a["Variable"], a["Value"], a["Channel"]) for a in actions if a.get("Action") == "Setvar"
    ]
    assert setvars[-2:] == [("AMDBEEPMS", "9992", CHANNEL), ("AMDMESSAGEEND", "BEEP", CHANNEL)]
    event = [a for a in actions if a.get("Action") == "UserEvent"][-1]
    assert (event["UserEvent"], event["AmdId"], event["MessageEnd"], event["BeepMs"]) == (
        "AMDMessageEnd",
        CALL,
        "BEEP",
        "9992",
    )
    assert event["AudioMs"] == "10060"


def test_a_greetings_end_for_a_call_whose_decision_never_reached_a_channel_is_counted():
    async def scenario(peer):
        link = AmiLink(config(peer.port))
        await link.start()
        ok = await link.publish("never-seen", MessageEnd(MessageEndKind.SILENCE, 8.0))
        await link.aclose()
        return ok, link.outcomes

    ok, outcomes = run(scenario)
    assert not ok and outcomes["channel_unknown"] == 1


def test_a_poller_that_sees_the_status_or_the_message_end_finds_the_rest_set():
    """A campaign polling Getvar waits for AMDSTATUS (then AMDMESSAGEEND): each is
    set last, so whenever it is there the variables that go with it are too."""

    async def scenario(peer):
        link = AmiLink(config(peer.port))
        await link.start()
        peer.event(Event="UserEvent", Channel=CHANNEL, UserEvent="AMDStart", AmdId=CALL)
        await asyncio.sleep(0.05)
        await link.publish(CALL, decision())
        await link.publish(CALL, MessageEnd(MessageEndKind.BEEP, 10.06, 9.992))
        await link.aclose()
        return peer.variable_states

    states = run(scenario)
    assert len(states) == 6
    for seen in states:
        if "AMDSTATUS" in seen:
            assert {"AMDCAUSE", "AMDCONFIDENCE", "AMDTRANSCRIPT"} <= seen.keys(), seen
        if "AMDMESSAGEEND" in seen:
            assert seen["AMDBEEPMS"] == "9992", seen
