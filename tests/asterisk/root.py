"""A Debian sid root with Asterisk 22, built once with debootstrap and cached.

``ensure_root()`` returns the root, building it when missing (about a minute:
``debootstrap --variant=minbase --include=asterisk,...``). It installs Debian's
``debootstrap`` first when the host lacks it. Needs root; callers skip otherwise.
The root lives in ``$AMD_TEST_ASTERISK_ROOT`` (default
``/var/cache/amd-bridge-tests/asterisk-sid``) and is rebuilt when the package
list below changes.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import subprocess
from pathlib import Path

PACKAGES = ("asterisk", "asterisk-core-sounds-en-wav", "asterisk-moh-opsound-wav")
MIRROR = os.environ.get("AMD_TEST_DEBIAN_MIRROR", "http://deb.debian.org/debian")
DEFAULT_ROOT = Path("/var/cache/amd-bridge-tests/asterisk-sid")
STAMP = ".amd-bridge-root"


class RootUnavailable(Exception):
    """The root cannot be built here; the message says why."""


def root_path() -> Path:
    return Path(os.environ.get("AMD_TEST_ASTERISK_ROOT", str(DEFAULT_ROOT)))


def why_not_supported() -> str | None:
    if os.environ.get("AMD_TEST_ASTERISK", "1") == "0":
        return "AMD_TEST_ASTERISK=0"
    if os.geteuid() != 0:
        return "needs root (debootstrap, chroot and mounts for the real Asterisk)"
    if not Path("/usr/bin/apt-get").exists() and shutil.which("debootstrap") is None:
        return "needs debootstrap or apt-get to build the Asterisk root"
    return None


def ensure_root() -> Path:
    root = root_path()
    stamp_text = " ".join(PACKAGES) + "\n"
    stamp = root / STAMP
    if stamp.exists() and stamp.read_text() == stamp_text:
        return root
    root.parent.mkdir(parents=True, exist_ok=True)
    with _locked(root.parent / (root.name + ".lock")):
        if stamp.exists() and stamp.read_text() == stamp_text:
            return root  # built by another process meanwhile
        _install_debootstrap()
        building = root.parent / (root.name + ".building")
        _remove_root(building)
        log = root.parent / (root.name + ".log")
        with log.open("w") as out:
            result = subprocess.run(
                [
                    "debootstrap",
                    "--variant=minbase",
                    "--include=" + ",".join(PACKAGES),
                    "sid",
                    str(building),
                    MIRROR,
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                check=False,
            )
        if result.returncode != 0:
            tail = log.read_text(errors="replace")[-2000:]
            raise RootUnavailable(f"debootstrap failed ({result.returncode}):\n{tail}")
        (building / STAMP).write_text(stamp_text)
        _remove_root(root)
        building.rename(root)
    return root


def _install_debootstrap() -> None:
    if shutil.which("debootstrap"):
        return
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update"], ["apt-get", "install", "-y", "debootstrap"]):
        result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise RootUnavailable(f"{' '.join(command)} failed:\n{result.stderr[-2000:]}")


def _remove_root(path: Path) -> None:
    """Delete a root, unmounting anything a crashed run left mounted in it first."""
    if not path.exists():
        return
    for sub in ("proc", "dev"):
        target = path / sub
        if os.path.ismount(target):
            subprocess.run(["umount", "-l", str(target)], check=False)
    prefix = str(path.resolve()) + "/"
    with open("/proc/mounts") as mounts:
        still = [line.split()[1] for line in mounts if line.split()[1].startswith(prefix)]
    if still:
        raise RootUnavailable(f"refusing to delete {path}: still mounted: {still}")
    shutil.rmtree(path)


@contextlib.contextmanager
def _locked(path: Path):  # type: ignore[no-untyped-def]
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
