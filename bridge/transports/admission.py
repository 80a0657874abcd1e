"""The calls open across all transports: a bound on how many, and how the service
ends them when it stops.

Every transport asks ``admit`` when a call starts. Past ``max_calls`` the call
is refused at once (the transport answers NOTSURE with cause OVERLOAD), never
queued: a call held waiting would cost the dialer more than an unsure answer.
``stop_all`` asks every open call to end now (NOTSURE/SHUTDOWN) when the
service's drain deadline has passed.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable

from bridge.session import Cause, Decision, Status

Stop = Callable[[], None]
OVERLOAD = Decision(Status.NOTSURE, Cause.OVERLOAD, 0.0)


class CallRegistry:
    def __init__(self, max_calls: int | None = None) -> None:
        self.max_calls = max_calls
        self._stops: dict[int, Stop] = {}
        self._ids = itertools.count()
        self._idle = asyncio.Event()
        self._idle.set()

    @property
    def active(self) -> int:
        return len(self._stops)

    def admit(self, stop: Stop) -> int | None:
        """A token for the call, or None when the service is full."""
        if self.max_calls is not None and len(self._stops) >= self.max_calls:
            return None
        token = next(self._ids)
        self._stops[token] = stop
        self._idle.clear()
        return token

    def leave(self, token: int) -> None:
        self._stops.pop(token, None)
        if not self._stops:
            self._idle.set()

    def stop_all(self) -> int:
        """Ask every open call to end now; returns how many were asked."""
        stops = list(self._stops.values())
        for stop in stops:
            stop()
        return len(stops)

    async def wait_idle(self, timeout_s: float) -> bool:
        """Wait until no call is open; False when ``timeout_s`` passed first."""
        try:
            await asyncio.wait_for(self._idle.wait(), timeout_s)
        except asyncio.TimeoutError:
            return False
        return True
