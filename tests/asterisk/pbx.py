"""A real Asterisk for the tests: minimal configuration written into the cached
sid root, started with ``chroot ROOT asterisk -f``, sharing the host's loopback.

The configuration includes the project's own ``dialplan/extensions_amd_bridge.conf``
and ``dialplan/manager.d/amd-bridge.conf`` (only the secret is replaced), so the
tests exercise exactly what a PBX admin installs.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import wave
from pathlib import Path

from tests.asterisk.ami_client import AmiClient

REPO = Path(__file__).resolve().parents[2]
DIALPLAN = REPO / "dialplan"
TESTER = ("tester", "tester-secret")
BRIDGE_SECRET = "bridge-test-secret"

MODULES = (
    "res_timing_timerfd",
    "pbx_config",
    "res_audiosocket",
    "app_audiosocket",
    "app_amd",
    "app_playback",
    "app_stack",
    "app_userevent",
    "app_verbose",
    "app_exec",
    "func_uuid",
    "func_logic",
    "func_strings",
    "func_channel",
    "format_wav",
    "format_pcm",
    "codec_ulaw",
    "app_voicemail",
)

TEST_CONTEXTS = Path(__file__).with_name("test_contexts.conf")


def bridge_env(ami_port: int, **overrides: str) -> dict[str, str]:
    """Settings for a bridge on free ports that logs in as the project's AMI user."""
    return {
        "AMD_HTTP_PORT": "0",
        "AMD_AUDIOSOCKET_PORT": "0",
        "AMD_AMI_HOST": "127.0.0.1",
        "AMD_AMI_PORT": str(ami_port),
        "AMD_AMI_USER": "amd-bridge",
        "AMD_AMI_SECRET": BRIDGE_SECRET,
        **overrides,
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class AsteriskPbx:
    def __init__(self, root: Path, name: str = "amd-test") -> None:
        self.root = root
        self.name = name
        self.dir = root / name
        self.ami_port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self._mounted: list[Path] = []

    @property
    def log_path(self) -> Path:
        return self.dir / "asterisk.out"

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def voicemails(self, mailbox: str = "100") -> list[Path]:
        """The messages Asterisk's VoiceMail() recorded in ``mailbox`` (context default)."""
        inbox = self.dir / "spool" / "voicemail" / "default" / mailbox / "INBOX"
        return sorted(inbox.glob("msg*.wav"))

    def add_sound(self, name: str, wav: Path) -> None:
        """Make ``wav`` (8 kHz mono 16-bit) playable as ``/<dir>/sounds/<name>``."""
        with wave.open(str(wav)) as w:
            assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (8000, 1, 2), wav
        shutil.copyfile(wav, self.dir / "sounds" / f"{name}.wav")

    def write_configs(self) -> None:
        if self.dir.exists():
            shutil.rmtree(self.dir)
        for sub in ("etc", "lib", "spool", "run", "log", "sounds"):
            (self.dir / sub).mkdir(parents=True)
        etc = self.dir / "etc"
        inside = "/" + self.name
        (etc / "asterisk.conf").write_text(
            "[directories]\n"
            f"astetcdir => {inside}/etc\n"
            "astmoddir => /usr/lib/x86_64-linux-gnu/asterisk/modules\n"
            f"astvarlibdir => {inside}/lib\nastdbdir => {inside}/lib\nastkeydir => {inside}/lib\n"
            "astdatadir => /usr/share/asterisk\nastagidir => /usr/share/asterisk/agi-bin\n"
            f"astspooldir => {inside}/spool\nastrundir => {inside}/run\n"
            f"astlogdir => {inside}/log\nastsbindir => /usr/sbin\n"
            "[options]\nverbose = 3\n"
        )
        (etc / "modules.conf").write_text(
            "[modules]\nautoload = no\n" + "".join(f"load => {m}.so\n" for m in MODULES)
        )
        (etc / "logger.conf").write_text(
            "[general]\n[logfiles]\nconsole => notice,warning,error,verbose\n"
        )
        shutil.copyfile(self.root / "etc/asterisk/amd.conf", etc / "amd.conf")
        (etc / "voicemail.conf").write_text(
            "[general]\nformat = wav\nminsecs = 1\nmaxsecs = 60\nmaxsilence = 10\n"
            "[default]\n100 => 1234,Test Box\n"
        )
        bridge_user = (DIALPLAN / "manager.d" / "amd-bridge.conf").read_text()
        bridge_user = "\n".join(
            f"secret = {BRIDGE_SECRET}" if line.startswith("secret") else line
            for line in bridge_user.splitlines()
        )
        (etc / "manager.conf").write_text(
            f"[general]\nenabled = yes\nport = {self.ami_port}\nbindaddr = 127.0.0.1\n\n"
            f"[{TESTER[0]}]\nsecret = {TESTER[1]}\n"
            "deny = 0.0.0.0/0.0.0.0\npermit = 127.0.0.1/255.255.255.255\n"
            "read = all\nwrite = all\n\n" + bridge_user + "\n"
        )
        shutil.copyfile(DIALPLAN / "extensions_amd_bridge.conf", etc / "extensions_amd_bridge.conf")
        (etc / "extensions.conf").write_text(
            "[globals]\n\n"
            '#include "extensions_amd_bridge.conf"\n'
            + TEST_CONTEXTS.read_text().replace("@DIR@", self.name)
        )

    def start(self, timeout: float = 60.0) -> AmiClient:
        """Start Asterisk; return a logged-in AMI client once it is ready."""
        for sub, source, options in (("proc", "proc", ["-t", "proc"]), ("dev", "/dev", ["--bind"])):
            target = self.root / sub
            if not os.path.ismount(target):
                subprocess.run(["mount", *options, source, str(target)], check=True)
                self._mounted.append(target)
        out = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [
                "chroot",
                str(self.root),
                "/usr/sbin/asterisk",
                "-f",
                "-n",
                "-C",
                f"/{self.name}/etc/asterisk.conf",
            ],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        out.close()
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"Asterisk exited ({self.process.returncode}):\n{self.log_tail()}"
                )
            try:
                client = AmiClient(self.ami_port, *TESTER)
            except (OSError, RuntimeError):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"Asterisk AMI not ready:\n{self.log_tail()}") from None
                time.sleep(0.2)
                continue
            if "Asterisk Ready" in self.log_tail(200000):
                return client
            client.close()
            time.sleep(0.2)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        for target in reversed(self._mounted):
            subprocess.run(["umount", "-l", str(target)], check=False)
        self._mounted.clear()
