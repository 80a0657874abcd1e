"""``amd-bridge serve``: the engine behind the service's listeners, on one event loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass
from http import HTTPStatus
from urllib.parse import urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.http11 import Request, Response

from bridge.engine import Detector, build_batching_engine
from bridge.pbx.ami import AmiLink
from bridge.protocols import amd_ws
from bridge.settings import Settings
from bridge.transports.audiosocket import AudioSocketHandler, Publish
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


@dataclass
class Service:
    """What ``running_service`` started; ports are the bound ones (useful with port 0)."""

    http: Server
    audiosocket: asyncio.Server
    audiosocket_handler: AudioSocketHandler
    ami: AmiLink | None

    @property
    def http_port(self) -> int:
        return int(self.http.sockets[0].getsockname()[1])

    @property
    def audiosocket_port(self) -> int:
        return int(self.audiosocket.sockets[0].getsockname()[1])


@contextlib.asynccontextmanager
async def running_service(settings: Settings, detector: Detector) -> AsyncIterator[Service]:
    """Start the engine, the PBX link and the listeners; on exit stop and drain."""
    engine = build_batching_engine(settings, detector)
    ami: AmiLink | None = None
    async with contextlib.AsyncExitStack() as stack:
        stack.push_async_callback(engine.aclose)
        ami_config = settings.ami
        publish: Publish | None = None
        if ami_config is not None:
            ami = AmiLink(ami_config)
            await ami.start()
            stack.push_async_callback(ami.aclose)
            publish = ami.publish
        ws_handler = AmdWebSocketHandler(engine, settings.policy, settings.analysis_timeout_s)
        http: Server = await serve(
            ws_handler.handle,
            settings.http_host,
            settings.http_port,
            process_request=_http_routes,
            max_size=MAX_MESSAGE_BYTES,
        )
        stack.push_async_callback(_close_server, http)
        as_handler = AudioSocketHandler(
            engine.analyze,
            settings.policy,
            settings.analysis_timeout_s,
            publish,
        )
        audiosocket = await asyncio.start_server(
            as_handler.handle, settings.audiosocket_host, settings.audiosocket_port
        )
        stack.push_async_callback(_close_server, audiosocket)
        yield Service(http, audiosocket, as_handler, ami)


async def _close_server(server: Server | asyncio.Server) -> None:
    """Stop accepting and wait for the open connections' handlers to end."""
    server.close()
    await server.wait_closed()


async def serve_forever(settings: Settings, detector: Detector) -> None:
    """Run until SIGINT or SIGTERM."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with running_service(settings, detector) as service:
        log.info(
            "listening on ws://%s:%d%s, http://%s:%d/healthz and AudioSocket %s:%d",
            settings.http_host,
            service.http_port,
            amd_ws.PATH,
            settings.http_host,
            service.http_port,
            settings.audiosocket_host,
            service.audiosocket_port,
        )
        if service.ami is None:
            log.info("no PBX link configured: results go back on the WebSocket and to the log")
        await stop.wait()
        log.info("shutting down")
