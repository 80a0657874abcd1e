"""A TCP listener on 127.0.0.1 for the tests' protocol peers (the fake Asterisk
manager, the fake FreeSWITCH event socket): start on a port (0: any free one),
stop closing every connection it accepted."""

from __future__ import annotations

import asyncio


class LoopbackServer:
    def __init__(self) -> None:
        self.writers: list[asyncio.StreamWriter] = []
        self.server: asyncio.Server | None = None
        self.port = 0

    async def connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """One accepted connection, as the peer's protocol handles it."""
        raise NotImplementedError

    async def start(self, port: int = 0) -> None:
        self.server = await asyncio.start_server(self._accept, "127.0.0.1", port)
        self.port = self.server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        assert self.server is not None
        self.server.close()
        for w in self.writers:
            w.close()
        await self.server.wait_closed()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writers.append(writer)
        await self.connection(reader, writer)
