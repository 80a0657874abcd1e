"""The shipped FreeSWITCH dialplan, read the way FreeSWITCH reads it: first its
preprocessor (tests/freeswitch/switch_xml.py, from switch_xml.c: line by line,
comments included), then the XML, then each action's data expanded when it runs
(tests/freeswitch/switch_expand.py, from switch_channel.c and mod_commands.c's cond)."""

from __future__ import annotations

import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from bridge.protocols import audio_fork as wire
from tests.freeswitch.switch_expand import cond, expand
from tests.freeswitch.switch_strings import separate_string
from tests.freeswitch.switch_xml import Preprocessor

DIALPLAN = Path(__file__).parents[1] / "freeswitch_conf" / "dialplan" / "amd_bridge.xml"
CHANNEL = "0f8c9b1e-6a1d-4d0e-9a55-3d6f1c2b7e10"
# The part of the stock freeswitch.xml that brings dialplan files in.
FREESWITCH_XML = """<?xml version="1.0"?>
<document type="freeswitch/xml">
  <X-PRE-PROCESS cmd="set" data="sounds_dir=/usr/share/freeswitch/sounds"/>
  <section name="dialplan" description="Regex/XML Dialplan">
    <X-PRE-PROCESS cmd="include" data="dialplan/*.xml"/>
  </section>
</document>
"""


def load_config(tmp_path: Path, dialplan_file: Path = DIALPLAN) -> tuple[Preprocessor, str]:
    """A conf folder as FreeSWITCH has it, with the file where docker-compose.yml
    mounts it (conf/dialplan/); the preprocessor's output for freeswitch.xml."""
    (tmp_path / "dialplan").mkdir()
    shutil.copy(dialplan_file, tmp_path / "dialplan" / "amd_bridge.xml")
    (tmp_path / "freeswitch.xml").write_text(FREESWITCH_XML)
    pre = Preprocessor()
    return pre, pre.run(tmp_path / "freeswitch.xml")


@pytest.fixture
def context(tmp_path: Path) -> ET.Element:
    pre, text = load_config(tmp_path)
    assert pre.errors == []
    document = ET.fromstring(text)
    (found,) = document.iter("context")
    assert found.get("name") == "amd"
    return found


def test_freeswitch_can_load_the_file_where_the_samples_put_it(context):
    names = [e.get("name") for e in context.iter("extension")]
    assert names == [
        "amd_detect",
        "amd_detect_drop",
        "amd_wait_over",
        "amd_human",
        "amd_machine",
    ]


def test_a_directive_inside_a_comment_is_run_and_the_peer_sees_it(tmp_path):
    """What stopped a real FreeSWITCH from starting: the old header comment quoted the
    include line for this very file, so it included itself until the depth limit."""
    bad = tmp_path / "bad.xml"
    text = DIALPLAN.read_text().replace(
        "<!--\n", '<!--\n    <X-PRE-PROCESS cmd="include" data="amd_bridge.xml"/>\n', 1
    )
    bad.write_text(text)
    conf = tmp_path / "conf"
    conf.mkdir()
    pre, out = load_config(conf, bad)
    assert any("Maximum recursion limit reached" in e for e in pre.errors)
    with pytest.raises(ET.ParseError):
        ET.fromstring(out)


Actions = list[tuple[str, str]]


def run_extension(context: ET.Element, name: str, variables: dict[str, str]) -> Actions:
    """Execute an extension's actions as FreeSWITCH would: each data expanded when its
    action runs, ``set`` changing the channel's variables; up to a transfer."""
    forks: list[str] = []

    def uuid_audio_fork(arg: str) -> str:
        forks.append(arg)
        return "+OK Success\n"

    apis = {"cond": cond, "uuid_audio_fork": uuid_audio_fork}
    extension = next(e for e in context.iter("extension") if e.get("name") == name)
    done: Actions = []
    for action in extension.iter("action"):
        app, data = action.get("application", ""), expand(action.get("data", ""), variables, apis)
        assert "-ERR" not in data, (app, action.get("data"), data)
        done.append((app, data))
        if app == "set":
            var, _, value = data.partition("=")
            variables[var] = value
        if app == "transfer":
            break
    done += [("api uuid_audio_fork", arg) for arg in forks]
    return done


