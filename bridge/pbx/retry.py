"""The retry rule both PBX links apply to one call's result."""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)

# Outcomes of one attempt that end the retries.
DONE = ("ok", "channel_gone")


async def publish_with_retries(
    attempt: Callable[[float], Awaitable[str]],
    deadline: float,
    outcomes: collections.Counter[str],
    call: str,
) -> bool:
    """Run ``attempt(deadline)`` until it says ``ok`` or ``channel_gone``, backing off
    from 0.1 s to 1 s between tries, and give up at ``deadline`` (loop time).
    Counts the final outcome; returns whether the variables were set."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    delay = 0.1
    while True:
        outcome = await attempt(deadline)
        if outcome in DONE:
            outcomes[outcome] += 1
            if outcome == "channel_gone":
                log.info("call %s: channel already gone", call)
            return outcome == "ok"
        if loop.time() + delay >= deadline:
            outcomes["publish_failed"] += 1
            log.error(
                "call %s: could not set its variables within %.1f s (%s)",
                call,
                deadline - started,
                outcome,
            )
            return False
        outcomes["publish_retry"] += 1
        await asyncio.sleep(delay)
        delay = min(delay * 2, 1.0)
