#!/usr/bin/env python3
"""Place campaign calls on FreeSWITCH and branch on amd-bridge's answer.

For each number: originate it (``originate`` returns once the callee answers; the
call then plays silence, so that forks of every mix get frames), start
mod_audio_fork toward amd-bridge, wait for ``AMDSTATUS`` on the channel (the bridge
sets it after the other variables), stop the fork, then transfer the call to the
human or machine extension of ``dialplan/amd_bridge.xml`` (or let it go when the
callee hung up). The fork's own events end the wait early: a fork that could not
reach the bridge is ``NOTSURE``/``NOFORK`` at once, one the bridge closed without
a result ``NOTSURE``/``FORKCLOSED``.
With ``--voicemail-drop`` a MACHINE call is transferred only once the bridge has
heard the greeting end (``AMDMESSAGEEND``: its beep, silence, or a timeout), so
the message the machine extension plays is recorded whole.
One JSON line per call goes to stdout.

    python3 amd_campaign.py --password amd-bridge-change-me \\
        --dialstring 'sofia/gateway/carrier/{number}' +15551234567 +15557654321

Uses the event socket codec of amd-bridge (``pip install amd-bridge``) over a
plain blocking socket; run it where the bridge is installed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import socket
import sys
import time
import uuid
from dataclasses import dataclass

from bridge.protocols import esl

UNDEFINED = "_undef_"  # what uuid_getvar answers for a variable that is not set
# mod_audio_fork's events about its connection (mod_audio_fork.h)
CONNECT_FAILED = "mod_audio_fork::connect_failed"
DISCONNECT = "mod_audio_fork::disconnect"
FORK_ERROR = "mod_audio_fork::error"  # what the server said before closing
POLL_S = 0.05


class EslError(Exception):
    pass


class ForkFailed(Exception):
    """The fork ended the wait: ``cause`` is NOFORK or FORKCLOSED."""

    def __init__(self, cause: str, detail: str = "") -> None:
        super().__init__(f"{cause}: {detail}" if detail else cause)
        self.cause = cause


class EventSocket:
    """A blocking event socket connection: authenticate, then one api call at a time."""

    def __init__(self, host: str, port: int, password: str, timeout_s: float = 40.0) -> None:
        self.sock = socket.create_connection((host, port), timeout=timeout_s)
        self.parser = esl.Parser()
        self.pending: list[esl.EslMessage] = []
        self.events: list[dict[str, str]] = []  # fork events not yet looked at
        try:
            if self._next().content_type != esl.AUTH_REQUEST:
                raise EslError("not a FreeSWITCH event socket")
            self.sock.sendall(esl.auth(password))
            reply = self._next()
            if not reply.ok:
                raise EslError(f"authentication refused: {reply.reply}")
            self.sock.sendall(
                f"event json CUSTOM {CONNECT_FAILED} {DISCONNECT} {FORK_ERROR}\n\n".encode()
            )
            reply = self._reply(esl.COMMAND_REPLY)
            if not reply.ok:
                raise EslError(f"cannot listen for mod_audio_fork's events: {reply.reply}")
        except BaseException:
            self.sock.close()
            raise

    def api(self, line: str) -> str:
        self.sock.sendall(esl.api(line))
        return self._reply(esl.API_RESPONSE).body.decode("utf-8", "replace").strip()

    def fork_ended(self, call_uuid: str) -> ForkFailed | None:
        """Whether this call's fork failed to connect or was closed (so far), and
        what the server said about it."""
        mine = [e for e in self.events if e.get("Unique-ID") == call_uuid]
        said = " ".join(e.get("_body", "") for e in mine if e.get("Event-Subclass") == FORK_ERROR)
        for event in mine:
            if event.get("Event-Subclass") == CONNECT_FAILED:
                return ForkFailed("NOFORK", event.get("_body", ""))
            if event.get("Event-Subclass") == DISCONNECT:
                return ForkFailed("FORKCLOSED", said)
        return None

    def _reply(self, content_type: str) -> esl.EslMessage:
        """The next message of this type; events that come first are kept."""
        while True:
            message = self._next()
            if message.content_type == content_type:
                return message
            if message.content_type == "text/event-json":
                with contextlib.suppress(ValueError):
                    event = json.loads(message.body)
                    if isinstance(event, dict):
                        self.events.append({k: str(v) for k, v in event.items()})
            elif message.content_type == esl.DISCONNECT_NOTICE:
                raise EslError("FreeSWITCH closed the event socket")

    def close(self) -> None:
        self.sock.close()

    def _next(self) -> esl.EslMessage:
        while not self.pending:
            data = self.sock.recv(65536)
            if not data:
                raise EslError("FreeSWITCH closed the event socket")
            self.pending += self.parser.feed(data)
        return self.pending.pop(0)


@dataclass
class CallOutcome:
    number: str
    uuid: str
    answered: bool
    amdstatus: str
    amdcause: str
    waited_s: float
    action: str
    message_end: str = ""  # with --voicemail-drop: BEEP, SILENCE or TIMEOUT
    beep_ms: str = ""


def place_call(
    fs: EventSocket, number: str, args: argparse.Namespace, call_uuid: str | None = None
) -> CallOutcome:
    call_uuid = call_uuid or str(uuid.uuid4())
    dialstring = args.dialstring.format(number=number)
    # Silence, not park: a parked channel writes no frames, and a stereo or mixed fork
    # (whose media bug reads both directions) would get no audio.
    originated = fs.api(
        f"originate {{origination_uuid={call_uuid},ignore_early_media=true,"
        f"originate_timeout={args.ring_timeout}}}{dialstring} &playback(silence_stream://-1)"
    )
    if not originated.startswith("+OK"):
        return CallOutcome(number, call_uuid, False, "", "", 0.0, f"not answered: {originated}")
    fields: dict[str, object] = {"uuid": call_uuid}
    if args.voicemail_drop:
        fields["message_end"] = True
    # No spaces: FreeSWITCH splits uuid_audio_fork's arguments at them.
    metadata = json.dumps(fields, separators=(",", ":"))
    fs.events.clear()  # calls go one at a time: what earlier forks said is moot
    fork = fs.api(f"uuid_audio_fork {call_uuid} start {args.bridge_url} mono 16k {metadata}")
    started = time.monotonic()
    status = cause = message_end = beep_ms = ""
    if fork.startswith("+OK"):
        try:
            status, cause = wait_for_result(fs, call_uuid, args.amd_timeout)
            if status == "MACHINE" and args.voicemail_drop and not cause.startswith(("FAX", "SIT")):
                # The greeting is still playing: the message starts after its beep.
                # AMDMESSAGEEND is set after AMDBEEPMS.
                message_end = wait_for_variable(
                    fs, call_uuid, "AMDMESSAGEEND", args.greeting_timeout
                )
                beep_ms = fs.api(f"uuid_getvar {call_uuid} AMDBEEPMS") if message_end else ""
                beep_ms = "" if beep_ms == UNDEFINED else beep_ms
        except ForkFailed as exc:
            print(f"amd_campaign: {number}: fork to {args.bridge_url}: {exc}", file=sys.stderr)
            if not status:
                status, cause = "NOTSURE", exc.cause
        fs.api(f"uuid_audio_fork {call_uuid} stop")
    waited = round(time.monotonic() - started, 2)
    if not status:
        status, cause = "NOTSURE", "TIMEOUT" if fork.startswith("+OK") else "NOFORK"
    if status == "HANGUP":
        action = "none (callee hung up)"
    else:
        target = args.machine_extension if status == "MACHINE" else args.human_extension
        reply = fs.api(f"uuid_transfer {call_uuid} {target} XML {args.context}")
        action = f"transfer {target}: {reply}"
    return CallOutcome(number, call_uuid, True, status, cause, waited, action, message_end, beep_ms)


def wait_for_result(fs: EventSocket, call_uuid: str, timeout_s: float) -> tuple[str, str]:
    """Poll ``AMDSTATUS`` until the bridge sets it, the channel goes, or time is up.
    The bridge sets ``AMDSTATUS`` last, so ``AMDCAUSE`` is there once it is."""
    status = wait_for_variable(fs, call_uuid, "AMDSTATUS", timeout_s)
    if status in ("", "HANGUP"):
        return status, status
    return status, fs.api(f"uuid_getvar {call_uuid} AMDCAUSE")


def wait_for_variable(fs: EventSocket, call_uuid: str, name: str, timeout_s: float) -> str:
    """Poll a channel variable until it is set ("HANGUP" when the channel went,
    "" when time is up). Raises ``ForkFailed`` when the fork could not reach the
    bridge, or closed with the variable still unset."""
    deadline = time.monotonic() + timeout_s
    while True:
        ended = fs.fork_ended(call_uuid)
        value = fs.api(f"uuid_getvar {call_uuid} {name}")
        if value.startswith("-ERR"):  # no such channel: the callee hung up
            return "HANGUP"
        if value and value != UNDEFINED:
            return value
        if ended is not None:  # the variable was read after the fork ended: it is not coming
            raise ended
        if time.monotonic() >= deadline:
            return ""
        time.sleep(POLL_S)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("numbers", nargs="+")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8021)
    parser.add_argument("--password", required=True)
    parser.add_argument("--dialstring", default="sofia/gateway/carrier/{number}")
    parser.add_argument("--bridge-url", default="ws://127.0.0.1:8080/ws/audio-fork")
    parser.add_argument("--ring-timeout", type=int, default=30)
    parser.add_argument("--amd-timeout", type=float, default=10.0, help="seconds to wait for AMD")
    parser.add_argument("--context", default="amd")
    parser.add_argument("--human-extension", default="amd_human")
    parser.add_argument("--machine-extension", default="amd_machine")
    parser.add_argument(
        "--voicemail-drop",
        action="store_true",
        help="on MACHINE, wait for the greeting's beep before the transfer (AMDMESSAGEEND)",
    )
    parser.add_argument(
        "--greeting-timeout", type=float, default=35.0, help="seconds to wait for the beep"
    )
    args = parser.parse_args(argv)
    try:
        fs = EventSocket(args.host, args.port, args.password)
    except (OSError, EslError) as exc:
        print(f"amd_campaign: cannot use the event socket: {exc}", file=sys.stderr)
        return 2
    try:
        for number in args.numbers:
            outcome = place_call(fs, number, args)
            print(json.dumps(outcome.__dict__), flush=True)
    finally:
        fs.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
