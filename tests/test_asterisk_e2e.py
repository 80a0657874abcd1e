"""End to end on a real Asterisk 22 (Debian sid, in a chroot sharing the loopback).

Each call is originated as ``Local/<callee>@amd-test-callee``: the callee half plays
a WAV (piper speech after a mu-law round trip, or Asterisk's own recorded
prompts), the caller half runs the project's ``Gosub(amd-bridge,s,1)`` and then
raises a test event with the ``AMDSTATUS``/``AMDCAUSE`` the dialplan sees.
"""

from __future__ import annotations

import time
import wave
from pathlib import Path

import numpy as np
import pytest
import soxr

from bridge.errors import ConfigError
from bridge.settings import Settings
from tests.asterisk.ami_client import AmiClient, Packet, first
from tests.asterisk.bridge_thread import BridgeThread
from tests.asterisk.pbx import DIALPLAN, AsteriskPbx, bridge_env, free_port
from tests.asterisk.root import RootUnavailable, ensure_root, why_not_supported
from tests.test_engine_real import HUMAN_OPENER, MACHINE_GREETING

pytestmark = pytest.mark.slow
PROMPTS = "usr/share/asterisk/sounds/en_US_f_Allison"
DROP_MESSAGE = "Hello, this is a reminder from Parkside Dental about your appointment on Monday."
# What VoiceMail(100@default,u) plays for a mailbox with no recorded greeting.
VOICEMAIL_GREETING = (
    "vm-theperson",
    "digits/1",
    "digits/0",
    "digits/0",
    "vm-isunavail",
    "vm-intro",
)


@pytest.fixture(scope="module")
def pbx(speech_wav):  # type: ignore[no-untyped-def]
    reason = why_not_supported()
    if reason:
        pytest.skip(reason)
    try:
        root = ensure_root()
    except RootUnavailable as exc:
        pytest.fail(f"could not build the Asterisk root: {exc}")
    pbx = AsteriskPbx(root)
    pbx.write_configs()
    pbx.add_sound("machine", speech_wav(MACHINE_GREETING))
    pbx.add_sound("human", speech_wav(HUMAN_OPENER))
    pbx.add_sound("hello", speech_wav("Hello?", lead_s=0.2))
    pbx.add_sound("vmintro", root / PROMPTS / "vm-intro.wav")
    pbx.add_sound("dropmessage", speech_wav(DROP_MESSAGE, lead_s=0.0))
    try:
        ami = pbx.start()
    except Exception:
        pbx.stop()
        raise
    pbx.ami = ami  # type: ignore[attr-defined]
    yield pbx
    ami.close()
    pbx.stop()


def bridge_settings(pbx: AsteriskPbx, **overrides: str) -> Settings:
    return Settings.load(environ=bridge_env(pbx.ami_port, **overrides))


@pytest.fixture(scope="module")
def bridge(pbx, detector):  # type: ignore[no-untyped-def]
    with BridgeThread(bridge_settings(pbx), detector) as running:
        yield running


def use_bridge_at(ami: AmiClient, addr: str) -> None:
    ami.command(f"dialplan set global AMD_BRIDGE_ADDR {addr}")


def call(
    ami: AmiClient,
    callee: str,
    wait_for: str = "AMDTestResult",
    timeout: float = 30,
    context: str = "amd-test-caller",
) -> Packet:
    """Originate one call; return the caller side's test event."""
    action_id = ami.send(
        "Originate",
        Channel=f"Local/{callee}@amd-test-callee",
        Context=context,
        Exten="s",
        Priority="1",
        Async="true",
    )
    answered = ami.wait(
        lambda p: first(p, "Event") == "OriginateResponse" and first(p, "ActionID") == action_id,
        timeout,
    )
    assert first(answered, "Response") == "Success", answered
    channel = first(answered, "Channel")
    return ami.wait(
        lambda p: first(p, "UserEvent") == wait_for and first(p, "Channel") == channel, timeout
    )


