"""``amd-bridge``: answering machine detection for Asterisk and FreeSWITCH."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Coroutine, Sequence
from pathlib import Path
from typing import Any

from bridge import __version__
from bridge.errors import AmdError
from bridge.logs import configure_logging
from bridge.settings import OFFLINE_SECTIONS, Settings

log = logging.getLogger("bridge")

EXIT_OK = 0
EXIT_SOME_FAILED = 1  # detect: at least one file gave an error line
EXIT_USAGE = 2  # bad flags or settings, models that do not load


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="amd-bridge", description=__doc__)
    parser.add_argument("--version", action="version", version=f"amd-bridge {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    detect = commands.add_parser(
        "detect",
        help="decide HUMAN/MACHINE/NOTSURE for recordings, one JSON line each",
        description="Run each recording through a call session as a PBX would stream it.",
    )
    detect.add_argument("files", nargs="+", type=Path, metavar="FILE")
    Settings.add_arguments(detect, OFFLINE_SECTIONS)
    serve = commands.add_parser(
        "serve",
        help="run the service: the /ws/amd WebSocket API and /healthz",
        description="Load the models, then serve until SIGINT or SIGTERM.",
    )
    Settings.add_arguments(serve)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = Settings.load(args)
    except AmdError as exc:
        print(f"amd-bridge: configuration error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    configure_logging(settings.log_level, settings.log_format)
    if args.command == "detect":
        return _detect(args.files, settings)
    if args.command == "serve":
        return _serve(settings)
    raise AssertionError(args.command)  # argparse rejects unknown commands


def run_loop(main: Coroutine[Any, Any, None]) -> None:
    """uvloop's event loop where it is installed (Linux, macOS), else asyncio's."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(main)
        return
    uvloop.run(main)


def _serve(settings: Settings) -> int:
    from bridge.engine import build_detector
    from bridge.server import serve_forever

    try:
        detector = build_detector(settings)  # models fail here, before any port opens
    except AmdError as exc:
        print(f"amd-bridge: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        run_loop(serve_forever(settings, detector))
    except AmdError as exc:  # e.g. the AMI login was refused
        print(f"amd-bridge: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:  # a port is taken, or the address is not ours
        print(f"amd-bridge: cannot listen: {exc}", file=sys.stderr)
        return EXIT_USAGE
    return EXIT_OK


def _detect(files: list[Path], settings: Settings) -> int:
    from bridge.cli.detect import detect_files
    from bridge.engine import build_detector

    try:
        detector = build_detector(settings)
    except AmdError as exc:
        print(f"amd-bridge: {exc}", file=sys.stderr)
        return EXIT_USAGE
    failures = asyncio.run(detect_files(files, settings, detector, sys.stdout))
    if failures:
        log.warning("%d of %d files failed", failures, len(files))
        return EXIT_SOME_FAILED
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
