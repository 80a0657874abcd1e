"""The FreeSWITCH event socket link: set each call's variables, announce its result.

At decision time ``publish`` runs ``api uuid_setvar <uuid> AMDSTATUS ...`` (and
``AMDCAUSE``, ``AMDCONFIDENCE``, ``AMDTRANSCRIPT``) on the call's channel, then
fires a ``CUSTOM`` event of subclass ``amd::result`` for campaign software. For
a call that waits for the end of a machine's greeting, a second ``publish``
sets ``AMDMESSAGEEND`` and ``AMDBEEPMS`` and fires ``amd::message_end``.

Why our own client: the ESL libraries on PyPI do not fit an asyncio service.
greenswitch runs on gevent, whose monkey-patching does not mix with asyncio;
genesis caps Python below 3.13 and pulls in a web framework. The protocol the
bridge needs (authenticate, send commands, read replies in order) is small, so
the codec is ``bridge.protocols.esl`` and this module is asyncio streams around it.

One connection serves all calls. It reconnects on its own with exponential
backoff (0.5 s to 30 s); every command has a timeout, and a command that times
out drops the connection (a half-open socket never answers). A refused password
is a configuration error at start-up.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
from dataclasses import dataclass

from bridge.errors import ConfigError
from bridge.pbx.retry import publish_with_retries
from bridge.protocols import esl
from bridge.protocols.channel_vars import channel_variables, sanitize
from bridge.session.decision import Decision, Status
from bridge.session.message_end import MessageEnd

log = logging.getLogger(__name__)

RESULT_SUBCLASS = "amd::result"
MESSAGE_END_SUBCLASS = "amd::message_end"
BACKOFF_FIRST_S = 0.5
BACKOFF_MAX_S = 30.0
READ_BYTES = 65536


@dataclass(frozen=True)
class EslConfig:
    host: str
    port: int
    password: str
    command_timeout_s: float = 2.0  # one command, sent to reply
    publish_deadline_s: float = 3.0  # all retries of one call's result
    connect_timeout_s: float = 5.0

    def __repr__(self) -> str:  # the password stays out of logs and tracebacks
        return f"EslConfig(host={self.host!r}, port={self.port})"


class _Refused(Exception):
    """FreeSWITCH turned the password (or our address) down."""


class EslLink:
    """One event socket connection shared by all calls; reconnects on its own."""

    def __init__(self, config: EslConfig) -> None:
        self.config = config
        self.outcomes: collections.Counter[str] = collections.Counter()
        self._up = asyncio.Event()
        self._first_attempt = asyncio.Event()
        self._refused: str | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._replies: collections.deque[asyncio.Future[esl.EslMessage]] = collections.deque()
        self._runner: asyncio.Task[None] | None = None
        self._closing = False

    @property
    def up(self) -> bool:
        """Connected and authenticated."""
        return self._up.is_set()

    async def start(self, wait_s: float = 5.0) -> None:
        """Connect in the background; wait up to ``wait_s`` for the first attempt.

        A refused password is a configuration error and raises ``ConfigError``; an
        unreachable FreeSWITCH is not (it may start later): the link keeps trying.
        """
        self._runner = asyncio.create_task(self._run())
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._first_attempt.wait(), wait_s)
        if self._refused is not None:
            await self.aclose()
            raise ConfigError(
                f"FreeSWITCH event socket at {self.config.host}:{self.config.port} refused "
                f"the bridge: {self._refused} (check AMD_ESL_PASSWORD and the listener's ACL)"
            )
        if not self.up:
            log.warning(
                "FreeSWITCH event socket at %s:%d not reachable yet; retrying in the background",
                self.config.host,
                self.config.port,
            )

    async def aclose(self) -> None:
        self._closing = True
        if self._runner is not None:
            self._runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._runner
        self._drop("closing")

    # --- publishing -------------------------------------------------------

    async def publish(self, channel_uuid: str, result: Decision | MessageEnd) -> bool:
        """Set a decision's variables on the channel and fire ``amd::result``, or a
        greeting's end (``AMDMESSAGEEND``, ``AMDBEEPMS``) and fire ``amd::message_end``.

        Retries until ``publish_deadline_s`` while the link is down or slow; never
        raises. Returns whether the variables were set (for HANGUP: whether the
        event went out, since the channel is gone).
        """
        if not esl.is_channel_uuid(channel_uuid):
            self.outcomes["bad_uuid"] += 1
            log.error("call %r: not a FreeSWITCH channel uuid, nothing to set", channel_uuid[:64])
            return False
        if isinstance(result, MessageEnd):
            variables = result.variables()
            commands = [esl.uuid_setvar(channel_uuid, k, v) for k, v in variables.items()]
            commands.append(_message_end_event(channel_uuid, result))
        else:
            variables = channel_variables(result)
            commands = []
            if result.status is not Status.HANGUP:
                commands += [esl.uuid_setvar(channel_uuid, k, v) for k, v in variables.items()]
            commands.append(_result_event(channel_uuid, result, variables))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.config.publish_deadline_s
        return await publish_with_retries(
            lambda until: self._send_all(commands, until), deadline, self.outcomes, channel_uuid
        )

    async def _send_all(self, commands: list[bytes], deadline: float) -> str:
        loop = asyncio.get_running_loop()
        try:
            await asyncio.wait_for(self._up.wait(), max(deadline - loop.time(), 0.0))
        except asyncio.TimeoutError:
            self.outcomes["not_connected"] += 1
            return "not_connected"
        gone = False
        for raw in commands:
            timeout = min(self.config.command_timeout_s, max(deadline - loop.time(), 0.01))
            try:
                reply = await self._command(raw, timeout)
            except asyncio.TimeoutError:
                self.outcomes["command_timeout"] += 1
                self._drop("a command got no reply in time")
                return "timeout"
            except ConnectionError as exc:
                log.warning("FreeSWITCH event socket failed under a command: %s", exc)
                return "connection_error"
            if reply.ok:
                continue
            if "no such channel" in reply.reply.lower():
                gone = True  # the rest would fail alike; the event still goes out
                continue
            self.outcomes["command_refused"] += 1
            log.error("FreeSWITCH refused %s: %s", _verb(raw), sanitize(reply.reply))
            return "refused"
        return "channel_gone" if gone else "ok"

    async def _command(self, raw: bytes, timeout: float) -> esl.EslMessage:
        """Send one command and wait for its reply (replies come back in order)."""
        writer = self._writer
        if writer is None or writer.is_closing() or not self.up:
            raise ConnectionError("not connected")
        future: asyncio.Future[esl.EslMessage] = asyncio.get_running_loop().create_future()
        self._replies.append(future)
        writer.write(raw)
        return await asyncio.wait_for(asyncio.shield(future), timeout)

    # --- the connection ---------------------------------------------------

    async def _run(self) -> None:
        backoff = BACKOFF_FIRST_S
        while True:
            try:
                await self._session()
                backoff = BACKOFF_FIRST_S  # it was up: start over from the short delay
            except _Refused as exc:
                self._refused = str(exc)
                log.error("FreeSWITCH event socket refused the bridge: %s", exc)
            except (OSError, asyncio.TimeoutError, esl.EslError) as exc:
                self.outcomes["connect_failures"] += 1
                log.debug("FreeSWITCH event socket: %r", exc)
            finally:
                self._first_attempt.set()
                self._drop("connection ended")
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, BACKOFF_MAX_S)

    async def _session(self) -> None:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(self.config.host, self.config.port),
            self.config.connect_timeout_s,
        )
        self._writer = writer
        inbox = _Inbox(reader)
        await asyncio.wait_for(self._authenticate(inbox, writer), self.config.connect_timeout_s)
        log.info("FreeSWITCH event socket up at %s:%d", self.config.host, self.config.port)
        self._up.set()
        self._first_attempt.set()
        try:
            while True:
                self._on_message(await inbox.next())
        except (OSError, esl.EslError) as exc:
            # It was up until here, whoever cleared the flag since (FreeSWITCH's
            # disconnect notice drops the link first): a loss, not a failed connect.
            if not self._closing:
                self.outcomes["disconnects"] += 1
                log.warning("FreeSWITCH event socket connection lost (%s); reconnecting", exc)

    async def _authenticate(self, inbox: _Inbox, writer: asyncio.StreamWriter) -> None:
        greeting = await inbox.next()
        if greeting.content_type == esl.RUDE_REJECTION:
            raise _Refused(greeting.body.decode("utf-8", "replace").strip() or "access denied")
        if greeting.content_type != esl.AUTH_REQUEST:
            raise esl.EslError(f"expected auth/request, got {greeting.content_type!r}")
        writer.write(esl.auth(self.config.password))
        reply = await inbox.next()
        if not reply.ok:
            raise _Refused(reply.reply or "authentication failed")

    def _on_message(self, message: esl.EslMessage) -> None:
        if message.is_reply:
            while self._replies:
                future = self._replies.popleft()
                if not future.done():  # a timed-out command's reply is dropped with it
                    future.set_result(message)
                    return
            return
        if message.content_type == esl.DISCONNECT_NOTICE:
            self._drop("FreeSWITCH said goodbye")
        # events and log lines: the bridge subscribes to none

    def _drop(self, reason: str) -> None:
        self._up.clear()
        while self._replies:
            future = self._replies.popleft()
            if not future.done():
                future.set_exception(ConnectionError(reason))
        if self._writer is not None:
            self._writer.close()
            self._writer = None


class _Inbox:
    """Whole messages from one connection, one at a time."""

    def __init__(self, reader: asyncio.StreamReader) -> None:
        self._reader = reader
        self._parser = esl.Parser()
        self._messages: collections.deque[esl.EslMessage] = collections.deque()

    async def next(self) -> esl.EslMessage:
        while not self._messages:
            data = await self._reader.read(READ_BYTES)
            if not data:
                raise ConnectionError("closed by FreeSWITCH")
            self._messages.extend(self._parser.feed(data))
        return self._messages.popleft()


def _result_event(channel_uuid: str, decision: Decision, variables: dict[str, str]) -> bytes:
    headers = {
        "AMD-Channel-UUID": channel_uuid,
        "AMD-Status": variables["AMDSTATUS"],
        "AMD-Cause": variables["AMDCAUSE"],
        "AMD-Confidence": variables["AMDCONFIDENCE"],
        "AMD-Audio-Ms": str(round(decision.decision_audio_s * 1000)),
    }
    body = json.dumps({"uuid": channel_uuid, **decision.summary()}).encode()
    return esl.sendevent(RESULT_SUBCLASS, headers, body)


def _message_end_event(channel_uuid: str, end: MessageEnd) -> bytes:
    variables = end.variables()
    headers = {
        "AMD-Channel-UUID": channel_uuid,
        "AMD-Message-End": variables["AMDMESSAGEEND"],
        "AMD-Beep-Ms": variables["AMDBEEPMS"],
        "AMD-Audio-Ms": str(round(end.audio_s * 1000)),
    }
    body = json.dumps({"uuid": channel_uuid, **end.summary()}).encode()
    return esl.sendevent(MESSAGE_END_SUBCLASS, headers, body)


def _verb(raw: bytes) -> str:
    return raw.split(b"\n", 1)[0][:40].decode("utf-8", "replace")