def assert_no_call_left(ami: AmiClient, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while True:
        out = ami.command("core show channels count")
        if "0 active channels" in out:
            return
        assert time.monotonic() < deadline, f"calls still up:\n{ami.command('core show channels')}"
        time.sleep(0.2)


def bridge_result(ami: AmiClient, amd_id: str) -> Packet:
    return ami.wait(
        lambda p: first(p, "UserEvent") == "AMDResult" and first(p, "AmdId") == amd_id, 5
    )


def test_a_machine_greeting_is_machine(pbx, bridge):
    use_bridge_at(pbx.ami, bridge.audiosocket_addr)
    result = call(pbx.ami, "play-machine")
    assert first(result, "Status") == "MACHINE", result
    assert first(result, "Cause").startswith("CLASSIFIER-")
    assert 0.8 <= float(first(result, "Confidence")) <= 1.0
    # campaign software sees the same decision as an AMI event
    event = bridge_result(pbx.ami, first(result, "Id"))
    assert first(event, "Status") == "MACHINE"
    assert first(event, "Channel") == first(result, "Channel")
    assert_no_call_left(pbx.ami)


def test_asterisks_own_voicemail_prompt_is_machine(pbx, bridge):
    use_bridge_at(pbx.ami, bridge.audiosocket_addr)
    result = call(pbx.ami, "play-vmintro")
    assert first(result, "Status") == "MACHINE", result
    assert_no_call_left(pbx.ami)


def test_a_person_saying_hello_then_waiting_is_human(pbx, bridge):
    use_bridge_at(pbx.ami, bridge.audiosocket_addr)
    result = call(pbx.ami, "play-human")
    assert first(result, "Status") == "HUMAN", result
    elapsed = float(first(result, "Ended")) - float(first(result, "Started"))
    assert elapsed < 9.0, "the call is released soon after the decision (by 7 s of audio)"
    assert_no_call_left(pbx.ami)


@pytest.mark.parametrize("callee", ["quiet-hello", "quiet-human"])
def test_a_callee_whose_channel_goes_quiet_is_decided_on_time(pbx, bridge, callee):
    """After the prompt the callee's channel sends no frames at all. Asterisk's
    AudioSocket() gives up after 2 s with nothing either way, so the bridge keeps
    sending, and counts the time without frames as silence: the call is decided by
    its own clock, not lost as UNREACHABLE."""
    use_bridge_at(pbx.ami, bridge.audiosocket_addr)
    result = call(pbx.ami, callee)
    assert first(result, "Status") == "HUMAN", result
    assert first(result, "Cause").startswith("CLASSIFIER-"), result
    elapsed = float(first(result, "Ended")) - float(first(result, "Started"))
    # The maximum window is 7 s; the callee hangs up 10 s after its prompt.
    assert elapsed < 8.5, "decided within the maximum window, not at the callee's hang-up"
    assert_no_call_left(pbx.ami)


@pytest.mark.parametrize(
    ("callee", "cause", "within_s"),
    [
        # silence frames: no speech by AMD_INITIAL_SILENCE_S (4 s), NOTSURE at that ask
        ("dead-air", "SILENCE-40", 6.0),
        # no frames at all from the answer on: NOAUDIO after AMD_NO_AUDIO_TIMEOUT_S (5 s)
        ("dead-quiet", "NOAUDIO-0", 7.0),
    ],
)
def test_dead_air_is_notsure_before_the_maximum_window(pbx, bridge, callee, cause, within_s):
    """A callee that answers and says nothing is released well before the maximum window
    (7 s), whether the channel sends silence or nothing at all."""
    use_bridge_at(pbx.ami, bridge.audiosocket_addr)
    result = call(pbx.ami, callee)
    assert first(result, "Status") == "NOTSURE", result
    assert first(result, "Cause").startswith(cause), result
    elapsed = float(first(result, "Ended")) - float(first(result, "Started"))
    assert elapsed < within_s, elapsed
    assert_no_call_left(pbx.ami)


def test_a_hang_up_during_analysis_is_hangup(pbx, bridge):
    use_bridge_at(pbx.ami, bridge.audiosocket_addr)
    result = call(pbx.ami, "bye-hello", wait_for="AMDTestHangup")
    assert first(result, "Status") == "HANGUP", result
    # the bridge saw the stream end before its first analysis
    event = pbx.ami.wait(
        lambda p: (
            first(p, "UserEvent") == "AMDResult" and first(p, "Channel") == first(result, "Channel")
        ),
        5,
    )
    assert first(event, "Status") == "HANGUP"
    assert_no_call_left(pbx.ami)


def test_with_the_bridge_down_the_call_goes_on_as_notsure(pbx):
    use_bridge_at(pbx.ami, f"127.0.0.1:{free_port()}")  # nothing listens there
    result = call(pbx.ami, "play-machine")
    assert first(result, "Status") == "NOTSURE"
    assert first(result, "Cause") == "UNREACHABLE-0"
    assert_no_call_left(pbx.ami)


def test_with_ami_unreachable_the_call_is_released_as_notsure(pbx, detector):
    settings = bridge_settings(pbx, AMD_AMI_PORT=str(free_port()), AMD_AMI_RETRY_S="0.5")
    with BridgeThread(settings, detector) as lonely:
        use_bridge_at(pbx.ami, lonely.audiosocket_addr)
        result = call(pbx.ami, "play-machine")
        assert lonely.service is not None and lonely.service.ami is not None
        assert lonely.service.ami.outcomes["not_connected"] == 1
    assert first(result, "Status") == "NOTSURE"
    assert first(result, "Cause") == "NORESULT-0"
    assert_no_call_left(pbx.ami)


def test_a_wrong_ami_secret_stops_the_service_at_start(pbx, detector):
    settings = bridge_settings(pbx, AMD_AMI_SECRET="not-the-secret")
    with pytest.raises(ConfigError, match="refused"), BridgeThread(settings, detector):
        pass


def test_the_sample_campaign_dialplan_loads_in_asterisk(pbx):
    etc = pbx.dir / "etc"
    ours = (etc / "extensions.conf").read_text()
    (etc / "extensions.conf").write_text((DIALPLAN / "extensions.conf").read_text())
    try:
        pbx.ami.command("dialplan reload")
        campaign = pbx.ami.command("dialplan show outbound-campaign")
        subroutine = pbx.ami.command("dialplan show s@amd-bridge")
        globals_ = pbx.ami.command("dialplan show globals")
    finally:
        (etc / "extensions.conf").write_text(ours)
        pbx.ami.command("dialplan reload")
    assert "Gosub(amd-bridge,s,1)" in campaign
    assert "TryExec(AudioSocket(${AMDID},${addr}))" in subroutine
    assert "AMD_BRIDGE_ADDR=127.0.0.1:9092" in globals_


def wav_seconds(path: Path) -> float:
    with wave.open(str(path)) as w:
        return w.getnframes() / w.getframerate()


def test_a_voicemail_drop_starts_after_asterisks_own_voicemail_beep(pbx, bridge, detector):
    """The callee is Asterisk's VoiceMail(): greeting, beep, recording. The caller
    waits for the greeting's end, then plays a message; the mailbox must hold all of it."""
    use_bridge_at(pbx.ami, bridge.audiosocket_addr)
    before = set(pbx.voicemails())
    result = call(pbx.ami, "voicemail", context="amd-test-drop", timeout=60)
    assert first(result, "Status") == "MACHINE", result
    assert first(result, "MessageEnd") == "BEEP", result
    prompts = pbx.root / PROMPTS
    beep_end_s = sum(wav_seconds(prompts / f"{name}.wav") for name in (*VOICEMAIL_GREETING, "beep"))
    assert int(first(result, "BeepMs")) / 1000 == pytest.approx(beep_end_s, abs=0.3)
    # the AMI event for dialers carries the same
    event = pbx.ami.wait(
        lambda p: (
            first(p, "UserEvent") == "AMDMessageEnd" and first(p, "AmdId") == first(result, "Id")
        ),
        5,
    )
    assert first(event, "MessageEnd") == "BEEP"
    assert first(event, "BeepMs") == first(result, "BeepMs")
    assert_no_call_left(pbx.ami)
    deadline = time.monotonic() + 10
    while not (new := set(pbx.voicemails()) - before) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert len(new) == 1, "VoiceMail() saved the message"
    recording = new.pop()
    message_s = wav_seconds(pbx.dir / "sounds" / "dropmessage.wav")
    recorded_s = wav_seconds(recording)
    # All of the message is there: it started after the beep, when recording had begun.
    assert message_s - 0.2 <= recorded_s <= message_s + 1.5, (recorded_s, message_s)
    with wave.open(str(recording)) as w:
        pcm = np.frombuffer(w.readframes(w.getnframes()), np.int16).astype(np.float32) / 32768
        heard = soxr.resample(pcm, w.getframerate(), 16000).astype(np.float32)
    transcript = detector.analyze_batch([heard[: 16000 * 4]])[0].transcript.lower()
    assert "hello" in transcript or "this is" in transcript, transcript
