"""Closing a WebSocket the service refuses, promptly.

A client may stream audio before it reads the refusal. Unread messages fill the
connection's queue, reading from the socket then pauses, and the client's closing
frame waits behind them: ``close()`` would sit out its whole timeout (10 s). So
what is pending is read and dropped while the close goes out.
"""

from __future__ import annotations

import asyncio
import contextlib

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed


async def close_discarding(ws: ServerConnection, code: int, reason: str) -> None:
    """Close with ``code`` and ``reason`` (cut to what a close frame holds), dropping
    whatever the client still sends until the close completes."""
    closing = asyncio.ensure_future(ws.close(code, reason[:120]))
    with contextlib.suppress(ConnectionClosed):
        while not closing.done():
            await ws.recv()
    await closing
