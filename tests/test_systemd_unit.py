"""The shipped systemd unit and its environment file: systemd accepts the unit as it
is (``systemd-analyze verify``, where systemd is installed), and the settings it
names are the service's own."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bridge.cli.main import EXIT_USAGE
from bridge.settings import Settings

DEPLOY = Path(__file__).parents[1] / "deploy" / "systemd"
UNIT = DEPLOY / "amd-bridge.service"
ENV_FILE = DEPLOY / "amd-bridge.env"


def directives(text: str) -> dict[str, str]:
    return dict(
        line.split("=", 1) for line in text.splitlines() if "=" in line and line[0] not in "#;"
    )


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd is not installed")
def test_systemd_accepts_the_unit_without_a_warning(tmp_path):
    # The same unit, pointed at this checkout's install instead of /opt and /etc.
    amd_bridge = Path(sys.executable).with_name("amd-bridge")
    text = UNIT.read_text()
    text = text.replace("/opt/amd-bridge/venv/bin/amd-bridge", str(amd_bridge))
    text = text.replace("/etc/amd-bridge/amd-bridge.env", str(ENV_FILE))
    unit = tmp_path / "amd-bridge.service"
    unit.write_text(text)
    proc = subprocess.run(
        ["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    # systemd warns about unknown keys and bad values but still exits 0
    assert proc.stderr.strip() == "", proc.stderr


def test_the_unit_runs_the_service_as_its_own_user_and_restarts_sensibly():
    unit = directives(UNIT.read_text())
    assert unit["ExecStart"].endswith("/amd-bridge serve")
    assert unit["User"] == unit["Group"] == "amd-bridge"
    assert unit["EnvironmentFile"] == "/etc/amd-bridge/amd-bridge.env"
    assert unit["Restart"] == "on-failure"
    assert unit["RestartPreventExitStatus"] == str(EXIT_USAGE)  # configuration errors
    assert float(unit["TimeoutStopSec"]) > Settings().shutdown_deadline_s
    for hardening in ("NoNewPrivileges", "ProtectSystem", "ProtectHome", "PrivateTmp"):
        assert unit[hardening] in ("yes", "strict"), hardening


def test_the_environment_file_names_only_real_settings():
    known = {Settings.env_name(name) for name in Settings.__dataclass_fields__}
    named = re.findall(r"^#?(AMD_[A-Z0-9_]+)=", ENV_FILE.read_text(), re.MULTILINE)
    assert named and set(named) <= known, set(named) - known
    # what is set (not commented out) loads as the service would load it
    env = {k: v for k, v in directives(ENV_FILE.read_text()).items() if k.startswith("AMD_")}
    Settings.load(environ=env)
