"""FreeSWITCH's event socket (ESL) wire format, as pure code (no I/O).

Written from FreeSWITCH's ``mod_event_socket.c`` and ``switch_utils.c``:

- The server speaks first, ``Content-Type: auth/request`` then an empty line.
- Every message from the server is a block of ``Name: value`` lines ended by an
  empty line; when the block has ``Content-Length``, that many bytes of body
  follow (``api/response`` carries the command's output there, events their text).
- A client command is one line, optional ``Name: value`` lines, an empty line,
  and a body when it gives ``Content-Length`` (``sendevent``). The server ends a
  line at ``\\r`` or ``\\n``, so a value holding either would start another header
  or another command: every line sent is checked here.
- ``api`` replies with ``api/response`` in the body (``+OK``/``-ERR ...``); every
  other command with ``command/reply`` and a ``Reply-Text`` header.
- ``uuid_setvar <uuid> <name> <value>`` splits its argument with
  ``switch_separate_string``: single quotes group and vanish, a backslash escapes
  the next character, spaces at either end go. ``setvar_argument`` quotes a value
  so that it arrives exactly as given.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from bridge.errors import ProtocolError

# Largest header block and body accepted from the server. FreeSWITCH's own
# replies are a few hundred bytes; events are a few KB.
MAX_HEADER_BYTES = 64 * 1024
MAX_BODY_BYTES = 4 * 1024 * 1024

AUTH_REQUEST = "auth/request"
COMMAND_REPLY = "command/reply"
API_RESPONSE = "api/response"
DISCONNECT_NOTICE = "text/disconnect-notice"
RUDE_REJECTION = "text/rude-rejection"  # the listener's ACL refused us

_CHANNEL_UUID = re.compile(r"^[A-Za-z0-9-]{1,64}$")
_HEADER_NAME = re.compile(r"^[A-Za-z0-9_-]{1,128}$")


class EslError(ProtocolError):
    """Bytes from the server that are not ESL; ``messages`` came before them intact."""

    def __init__(self, message: str, messages: list[EslMessage] | None = None) -> None:
        super().__init__(message)
        self.messages = messages or []


@dataclass(frozen=True)
class EslMessage:
    headers: tuple[tuple[str, str], ...]
    body: bytes = b""

    def get(self, name: str, default: str = "") -> str:
        """A header's value; names compare without regard to case, as FreeSWITCH's do."""
        wanted = name.lower()
        for key, value in self.headers:
            if key.lower() == wanted:
                return value
        return default

    @property
    def content_type(self) -> str:
        return self.get("Content-Type")

    @property
    def is_reply(self) -> bool:
        """A reply to a command (as opposed to an event, a log line or a notice)."""
        return self.content_type in (COMMAND_REPLY, API_RESPONSE)

    @property
    def reply(self) -> str:
        """What the command answered: ``Reply-Text``, or the api output's first line."""
        if self.content_type == API_RESPONSE:
            text = self.body.decode("utf-8", "replace")
        else:
            text = self.get("Reply-Text")
        return text.strip().splitlines()[0] if text.strip() else ""

    @property
    def ok(self) -> bool:
        return self.reply.startswith("+OK")


class Parser:
    """Incremental: ``feed`` bytes as they arrive, get whole messages back."""

    def __init__(
        self, max_header_bytes: int = MAX_HEADER_BYTES, max_body_bytes: int = MAX_BODY_BYTES
    ) -> None:
        self.max_header_bytes = max_header_bytes
        self.max_body_bytes = max_body_bytes
        self._buffer = bytearray()
        self._headers: tuple[tuple[str, str], ...] | None = None
        self._body_length = 0

    def feed(self, data: bytes) -> list[EslMessage]:
        self._buffer += data
        messages: list[EslMessage] = []
        try:
            while (message := self._next()) is not None:
                messages.append(message)
        except EslError as exc:
            exc.messages = messages
            raise
        return messages

    def _next(self) -> EslMessage | None:
        if self._headers is None:
            self._skip_blank_lines()
            end = _end_of_headers(self._buffer)
            if end is None:
                if len(self._buffer) > self.max_header_bytes:
                    raise EslError(f"header block longer than {self.max_header_bytes} bytes")
                return None
            block, stop = end
            if block > self.max_header_bytes:
                raise EslError(f"header block longer than {self.max_header_bytes} bytes")
            self._headers = _parse_headers(bytes(self._buffer[:block]))
            del self._buffer[:stop]
            self._body_length = self._content_length(self._headers)
        if len(self._buffer) < self._body_length:
            return None
        body = bytes(self._buffer[: self._body_length])
        del self._buffer[: self._body_length]
        message = EslMessage(self._headers, body)
        self._headers = None
        return message

    def _skip_blank_lines(self) -> None:
        # mod_event_socket drops line ends met before a message starts.
        strip = 0
        while strip < len(self._buffer) and self._buffer[strip] in b"\r\n":
            strip += 1
        del self._buffer[:strip]

    def _content_length(self, headers: tuple[tuple[str, str], ...]) -> int:
        raw = EslMessage(headers).get("Content-Length", "0").strip()
        if not raw.isascii() or not raw.isdigit():
            raise EslError(f"Content-Length {raw[:20]!r} is not a number")
        length = int(raw)
        if length > self.max_body_bytes:
            raise EslError(f"body of {length} bytes exceeds the limit of {self.max_body_bytes}")
        return length


