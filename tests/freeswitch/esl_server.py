"""A FreeSWITCH event socket listener, written from ``mod_event_socket.c``.

What it does as FreeSWITCH does, byte for byte:

- greets with ``Content-Type: auth/request\\n\\n`` (or, when the ACL refuses the
  peer, ``text/rude-rejection`` and a close);
- reads packets as ``read_packet`` does: the first line is the command, then
  ``Name: value`` lines until two ``\\n`` with only ``\\r`` between them, then
  ``Content-Length`` bytes of body;
- answers as ``parse_command``/``listener_run``/``api_exec`` do:
  ``Content-Type: command/reply\\nReply-Text: ...\\n\\n`` for commands,
  ``Content-Type: api/response\\nContent-Length: N\\n\\n`` + output for ``api``;
- a wrong password gets ``-ERR invalid``, then the disconnect notice, then a close.

The API commands a campaign needs are emulated from ``mod_commands.c`` and
``mod_audio_fork.c`` (argument splitting from ``switch_utils.c``): uuid_setvar,
uuid_getvar, uuid_transfer, uuid_kill, originate, uuid_audio_fork. Originating
a call answers it at once and runs ``on_answer`` (a test hook) with its uuid.
``uuid_audio_fork ... start`` answers ``+OK`` before connecting, as the module does;
the fork's fate comes later as CUSTOM events (``mod_audio_fork::connect_failed``,
``::json``, ``::error``, ``::disconnect``) to listeners that asked with
``event json CUSTOM <subclass> ...``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid as uuidlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from tests.freeswitch.fork_client import ForkResult, fork_call, interleave
from tests.freeswitch.switch_strings import separate_string
from tests.loopback import LoopbackServer

DISCONNECT_TEXT = "Disconnected, goodbye.\nSee you at ClueCon! http://www.cluecon.com/\n"


@dataclass
class Channel:
    uuid: str
    variables: dict[str, str] = field(default_factory=dict)
    transferred_to: str | None = None
    killed: bool = False


@dataclass
class Packet:
    command: str
    headers: list[tuple[str, str]]
    body: bytes


class FakeFreeSwitch(LoopbackServer):
    def __init__(self, password: str = "s3cret-esl") -> None:
        super().__init__()
        self.password = password
        self.channels: dict[str, Channel] = {}
        self.commands: list[str] = []  # every command line, in order
        self.events: list[Packet] = []  # what sendevent fired
        self.api_log: list[tuple[str, str]] = []  # (command line, output)
        # A channel's variables after each uuid_setvar: all that any poller could see.
        self.variable_states: list[tuple[str, dict[str, str]]] = []
        self.silent = False  # read commands but never answer (a half-open link)
        self.refuse_peer = False  # the listener's ACL says no
        self.logins = 0
        self.on_answer: Callable[[Channel], Awaitable[None]] | None = None
        # the callee's audio, PCM16 at the rate a fork asks for: (channel, rate) -> bytes
        self.callee_audio: Callable[[Channel, int], bytes] | None = None
        self.forks: dict[str, ForkResult] = {}
        # ``event json CUSTOM <subclass> ...`` subscriptions: connection -> subclasses
        self.subscribers: dict[asyncio.StreamWriter, set[str]] = {}
        self.background: set[asyncio.Task[None]] = set()

    def add_channel(self, channel_uuid: str | None = None) -> Channel:
        channel = Channel(channel_uuid or str(uuidlib.uuid4()))
        self.channels[channel.uuid] = channel
        return channel

    async def stop(self) -> None:
        await super().stop()
        for task in self.background:
            task.cancel()

    def drop_connections(self) -> None:
        for w in self.writers:
            w.close()

    def say_goodbye(self) -> None:
        """What listeners get when mod_event_socket is reloaded or FreeSWITCH stops:
        the disconnect notice, then the close."""
        for w in self.writers:
            w.write(disconnect_notice())
            w.close()

    # --- listener_run --------------------------------------------------------

    async def connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # CancelledError: the test ended with the connection open
        with contextlib.suppress(
            ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError
        ):
            if self.refuse_peer:
                message = "Access Denied, go away.\n"
                writer.write(
                    f"Content-Type: text/rude-rejection\nContent-Length: {len(message)}\n\n"
                    f"{message}".encode()
                )
                return
            writer.write(b"Content-Type: auth/request\n\n")
            authed = False
            while True:
                packet = await read_packet(reader)
                self.commands.append(packet.command)
                if self.silent:
                    continue
                cmd = packet.command
                if cmd.lower().startswith("exit"):
                    self._reply(writer, "+OK bye")
                    break
                if not authed:
                    if cmd.startswith("auth "):
                        if cmd[5:] == self.password:
                            authed = True
                            self.logins += 1
                            self._reply(writer, "+OK accepted")
                            continue
                        self._reply(writer, "-ERR invalid")
                        break
                    self._reply(writer, "-ERR command not found")
                    continue
                if cmd.startswith("api "):
                    api_cmd, _, arg = cmd[4:].partition(" ")
                    output = await self._api(api_cmd, arg)
                    self.api_log.append((cmd, output))
                    body = output.encode()
                    writer.write(
                        f"Content-Type: api/response\nContent-Length: {len(body)}\n\n".encode()
                        + body
                    )
                elif cmd.startswith("event "):
                    self._reply(writer, self._subscribe(writer, cmd.split()[1:]))
                elif cmd.startswith("sendevent"):
                    self.events.append(packet)
                    self._reply(writer, f"+OK {uuidlib.uuid4()}")
                else:
                    self._reply(writer, "-ERR command not found")
            writer.write(disconnect_notice())
        self.subscribers.pop(writer, None)
        writer.close()

    def _subscribe(self, writer: asyncio.StreamWriter, words: list[str]) -> str:
        """``event <format> CUSTOM <subclass> ...`` (only JSON and CUSTOM are emulated)."""
        if not words or words[0] != "json":
            return "-ERR only event json is emulated here"
        if len(words) < 3 or words[1] != "CUSTOM":
            return "-ERR only CUSTOM subclasses are emulated here"
        self.subscribers.setdefault(writer, set()).update(words[2:])
        return "+OK event listener enabled json"

    def fire(self, channel: Channel, subclass: str, body: str = "") -> None:
        """A channel's CUSTOM event, as mod_event_socket sends it to a listener that
        asked for JSON: ``Content-Length`` and ``Content-Type: text/event-json``."""
        event = {
            "Event-Name": "CUSTOM",
            "Event-Subclass": subclass,
            "Unique-ID": channel.uuid,
            "Channel-Call-UUID": channel.uuid,
        }
        if body:
            event["_body"] = body
        data = json.dumps(event).encode()
        for writer, subclasses in self.subscribers.items():
            if subclass in subclasses and not writer.is_closing():
                head = f"Content-Length: {len(data)}\nContent-Type: text/event-json\n\n"
                writer.write(head.encode() + data)

    @staticmethod
    def _reply(writer: asyncio.StreamWriter, text: str) -> None:
        writer.write(f"Content-Type: command/reply\nReply-Text: {text}\n\n".encode())

    # --- the API commands ------------------------------------------------------

    async def api(self, line: str) -> str:
        """Run an API command as ``fs_cli -x`` would (no event socket client needed)."""
        api_cmd, _, arg = line.partition(" ")
        return await self._api(api_cmd, arg)

    async def _api(self, api_cmd: str, arg: str) -> str:
        handlers = {
            "uuid_setvar": self._uuid_setvar,
            "uuid_getvar": self._uuid_getvar,
            "uuid_transfer": self._uuid_transfer,
            "uuid_kill": self._uuid_kill,
            "originate": self._originate,
            "uuid_audio_fork": self._uuid_audio_fork,
        }
        handler = handlers.get(api_cmd)
        if handler is None:
            return f"-ERR {api_cmd} Command not found!\n"
        return await handler(arg.strip())

    async def _uuid_setvar(self, arg: str) -> str:
        argv = separate_string(arg, 3)
        if len(argv) not in (2, 3) or not argv[0]:
            return "-USAGE: <uuid> <var> [value]\n"
        channel = self.channels.get(argv[0])
        if channel is None:
            return "-ERR No such channel!\n"
        if len(argv) == 3:
            channel.variables[argv[1]] = argv[2]
        else:
            channel.variables.pop(argv[1], None)
        self.variable_states.append((channel.uuid, dict(channel.variables)))
        return "+OK\n"

    async def _uuid_getvar(self, arg: str) -> str:
        argv = separate_string(arg, 2)
        if len(argv) != 2:
            return "-USAGE: <uuid> <var>\n"
        channel = self.channels.get(argv[0])
        if channel is None:
            return "-ERR No such channel!\n"
        return channel.variables.get(argv[1], "_undef_")

    async def _uuid_transfer(self, arg: str) -> str:
        argv = separate_string(arg, 5)
        channel = self.channels.get(argv[0]) if argv else None
        if channel is None:
            return "-ERR No such channel!\n"
        channel.transferred_to = " ".join(argv[1:])
        return "+OK\n"

    async def _uuid_kill(self, arg: str) -> str:
        argv = separate_string(arg, 2)
        channel = self.channels.pop(argv[0], None) if argv else None
        if channel is None:
            return "-ERR No such channel!\n"
        channel.killed = True
        return "+OK\n"

    async def _originate(self, arg: str) -> str:
        """``originate {origination_uuid=U,...}<dialstring> <exten> XML <context>``:
        the callee answers at once and the test's ``on_answer`` plays its part."""
        argv = separate_string(arg, 4)
        if len(argv) < 2:
            return "-USAGE: <call url> <exten>|&<application_name>(<app_args>)\n"
        channel_vars: dict[str, str] = {}
        url = argv[0]
        if url.startswith("{") and "}" in url:
            block, url = url[1:].split("}", 1)
            for pair in block.split(","):
                name, _, value = pair.partition("=")
                channel_vars[name] = value
        channel = self.add_channel(channel_vars.get("origination_uuid"))
        channel.variables.update(channel_vars)
        channel.variables["dialstring"] = url
        channel.variables["destination"] = " ".join(argv[1:])
        if self.on_answer is not None:
            task = asyncio.create_task(self.on_answer(channel))
            self.background.add(task)
            task.add_done_callback(self.background.discard)
        return f"+OK {channel.uuid}\n"

    async def _uuid_audio_fork(self, arg: str) -> str:
        # mod_audio_fork.c: argv[7]; <uuid> start <url> <mix> <rate> [bugname] [metadata],
        # where a sixth word starting with { or [ is the metadata.
        argv = separate_string(arg, 7)
        if len(argv) < 2 or (argv[1] == "start" and len(argv) < 4):
            return "-USAGE: <uuid> [start | stop ] [wss-url | path] [mono | mixed | stereo]\n"
        channel = self.channels.get(argv[0])
        if channel is None:
            return "-ERR Operation Failed\n"
        if argv[1] != "start":
            return "+OK Success\n"
        mix, raw_rate = argv[3], (argv[4] if len(argv) > 4 else "8k")
        if mix not in ("mono", "mixed", "stereo"):
            return "-ERR Operation Failed\n"
        rate = {"16k": 16000, "8k": 8000}.get(raw_rate) or int(raw_rate)
        if rate % 8000 or self.callee_audio is None:
            return "-ERR Operation Failed\n"
        pcm = self.callee_audio(channel, rate)
        channels = 2 if mix == "stereo" else 1
        if channels == 2:  # the callee (read) on the left, silence written to it on the right
            pcm = interleave(pcm, bytes(len(pcm)))
        metadata = None
        if len(argv) > 6:
            metadata = argv[6]  # argv[5] is taken as the bug's name
        elif len(argv) > 5 and argv[5][:1] in ("{", "["):
            metadata = argv[5]
        task = asyncio.create_task(self._fork(channel, argv[2], metadata, pcm, rate, channels))
        self.background.add(task)
        task.add_done_callback(self.background.discard)
        return "+OK Success\n"

    async def _fork(
        self, channel: Channel, url: str, metadata: str | None, pcm: bytes, rate: int, ch: int
    ) -> None:
        """mod_audio_fork connects in the background (the API already said +OK): a
        failed connect is a ``connect_failed`` event, then the server's messages and
        its close become events as ``lws_glue.cpp`` fires them."""
        try:
            result = await fork_call(url, metadata, pcm, rate, ch)
        except OSError as exc:
            self.fire(channel, "mod_audio_fork::connect_failed", json.dumps({"reason": str(exc)}))
            return
        self.forks[channel.uuid] = result
        for subclass, body in result.events:
            self.fire(channel, subclass, body)


