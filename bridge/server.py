"""``amd-bridge serve``: the engine behind the service's listeners, on one event loop."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import signal
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from typing import TypeVar
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.http11 import Request, Response
from websockets.typing import Origin, Subprotocol

from bridge.engine import Detector, build_batching_engine
from bridge.metrics import CONTENT_TYPE, Metrics
from bridge.pbx.ami import AmiLink
from bridge.pbx.esl import EslLink
from bridge.protocols import amd_ws, audio_fork
from bridge.settings import Settings
from bridge.transports.admission import CallRegistry
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
# Connections the kernel holds for us while the loop is busy: a campaign starting
# hundreds of calls at once must not see refusals (asyncio's default is 100).
LISTEN_BACKLOG = 1024


class _HttpRoutes:
    """Plain HTTP answers (health, readiness, metrics) and the WebSocket gate: a
    request for a WebSocket path goes on to the handshake (``None``) once its
    token, if one is configured, is right."""

    def __init__(self, metrics: Metrics, api_token: str) -> None:
        self.metrics = metrics
        self.api_token = api_token
        self.not_ready: Callable[[], list[str]] = list

    def __call__(self, connection: ServerConnection, request: Request) -> Response | None:
        url = urlsplit(request.path)
        if url.path == "/healthz":
            return connection.respond(HTTPStatus.OK, "ok\n")
        if url.path == "/readyz":
            reasons = self.not_ready()
            if reasons:
                return connection.respond(HTTPStatus.SERVICE_UNAVAILABLE, "\n".join(reasons) + "\n")
            return connection.respond(HTTPStatus.OK, "ready\n")
        if url.path == "/metrics":
            body = self.metrics.render()
            headers = Headers([("Content-Type", CONTENT_TYPE), ("Content-Length", str(len(body)))])
            return Response(HTTPStatus.OK.value, HTTPStatus.OK.phrase, headers, body)
        if url.path not in WEBSOCKET_PATHS:
            return connection.respond(HTTPStatus.NOT_FOUND, "not found\n")
        if self.api_token and not _token_ok(request, url.query, self.api_token):
            self.metrics.refused.labels("unauthorized").inc()
            response = connection.respond(
                HTTPStatus.UNAUTHORIZED, "a valid bearer token is needed\n"
            )
            response.headers["WWW-Authenticate"] = "Bearer"
            return response
        return None


def _token_ok(request: Request, query: str, token: str) -> bool:
    """``Authorization: Bearer <token>``, or ``?token=`` for clients that cannot set
    headers (mod_audio_fork's URL)."""
    offered = ""
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("bearer "):
        offered = header[7:].strip()
    elif values := parse_qs(query).get("token"):
        offered = values[-1]
    return hmac.compare_digest(offered.encode(), token.encode())


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
    amd_handler: AmdWebSocketHandler
    ami: AmiLink | None
    esl: EslLink | None
    calls: CallRegistry
    metrics: Metrics
    draining: bool = False

    @property
    def http_port(self) -> int:
        return int(self.http.sockets[0].getsockname()[1])

    @property
    def audiosocket_port(self) -> int:
        return int(self.audiosocket.sockets[0].getsockname()[1])

    def not_ready(self) -> list[str]:
        """Why the service should not get new calls now (empty: ready)."""
        reasons = []
        if self.draining:
            reasons.append("shutting down")
        if self.ami is not None and not self.ami.up:
            reasons.append("AMI link down")
        if self.esl is not None and not self.esl.up:
            reasons.append("event socket link down")
        return reasons

    async def drain(self, deadline_s: float) -> None:
        """Stop taking calls, let those open finish within ``deadline_s``, then end
        the rest now (NOTSURE/SHUTDOWN) and give them time to publish that."""
        self.draining = True
        self.audiosocket.close()
        self.http.close(close_connections=False)
        open_calls = self.calls.active
        log.info("draining: %d calls open, %.1f s to finish", open_calls, deadline_s)
        if await self.calls.wait_idle(deadline_s):
            return
        stopped = self.calls.stop_all()
        log.warning("drain deadline passed: %d calls ended NOTSURE/SHUTDOWN", stopped)
        if not await self.calls.wait_idle(PUBLISH_GRACE_S):
            log.error("%d calls still open after the grace period", self.calls.active)


# After the drain deadline, how long the calls ended then get to publish and close.
PUBLISH_GRACE_S = 5.0


@contextlib.asynccontextmanager
async def running_service(settings: Settings, detector: Detector) -> AsyncIterator[Service]:
    """Start the engine, the PBX link and the listeners; on exit stop and drain."""
    metrics = Metrics()
    engine = build_batching_engine(settings, detector)
    engine.on_batch = metrics.batch_done
    calls = CallRegistry(settings.max_calls)
    async with contextlib.AsyncExitStack() as stack:
        stack.push_async_callback(engine.aclose)
        ami: AmiLink | None = None
        esl: EslLink | None = None
        if (ami_config := settings.ami) is not None:
            ami = await _start_link(AmiLink(ami_config), "ami", stack, metrics)
        if (esl_config := settings.esl) is not None:
            esl = await _start_link(EslLink(esl_config), "esl", stack, metrics)
        ami_publish: Publish | None = ami.publish if ami is not None else None
        esl_publish: Publish | None = esl.publish if esl is not None else None
        timeout = settings.analysis_timeout_s
        message_end = settings.message_end == "on"
        fork_handler = AudioForkHandler(
            engine.analyze, settings.policy, timeout, esl_publish, message_end
        )
        amd_handler = AmdWebSocketHandler(engine, settings.policy, timeout, message_end)
        as_handler = AudioSocketHandler(
            engine.analyze,
            settings.policy,
            timeout,
            ami_publish,
            message_end_default=message_end,
            message_end_requested=ami.message_end_requested if ami is not None else not_said,
        )
        for name, handler in (
            ("audiosocket", as_handler),
            ("audio_fork", fork_handler),
            ("ws_amd", amd_handler),
        ):
            handler.calls = calls
            handler.metrics = metrics
            metrics.watch_outcomes(name, handler.outcomes)
        metrics.watch_active("audiosocket", lambda: as_handler.active)
        metrics.watch_active("audio_fork", lambda: fork_handler.active)
        metrics.watch_active("ws_amd", lambda: amd_handler.active)
        metrics.watch_active("all", lambda: calls.active)
        metrics.watch_engine(engine)
        http_routes = _HttpRoutes(metrics, settings.api_token)
        http: Server = await serve(
            _WebSocketRoutes(amd_handler, fork_handler).handle,
            settings.http_host,
            settings.http_port,
            process_request=http_routes,
            select_subprotocol=_select_subprotocol,
            max_size=MAX_MESSAGE_BYTES,
            origins=[None, *(Origin(o) for o in settings.origins)] if settings.origins else None,
            backlog=LISTEN_BACKLOG,
        )
        stack.push_async_callback(_close_server, http)
        audiosocket = await asyncio.start_server(
            as_handler.handle,
            settings.audiosocket_host,
            settings.audiosocket_port,
            backlog=LISTEN_BACKLOG,
        )
        stack.push_async_callback(_close_server, audiosocket)
        service = Service(
            http, audiosocket, as_handler, fork_handler, amd_handler, ami, esl, calls, metrics
        )
        http_routes.not_ready = service.not_ready
        yield service


_Link = TypeVar("_Link", AmiLink, EslLink)


async def _start_link(
    link: _Link, name: str, stack: contextlib.AsyncExitStack, metrics: Metrics
) -> _Link:
    """Connect a PBX link, close it with the service, and export its outcomes."""
    await link.start()
    stack.push_async_callback(link.aclose)
    metrics.watch_outcomes(name, link.outcomes)
    return link


async def _close_server(server: Server | asyncio.Server) -> None:
    """Stop accepting and wait for the open connections' handlers to end."""
    server.close()
    await server.wait_closed()


async def serve_forever(settings: Settings, detector: Detector) -> None:
    """Run until SIGINT or SIGTERM, then drain (``AMD_SHUTDOWN_DEADLINE_S``)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with running_service(settings, detector) as service:
        http = f"{settings.http_host}:{service.http_port}"
        log.info(
            "listening on ws://%s%s (generic), ws://%s%s (FreeSWITCH mod_audio_fork), "
            "http://%s/healthz, /readyz, /metrics and AudioSocket %s:%d (Asterisk); "
            "at most %d calls at once",
            http,
            amd_ws.PATH,
            http,
            audio_fork.PATH,
            http,
            settings.audiosocket_host,
            service.audiosocket_port,
            settings.max_calls,
        )
        if service.ami is None:
            log.info("no AMI link configured: AudioSocket results are only logged")
        if service.esl is None:
            log.info("no event socket link configured: audio fork results go back on the socket")
        await stop.wait()
        log.info("shutting down")
        await service.drain(settings.shutdown_deadline_s)