def _end_of_headers(buffer: bytearray) -> tuple[int, int] | None:
    """Where the header block ends: two ``\\n`` with only ``\\r`` between them
    (mod_event_socket's rule). Returns (block length, offset after it)."""
    newlines = 0
    for i, byte in enumerate(buffer):
        if byte == 0x0A:
            newlines += 1
            if newlines == 2:
                return i, i + 1
        elif byte != 0x0D:
            newlines = 0
    return None


def _parse_headers(block: bytes) -> tuple[tuple[str, str], ...]:
    headers = []
    for raw_line in block.replace(b"\r", b"\n").split(b"\n"):
        if not raw_line:
            continue
        line = raw_line.decode("utf-8", "replace")
        name, colon, value = line.partition(":")
        if not colon or not name.strip():
            raise EslError(f"header line without a name: {line[:60]!r}")
        headers.append((name.strip(), value.lstrip(" ")))
    if not headers:
        raise EslError("empty header block")
    return tuple(headers)


# --- what the client sends ---------------------------------------------------


def _one_line(text: str, what: str) -> str:
    if "\r" in text or "\n" in text or "\0" in text:
        raise ValueError(f"{what} must be one line: {text[:60]!r}")
    return text


def command(line: str, headers: Mapping[str, str] | None = None, body: bytes = b"") -> bytes:
    """One command: its line, header lines, an empty line, then the body if any."""
    parts = [_one_line(line, "an ESL command")]
    for name, value in (headers or {}).items():
        if not _HEADER_NAME.match(name) or name.lower() == "content-length":
            raise ValueError(f"bad ESL header name {name!r}")
        parts.append(f"{name}: {_one_line(value, 'an ESL header value')}")
    if body:
        parts.append(f"Content-Length: {len(body)}")
    return ("\n".join(parts) + "\n\n").encode("utf-8") + body


def auth(password: str) -> bytes:
    return command(f"auth {password}")


def api(line: str) -> bytes:
    return command(f"api {line}")


def is_channel_uuid(text: str) -> bool:
    """A channel's Unique-ID as FreeSWITCH makes them (letters, digits, dashes)."""
    return bool(_CHANNEL_UUID.match(text))


def setvar_argument(value: str) -> str:
    """``value`` written so that ``switch_separate_string`` gives it back unchanged:
    backslashes and single quotes escaped, quoted when empty or space-edged."""
    _one_line(value, "a channel variable's value")
    escaped = value.replace("\\", "\\\\").replace("'", "\\'")
    # Quotes keep spaces at either end (and make an empty value an argument).
    return f"'{escaped}'" if value == "" or value != value.strip(" ") else escaped


def uuid_setvar(channel_uuid: str, name: str, value: str) -> bytes:
    if not is_channel_uuid(channel_uuid):
        raise ValueError(f"not a channel uuid: {channel_uuid[:60]!r}")
    if not _HEADER_NAME.match(name):
        raise ValueError(f"bad channel variable name {name!r}")
    return api(f"uuid_setvar {channel_uuid} {name} {setvar_argument(value)}")


def sendevent(subclass: str, headers: Mapping[str, str], body: bytes = b"") -> bytes:
    """A CUSTOM event with ``Event-Subclass: subclass`` for every ESL listener.

    The headers must not include ``Unique-ID``: given that, mod_event_socket hands
    the event to the channel's own queue instead of firing it for listeners.
    """
    if any(name.lower() == "unique-id" for name in headers):
        raise ValueError("a Unique-ID header would route the event to the channel, not out")
    return command("sendevent CUSTOM", {"Event-Subclass": subclass, **headers}, body)
