"""The bridge service on its own event loop in a thread, so blocking test code
(the AMI client, Asterisk) can drive calls against it."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from bridge.server import Service, running_service
from bridge.settings import Settings


class BridgeThread:
    def __init__(self, settings: Settings, detector: Any) -> None:
        self.settings = settings
        self.detector = detector
        self.service: Service | None = None
        self.error: BaseException | None = None
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> BridgeThread:
        self._thread.start()
        self._ready.wait(30)
        if self.error is not None:
            raise self.error
        assert self.service is not None, "bridge did not start in time"
        return self

    def __exit__(self, *exc: object) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)

    @property
    def audiosocket_addr(self) -> str:
        assert self.service is not None
        return f"127.0.0.1:{self.service.audiosocket_port}"

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # reported to the test thread
            self.error = exc
            self._ready.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        async with running_service(self.settings, self.detector) as service:
            self.service = service
            self._ready.set()
            await self._stop.wait()