def test_both_detect_extensions_fork_to_the_bridge_with_the_channel_uuid(context):
    for name in ("amd_detect", "amd_detect_drop"):
        actions = run_extension(context, name, {"uuid": CHANNEL})
        (fork,) = [data for app, data in actions if app == "api uuid_audio_fork"]
        # mod_audio_fork's own split of its arguments (argv[7])
        uuid, verb, url, mix, rate = separate_string(fork, 7)
        assert (uuid, verb, mix, rate) == (CHANNEL, "start", "mono", "16k"), name
        params = wire.params_from_path(url)
        assert url.startswith("ws://127.0.0.1:8080" + wire.PATH)
        assert params.uuid == CHANNEL
        assert params.message_end is (True if name == "amd_detect_drop" else None)
        # the log line shows the fork's answer, with no variable left holding it
        assert (
            "log",
            f"INFO amd-bridge fork{' (voicemail drop)' * (name != 'amd_detect')}: +OK Success\n",
        ) in actions


@pytest.mark.parametrize("name", ["amd_detect", "amd_detect_drop"])
def test_the_detect_extensions_wait_playing_silence_for_a_bounded_time(context, name):
    """Not park: a parked channel writes no frames, so stereo and mixed forks get none."""
    actions = run_extension(context, name, {"uuid": CHANNEL})
    apps = [app for app, _ in actions]
    assert "park" not in apps
    (wait,) = [data for app, data in actions if app == "playback"]
    assert wait.startswith("silence_stream://")
    assert 5000 <= int(wait.removeprefix("silence_stream://")) <= 60000
    assert actions[apps.index("transfer")][1] == "amd_wait_over XML amd"


@pytest.mark.parametrize(
    ("before", "after", "to"),
    [
        ({}, ("NOTSURE", "TIMEOUT"), "amd_human"),
        (
            {"AMDSTATUS": "MACHINE", "AMDCAUSE": "CLASSIFIER-97-2000"},
            ("MACHINE", "CLASSIFIER-97-2000"),
            "amd_machine",
        ),
        (
            {"AMDSTATUS": "HUMAN", "AMDCAUSE": "CLASSIFIER-91-2000"},
            ("HUMAN", "CLASSIFIER-91-2000"),
            "amd_human",
        ),
    ],
)
def test_a_call_nobody_transferred_goes_on_by_its_status(context, before, after, to):
    variables = dict(before)
    actions = run_extension(context, "amd_wait_over", variables)
    assert (variables["AMDSTATUS"], variables["AMDCAUSE"]) == after
    assert actions[-1] == ("transfer", f"{to} XML amd")


@pytest.mark.parametrize(
    ("message_end", "pause"),
    [(None, "1000"), ("SILENCE", "1000"), ("TIMEOUT", "1000"), ("BEEP", "0")],
)
def test_the_machine_extension_waits_only_without_a_heard_beep(context, message_end, pause):
    variables = {} if message_end is None else {"AMDMESSAGEEND": message_end}
    actions = run_extension(context, "amd_machine", variables)
    assert ("sleep", pause) in actions
    (playback,) = [data for app, data in actions if app == "playback"]
    assert playback == "/usr/share/freeswitch/sounds/campaign/message.wav"


def test_the_old_unquoted_cond_fails_on_an_unset_variable():
    """Why the operands are quoted: FreeSWITCH's cond answers -ERR, and sleep(-ERR)
    does not pause."""
    old = "${cond(${AMDMESSAGEEND} == BEEP ? 0 : 1000)}"
    assert expand(old, {}, {"cond": cond}) == "-ERR"
    assert expand(old, {"AMDMESSAGEEND": "BEEP"}, {"cond": cond}) == "0"
