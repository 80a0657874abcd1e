"""The Dockerfile and docker-compose.yml, checked by reading them: no Docker engine
runs here. What is checked is what breaks silently: files that do not exist,
settings the service does not know, PBX configs mounted where the PBX does not
read them, links that cannot reach their loopback-only peers."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from bridge.settings import Settings

ROOT = Path(__file__).parents[1]
SETTINGS = {f"AMD_{name.upper()}" for name in Settings.__dataclass_fields__}


def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def dockerfile_instructions(path: Path) -> list[tuple[str, str]]:
    text = re.sub(r"\\\n\s*", " ", path.read_text())  # join continued lines
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
    return [(ln.split(None, 1)[0].upper(), ln.split(None, 1)[1]) for ln in lines]


def test_the_image_installs_the_package_and_runs_the_service():
    steps = dockerfile_instructions(ROOT / "Dockerfile")
    kinds = [k for k, _ in steps]
    assert kinds[0] == "ARG" and steps[0][1].startswith("BASE=python:3.")
    assert ("FROM", "${BASE}") in steps
    for _, args in (s for s in steps if s[0] == "COPY"):
        *sources, _dest = args.split()
        for source in sources:
            assert (ROOT / source).exists(), source
    runs = " ".join(args for kind, args in steps if kind == "RUN")
    assert "pip install ." in runs
    env = " ".join(args for kind, args in steps if kind == "ENV")
    for name in re.findall(r"(AMD_\w+)=", env):
        assert name in SETTINGS, name
    assert ("USER", "amd") in steps
    assert ("EXPOSE", "8080 9092") in steps
    (entrypoint,) = [args for kind, args in steps if kind == "ENTRYPOINT"]
    assert '"/opt/amd/bin/amd-bridge", "serve"' in entrypoint
    assert any(kind == "HEALTHCHECK" and "/healthz" in args for kind, args in steps)
    # the wheel needs the models and the package sources; tests stay out of the context
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert "tests" in ignored and "models" not in ignored and "bridge" not in ignored


def test_compose_runs_a_bridge_in_each_pbxs_network_namespace():
    services = compose()["services"]
    assert set(services) == {
        "asterisk",
        "amd-bridge-asterisk",
        "freeswitch",
        "amd-bridge-freeswitch",
    }
    for pbx in ("asterisk", "freeswitch"):
        bridge = services[f"amd-bridge-{pbx}"]
        assert bridge["network_mode"] == f"service:{pbx}"
        assert bridge["depends_on"] == [pbx]
        assert bridge["build"] == "."
        assert "ports" not in bridge  # a shared namespace publishes on the PBX's service
        for name in bridge["environment"]:
            assert name in SETTINGS, name
        published = {p.split(":")[1].split("/")[0] for p in services[pbx]["ports"]}
        assert bridge["environment"]["AMD_HTTP_PORT"] in published
    asterisk_env = services["amd-bridge-asterisk"]["environment"]
    assert asterisk_env["AMD_AMI_HOST"] == "127.0.0.1"  # the AMI user permits loopback only
    assert asterisk_env["AMD_AUDIOSOCKET_PORT"] == "9092"  # the subroutine's default address
    freeswitch_env = services["amd-bridge-freeswitch"]["environment"]
    assert freeswitch_env["AMD_ESL_HOST"] == "127.0.0.1"
    Settings.load(environ={k: _default(v) for k, v in asterisk_env.items()})
    Settings.load(environ={k: _default(v) for k, v in freeswitch_env.items()})


def test_compose_mounts_the_repositorys_pbx_files_where_the_pbxs_read_them():
    services = compose()["services"]
    mounts = {
        pbx: {v.split(":")[0]: v.split(":")[1] for v in services[pbx]["volumes"]}
        for pbx in ("asterisk", "freeswitch")
    }
    for pbx_mounts in mounts.values():
        for source in pbx_mounts:
            assert (ROOT / source).exists(), source
    assert mounts["asterisk"]["./dialplan/extensions_amd_bridge.conf"] == (
        "/etc/asterisk/extensions_amd_bridge.conf"
    )
    assert mounts["asterisk"]["./dialplan/manager.d/amd-bridge.conf"].startswith(
        "/etc/asterisk/manager.d/"
    )
    conf = "/usr/local/freeswitch/conf"
    assert mounts["freeswitch"]["./freeswitch_conf/autoload_configs/event_socket.conf.xml"] == (
        f"{conf}/autoload_configs/event_socket.conf.xml"
    )
    assert mounts["freeswitch"]["./freeswitch_conf/dialplan/amd_bridge.xml"].startswith(
        f"{conf}/dialplan/"
    )


def test_the_compose_defaults_match_the_shipped_pbx_secrets():
    """Out of the box the two sides agree; the header comment says to change both."""
    services = compose()["services"]
    manager = (ROOT / "dialplan/manager.d/amd-bridge.conf").read_text()
    (secret,) = re.findall(r"^secret = (.+)$", manager, re.M)
    assert _default(services["amd-bridge-asterisk"]["environment"]["AMD_AMI_SECRET"]) == secret
    esl = (ROOT / "freeswitch_conf/autoload_configs/event_socket.conf.xml").read_text()
    (password,) = re.findall(r'name="password" value="([^"]+)"', esl)
    assert (
        _default(services["amd-bridge-freeswitch"]["environment"]["AMD_ESL_PASSWORD"]) == password
    )


def _default(value: str) -> str:
    """``${NAME:-default}`` as compose resolves it with NAME unset."""
    match = re.fullmatch(r"\$\{\w+:-(.*)\}", str(value))
    return match.group(1) if match else str(value)


def test_the_asterisk_image_has_what_the_dialplan_needs():
    steps = dockerfile_instructions(ROOT / "docker/asterisk/Dockerfile")
    runs = " ".join(args for kind, args in steps if kind == "RUN")
    assert "asterisk " in runs and "asterisk-core-sounds-en-wav" in runs
    assert ("FROM", "debian:sid-slim") in steps
