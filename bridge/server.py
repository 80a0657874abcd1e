"""``amd-bridge serve``: the engine behind the service's listeners, on one event loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from urllib.parse import urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.http11 import Request, Response
from websockets.typing import Subprotocol

from bridge.engine import Detector, build_batching_engine
from bridge.pbx.ami import AmiLink
from bridge.pbx.esl import EslLink
from bridge.protocols import amd_ws, audio_fork
from bridge.settings import Settings
from bridge.transports.audio_fork import AudioForkHandler
from bridge.transports.audiosocket import AudioSocketHandler
from bridge.transports.live_call import Publish, not_said
from bridge.transports.ws_amd import AmdWebSocketHandler

log = logging.getLogger(__name__)

# Largest WebSocket message accepted. An audio frame is normally 20-100 ms, but
# mod_audio_fork sends whatever piled up while its socket was busy, up to its
# buffer (MOD_AUDIO_FORK_BUFFER_SECS, at most 5 s: 320 KB of 16 kHz stereo).
# Larger messages close the connection (1009).
MAX_MESSAGE_BYTES = 512 * 1024
WEBSOCKET_PATHS = (amd_ws.PATH, audio_fork.PATH)


def _http_routes(connection: ServerConnection, request: Request) -> Response | None:
    """Plain HTTP answers; ``None`` lets the WebSocket handshake go on."""
    path = urlsplit(request.path).path
    if path == "/healthz":
        return connection.respond(HTTPStatus.OK, "ok\n")
    if path not in WEBSOCKET_PATHS:
        return connection.respond(HTTPStatus.NOT_FOUND, "not found\n")
    return None


def _select_subprotocol(
    connection: ServerConnection, offered: Sequence[Subprotocol]
) -> Subprotocol | None:
    """mod_audio_fork's subprotocol when offered; other clients need none."""
    for name in audio_fork.SUBPROTOCOLS:
        if name in offered:
            return Subprotocol(name)
    return None


class _WebSocketRoutes:
    """Hands each WebSocket to the handler of its path."""

    def __init__(self, amd: AmdWebSocketHandler, fork: AudioForkHandler) -> None:
        self.amd = amd
        self.fork = fork

    async def handle(self, ws: ServerConnection) -> None:
        path = urlsplit(ws.request.path if ws.request else "").path
        if path == audio_fork.PATH:
            await self.fork.handle(ws)
        else:
            await self.amd.handle(ws)


@dataclass
class Service:
    """What ``running_service`` started; ports are the bound ones (useful with port 0)."""

    http: Server
    audiosocket: asyncio.Server
    audiosocket_handler: AudioSocketHandler
    audio_fork_handler: AudioForkHandler
    ami: AmiLink | None
    esl: EslLink | None

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
    async with contextlib.AsyncExitStack() as stack:
        stack.push_async_callback(engine.aclose)
        ami: AmiLink | None = None
        ami_publish: Publish | None = None
        if (ami_config := settings.ami) is not None:
            ami = AmiLink(ami_config)
            await ami.start()
            stack.push_async_callback(ami.aclose)
            ami_publish = ami.publish
        esl: EslLink | None = None
        esl_publish: Publish | None = None
        if (esl_config := settings.esl) is not None:
            esl = EslLink(esl_config)
            await esl.start()
            stack.push_async_callback(esl.aclose)
            esl_publish = esl.publish
        timeout = settings.analysis_timeout_s
        message_end = settings.message_end == "on"
        fork_handler = AudioForkHandler(
            engine.analyze, settings.policy, timeout, esl_publish, message_end
        )
        routes = _WebSocketRoutes(
            AmdWebSocketHandler(engine, settings.policy, timeout, message_end), fork_handler
        )
        http: Server = await serve(
            routes.handle,
            settings.http_host,
            settings.http_port,
            process_request=_http_routes,
            select_subprotocol=_select_subprotocol,
            max_size=MAX_MESSAGE_BYTES,
        )
        stack.push_async_callback(_close_server, http)
        as_handler = AudioSocketHandler(
            engine.analyze,
            settings.policy,
            timeout,
            ami_publish,
            message_end_default=message_end,
            message_end_requested=ami.message_end_requested if ami is not None else not_said,
        )
        audiosocket = await asyncio.start_server(
            as_handler.handle, settings.audiosocket_host, settings.audiosocket_port
        )
        stack.push_async_callback(_close_server, audiosocket)
        yield Service(http, audiosocket, as_handler, fork_handler, ami, esl)


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
        http = f"{settings.http_host}:{service.http_port}"
        log.info(
            "listening on ws://%s%s (generic), ws://%s%s (FreeSWITCH mod_audio_fork), "
            "http://%s/healthz and AudioSocket %s:%d (Asterisk)",
            http,
            amd_ws.PATH,
            http,
            audio_fork.PATH,
            http,
            settings.audiosocket_host,
            service.audiosocket_port,
        )
        if service.ami is None:
            log.info("no AMI link configured: AudioSocket results are only logged")
        if service.esl is None:
            log.info("no event socket link configured: audio fork results go back on the socket")
        await stop.wait()
        log.info("shutting down")
