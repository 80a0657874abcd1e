"""The shipped FreeSWITCH dialplan: it parses, and the fork URLs it builds are
ones the bridge accepts (no FreeSWITCH runs here, so the XML is checked, not run)."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

from bridge.protocols import audio_fork as wire

DIALPLAN = Path(__file__).parents[1] / "freeswitch_conf" / "dialplan" / "amd_bridge.xml"
CHANNEL = "0f8c9b1e-6a1d-4d0e-9a55-3d6f1c2b7e10"


def fork_commands() -> dict[str, str]:
    root = ET.parse(DIALPLAN).getroot()
    found = {}
    for extension in root.iter("extension"):
        for action in extension.iter("action"):
            match = re.search(r"\$\{uuid_audio_fork\((.*)\)\}$", action.get("data", ""))
            if match:
                found[extension.get("name", "")] = match.group(1)
    return found


def test_both_detect_extensions_fork_to_the_bridge_with_the_channel_uuid():
    commands = fork_commands()
    assert set(commands) == {"amd_detect", "amd_detect_drop"}
    for name, command in commands.items():
        uuid, verb, url, mix, rate = command.split()
        assert (uuid, verb, mix, rate) == ("${uuid}", "start", "mono", "16k"), name
        url = url.replace("${amd_bridge_url}", "ws://127.0.0.1:8080" + wire.PATH)
        params = wire.params_from_path(url.replace("${uuid}", CHANNEL))
        assert params.uuid == CHANNEL
        assert params.message_end is (True if name == "amd_detect_drop" else None)


def test_the_machine_extension_waits_only_without_a_heard_beep():
    root = ET.parse(DIALPLAN).getroot()
    machine = next(e for e in root.iter("extension") if e.get("name") == "amd_machine")
    sleeps = [a.get("data", "") for a in machine.iter("action") if a.get("application") == "sleep"]
    assert sleeps == ["${cond(${AMDMESSAGEEND} == BEEP ? 0 : 1000)}"]
