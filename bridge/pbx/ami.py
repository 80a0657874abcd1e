"""The Asterisk Manager Interface link: learn each call's channel, set its variables.

The dialplan subroutine raises ``UserEvent(AMDStart,AmdId: <id>)`` just before
``AudioSocket(<id>,...)``; Asterisk adds the channel's name to that event, so
the link keeps a bounded map from id to channel and never has to scan channels.
At decision time ``publish`` sets ``AMDSTATUS``, ``AMDCAUSE``, ``AMDCONFIDENCE``
and ``AMDTRANSCRIPT`` on the channel with ``Setvar`` and raises
``UserEvent(AMDResult, ...)`` for campaign software. A call whose AMDStart event
said ``MessageEnd: yes`` waits for the end of a machine's greeting; ``publish``
then sets ``AMDMESSAGEEND`` and ``AMDBEEPMS`` and raises ``AMDMessageEnd``.

Built on panoramisk's ``Manager``, adjusted where a long-running service needs
more: reconnection backs off exponentially instead of retrying every 2 s, a
refused login is reported instead of ignored, every action has a timeout, and a
timed-out action drops the connection (a half-open socket never answers).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from dataclasses import dataclass
from typing import Any

import panoramisk

from bridge.errors import ConfigError, ProtocolError
from bridge.pbx.retry import publish_with_retries
from bridge.protocols.channel_vars import channel_variables, sanitize
from bridge.protocols.flags import parse_flag
from bridge.session.decision import Decision, Status
from bridge.session.message_end import MessageEnd

log = logging.getLogger(__name__)

START_EVENT = "AMDStart"
RESULT_EVENT = "AMDResult"
MESSAGE_END_EVENT = "AMDMessageEnd"
ID_HEADER = "AmdId"
MESSAGE_END_HEADER = "MessageEnd"
MAX_TRACKED_CALLS = 10_000  # ids seen in AMDStart events and not yet published
BACKOFF_FIRST_S = 0.5
BACKOFF_MAX_S = 30.0


@dataclass(frozen=True)
class AmiConfig:
    host: str
    port: int
    username: str
    secret: str
    action_timeout_s: float = 2.0  # one AMI action, sent to response
    publish_deadline_s: float = 3.0  # all retries of one call's result

    def __repr__(self) -> str:  # the secret stays out of logs and tracebacks
        return f"AmiConfig(host={self.host!r}, port={self.port}, username={self.username!r})"


class AmiLink:
    """One AMI connection shared by all calls; reconnects on its own."""

    def __init__(self, config: AmiConfig) -> None:
        self.config = config
        self.outcomes: collections.Counter[str] = collections.Counter()
        self._channels: collections.OrderedDict[str, str] = collections.OrderedDict()
        # Per call id, from AMDStart: whether it waits for the greeting's end ...
        self._message_end: collections.OrderedDict[str, bool] = collections.OrderedDict()
        # ... and, once its decision is published, its channel for that second result.
        self._published: collections.OrderedDict[str, str] = collections.OrderedDict()
        self._waiters: dict[str, asyncio.Future[str]] = {}
        self._up = asyncio.Event()
        self._login_refused: str | None = None
        self._first_attempt = asyncio.Event()
        self._manager = _Manager(self, config)

    @property
    def up(self) -> bool:
        """Connected and logged in."""
        return self._up.is_set()

    async def start(self, wait_s: float = 5.0) -> None:
        """Connect in the background; wait up to ``wait_s`` for the first login.

        A refused login is a configuration error and raises ``ConfigError``; an
        unreachable Asterisk is not (it may start later): the link keeps trying.
        """
        self._manager.connect()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._first_attempt.wait(), wait_s)
        if self._login_refused is not None:
            await self.aclose()
            raise ConfigError(
                f"AMI login to {self.config.host}:{self.config.port} as "
                f"{self.config.username!r} refused: {self._login_refused}"
            )
        if not self.up:
            log.warning(
                "AMI at %s:%d not reachable yet; retrying in the background",
                self.config.host,
                self.config.port,
            )

    async def aclose(self) -> None:
        self._manager.shut()  # calls still waiting for a channel give up at their deadline

    # --- channel map ------------------------------------------------------

    def on_user_event(self, event: Any) -> None:
        if event.get("UserEvent") != START_EVENT:
            return
        amd_id = str(event.get(ID_HEADER, "")).strip().lower()
        channel = str(event.get("Channel", "")).strip()
        if not amd_id or not channel:
            log.warning("AMI %s event without %s or Channel: ignored", START_EVENT, ID_HEADER)
            self.outcomes["bad_start_event"] += 1
            return
        self._channels[amd_id] = channel
        self._channels.move_to_end(amd_id)
        while len(self._channels) > MAX_TRACKED_CALLS:
            self._channels.popitem(last=False)
            self.outcomes["start_event_evicted"] += 1
        wanted = str(event.get(MESSAGE_END_HEADER, "")).strip()
        if wanted:
            try:
                _remember(self._message_end, amd_id, parse_flag(wanted, MESSAGE_END_HEADER))
            except ProtocolError as exc:
                log.warning("AMI %s event for %s: %s; ignored", START_EVENT, amd_id, exc)
                self.outcomes["bad_start_event"] += 1
        waiter = self._waiters.pop(amd_id, None)
        if waiter is not None and not waiter.done():
            waiter.set_result(channel)

    async def _channel_for(self, amd_id: str, timeout_s: float) -> str | None:
        """The channel the dialplan announced for ``amd_id``, waiting if the event is late."""
        channel = self._channels.pop(amd_id, None)
        if channel is not None:
            return channel
        waiter = self._waiters.setdefault(amd_id, asyncio.get_running_loop().create_future())
        try:
            return await asyncio.wait_for(asyncio.shield(waiter), max(timeout_s, 0.0))
        except asyncio.TimeoutError:
            return None
        finally:
            self._waiters.pop(amd_id, None)
            self._channels.pop(amd_id, None)

    def message_end_requested(self, amd_id: str) -> bool | None:
        """What the call's AMDStart event said about waiting for the greeting's end."""
        return self._message_end.get(amd_id.lower())

    # --- publishing -------------------------------------------------------

    async def publish(self, amd_id: str, result: Decision | MessageEnd) -> bool:
        """Set a call's result on its channel; see ``publish_decision`` and
        ``publish_message_end``."""
        if isinstance(result, MessageEnd):
            return await self.publish_message_end(amd_id, result)
        return await self.publish_decision(amd_id, result)

    async def publish_message_end(self, amd_id: str, end: MessageEnd) -> bool:
        """Set ``AMDMESSAGEEND`` and ``AMDBEEPMS`` and raise ``AMDMessageEnd``, on the
        channel the call's decision went to."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.config.publish_deadline_s
        amd_id = amd_id.lower()
        self._message_end.pop(amd_id, None)
        channel = self._published.pop(amd_id, None)
        if channel is None:
            log.warning("call %s: its decision never reached a channel; no message end", amd_id)
            self.outcomes["channel_unknown"] += 1
            return False
        variables = end.variables()
        actions = [
            {"Action": "Setvar", "Channel": channel, "Variable": name, "Value": value}
            for name, value in variables.items()
        ]
        actions.append(
            {
                "Action": "UserEvent",
                "UserEvent": MESSAGE_END_EVENT,
                ID_HEADER: amd_id,
                "Channel": channel,
                MESSAGE_END_HEADER: variables["AMDMESSAGEEND"],
                "BeepMs": variables["AMDBEEPMS"],
                "AudioMs": str(round(end.audio_s * 1000)),
            }
        )
        return await publish_with_retries(
            lambda until: self._send_all(actions, until), deadline, self.outcomes, amd_id
        )

    async def publish_decision(self, amd_id: str, decision: Decision) -> bool:
        """Set the decision's variables on the call's channel and raise the result event.

        Retries until ``publish_deadline_s`` while AMI is down or slow; never raises.
        Returns whether the variables were set (for HANGUP: whether the event went out,
        since the channel is gone).
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.config.publish_deadline_s
        amd_id = amd_id.lower()
        channel = await self._channel_for(amd_id, deadline - loop.time())
        if channel is None:
            if self.up:
                log.warning(
                    "call %s: no %s event seen, cannot set its variables", amd_id, START_EVENT
                )
                self.outcomes["channel_unknown"] += 1
            else:
                log.error("call %s: AMI is down, its variables cannot be set", amd_id)
                self.outcomes["not_connected"] += 1
            return False
        variables = channel_variables(decision)
        actions: list[dict[str, str]] = []
        if decision.status is not Status.HANGUP:
            actions += [
                {"Action": "Setvar", "Channel": channel, "Variable": name, "Value": value}
                for name, value in variables.items()
            ]
        actions.append(_result_event(amd_id, channel, decision, variables))
        if decision.status is Status.MACHINE:  # a greeting's end may follow
            _remember(self._published, amd_id, channel)
        return await publish_with_retries(
            lambda until: self._send_all(actions, until), deadline, self.outcomes, amd_id
        )

    async def _send_all(self, actions: list[dict[str, str]], deadline: float) -> str:
        loop = asyncio.get_running_loop()
        try:
            await asyncio.wait_for(self._up.wait(), max(deadline - loop.time(), 0.0))
        except asyncio.TimeoutError:
            return "not_connected"
        futures = [self._manager.send_action(dict(a)) for a in actions]
        timeout = min(self.config.action_timeout_s, max(deadline - loop.time(), 0.01))
        try:
            responses = await asyncio.wait_for(asyncio.gather(*futures), timeout)
        except asyncio.TimeoutError:
            self.outcomes["action_timeout"] += 1
            self._manager.drop_connection("an action got no response in time")
            return "timeout"
        except Exception as exc:  # the connection broke under the actions
            log.warning("AMI actions failed: %r", exc)
            return "connection_error"
        for action, response in zip(actions, responses, strict=True):
            if getattr(response, "success", False):
                continue
            message = str(getattr(response, "message", "") or response)
            if "no such channel" in message.lower():
                return "channel_gone"
            self.outcomes["action_refused"] += 1
            log.error("AMI %s refused: %s", action["Action"], sanitize(message))
            return "refused"
        return "ok"

    # --- called by _Manager -----------------------------------------------

    def on_login(self, accepted: bool, message: str) -> None:
        if accepted:
            log.info("AMI logged in to %s:%d", self.config.host, self.config.port)
            self._up.set()
        else:
            self._login_refused = message or "authentication failed"
            log.error("AMI login refused: %s", self._login_refused)
        self._first_attempt.set()

    def on_down(self, reason: str) -> None:
        if self._up.is_set():
            log.warning("AMI connection lost (%s); reconnecting", reason)
            self.outcomes["disconnects"] += 1
        self._up.clear()

    def on_connect_failed(self, error: str) -> None:
        self.outcomes["connect_failures"] += 1
        self._first_attempt.set()
        log.debug("AMI connect failed: %s", error)


def _remember(table: collections.OrderedDict[str, Any], key: str, value: Any) -> None:
    """Keep ``key`` in a bounded table, dropping the oldest entries past the bound."""
    table[key] = value
    table.move_to_end(key)
    while len(table) > MAX_TRACKED_CALLS:
        table.popitem(last=False)


def _result_event(
    amd_id: str, channel: str, decision: Decision, variables: dict[str, str]
) -> dict[str, str]:
    return {
        "Action": "UserEvent",
        "UserEvent": RESULT_EVENT,
        ID_HEADER: amd_id,
        "Channel": channel,
        "Status": variables["AMDSTATUS"],
        "Cause": variables["AMDCAUSE"],
        "Confidence": variables["AMDCONFIDENCE"],
        "Transcript": variables["AMDTRANSCRIPT"],
        "AudioMs": str(round(decision.decision_audio_s * 1000)),
    }


class _Manager(panoramisk.Manager):  # type: ignore[misc]
    """panoramisk's Manager with backoff, login reporting and a clean shutdown."""

    loop: asyncio.AbstractEventLoop
    pinger: asyncio.TimerHandle | None
    protocol: Any

    def __init__(self, link: AmiLink, config: AmiConfig) -> None:
        self._link = link
        self._backoff = BACKOFF_FIRST_S
        self._closing = False
        self._retry: asyncio.TimerHandle | None = None
        super().__init__(
            host=config.host,
            port=config.port,
            username=config.username,
            secret=config.secret,
            events="user",  # only UserEvent and its class: what the bridge listens to
            ping_delay=10,
            ping_interval=10,
            forgetable_actions=("ping", "login", "setvar", "userevent"),
            log=logging.getLogger(__name__ + ".panoramisk"),
        )
        self.register_event("UserEvent", lambda _manager, event: link.on_user_event(event))

    # panoramisk reads self.reconnect_timeout before each retry: make it back off.
    @property
    def reconnect_timeout(self) -> float:
        delay = self._backoff
        self._backoff = min(self._backoff * 2, BACKOFF_MAX_S)
        return delay

    @reconnect_timeout.setter
    def reconnect_timeout(self, _value: float) -> None:
        pass

    def connect(self, *args: Any, **kwargs: Any) -> Any:
        if self._closing:
            return None
        if self.loop is None:
            self.loop = asyncio.get_running_loop()
        task = self.loop.create_task(
            self.loop.create_connection(
                self.config["protocol_factory"], self.config["host"], self.config["port"]
            )
        )
        task.add_done_callback(self.connection_made)
        return task

    def connection_made(self, f: asyncio.Future[Any]) -> None:
        if self._closing:
            if not f.cancelled() and f.exception() is None:
                f.result()[0].close()
            return
        if f.cancelled():
            return
        error = f.exception()
        if error is not None:
            self._link.on_connect_failed(repr(error))
            self._retry = self.loop.call_later(self.reconnect_timeout, self.connect)
            return
        super().connection_made(f)

    def login(self, future: asyncio.Future[Any]) -> bool:
        accepted = bool(super().login(future))
        if accepted:
            self._backoff = BACKOFF_FIRST_S
        self._link.on_login(accepted, str(getattr(future.result(), "message", "")))
        return accepted

    def connection_lost(self, exc: object) -> None:
        self._link.on_down(repr(exc) if exc else "closed")
        if self._closing:
            return
        if self.pinger:
            self.pinger.cancel()
            self.pinger = None
        self._retry = self.loop.call_later(self.reconnect_timeout, self.connect)

    def send_action(self, action: dict[str, str]) -> asyncio.Future[Any]:
        if self.protocol is None or getattr(self.protocol, "closed", True):
            future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            future.set_exception(ConnectionError("AMI not connected"))
            return future
        return super().send_action(action)  # type: ignore[no-any-return]

    def drop_connection(self, reason: str) -> None:
        """Close the socket so the usual reconnection starts (half-open links)."""
        log.warning("AMI: %s; reconnecting", reason)
        if self.protocol is not None and not getattr(self.protocol, "closed", True):
            self.protocol.transport.close()

    def shut(self) -> None:
        self._closing = True
        if self._retry is not None:
            self._retry.cancel()
        self.close()