def disconnect_notice() -> bytes:
    message = DISCONNECT_TEXT.encode()
    return (
        f"Content-Type: text/disconnect-notice\nContent-Length: {len(message)}\n\n".encode()
        + message
    )


async def read_packet(reader: asyncio.StreamReader) -> Packet:
    """mod_event_socket's read_packet: line ends before a packet are dropped; the
    block ends at the second ``\\n`` with only ``\\r`` between; Content-Length
    is read from the header lines and that many body bytes follow."""
    buffer = bytearray()
    crcount = 0
    while True:
        byte = await reader.readexactly(1)
        if not buffer and byte in b"\r\n":
            continue  # "bah"
        buffer += byte
        if byte == b"\n":
            crcount += 1
        elif byte != b"\r":
            crcount = 0
        if crcount == 2:
            break
    lines = [ln for ln in bytes(buffer).replace(b"\r", b"\n").split(b"\n") if ln]
    command = lines[0].decode()
    headers = []
    body = b""
    for raw in lines[1:]:
        name, colon, value = raw.decode().partition(":")
        if not colon:
            continue
        value = value.lstrip(" ")
        headers.append((name, value))
        if name.lower() == "content-length" and int(value) > 0:
            body = await reader.readexactly(int(value))
    return Packet(command, headers, body)
