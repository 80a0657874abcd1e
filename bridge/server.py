"""``amd-bridge serve``: the engine behind the service's listeners, on one event loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator
from http import HTTPStatus
from urllib.parse import urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.http11 import Request, Response

from bridge.engine import Detector, build_batching_engine
from bridge.protocols import amd_ws
from bridge.settings import Settings
from bridge.transports.ws_amd import AmdWebSocketHandler

log = logging.getLogger(__name__)

# Largest WebSocket message accepted: 1 s of 48 kHz PCM16 is 96 KB; an audio
# frame is normally 20-100 ms. Larger messages close the connection (1009).
MAX_MESSAGE_BYTES = 128 * 1024


def _http_routes(connection: ServerConnection, request: Request) -> Response | None:
    """Plain HTTP answers; ``None`` lets the WebSocket handshake go on."""
    path = urlsplit(request.path).path
    if path == "/healthz":
        return connection.respond(HTTPStatus.OK, "ok\n")
    if path != amd_ws.PATH:
        return connection.respond(HTTPStatus.NOT_FOUND, "not found\n")
    return None


@contextlib.asynccontextmanager
async def running_service(settings: Settings, detector: Detector) -> AsyncIterator[Server]:
    """Start the listeners; yield the websockets ``Server``; on exit stop and drain."""
    engine = build_batching_engine(settings, detector)
    handler = AmdWebSocketHandler(engine, settings.policy, settings.analysis_timeout_s)
    server: Server = await serve(
        handler.handle,
        settings.http_host,
        settings.http_port,
        process_request=_http_routes,
        max_size=MAX_MESSAGE_BYTES,
    )
    try:
        yield server
    finally:
        server.close()
        await server.wait_closed()
        await engine.aclose()


async def serve_forever(settings: Settings, detector: Detector) -> None:
    """Run until SIGINT or SIGTERM."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with running_service(settings, detector) as server:
        for sock in server.sockets:
            host, port = sock.getsockname()[:2]
            log.info(
                "listening on ws://%s:%d%s and http://%s:%d/healthz",
                host,
                port,
                amd_ws.PATH,
                host,
                port,
            )
        log.info("no PBX link configured: results go back on the WebSocket only")
        await stop.wait()
        log.info("shutting down")
