"""A TCP proxy that a test cuts and restores, to take a server (the database, Redis) away
from the service under test and give it back."""

from __future__ import annotations

import asyncio
import contextlib


class TcpProxy:
    """Forwards 127.0.0.1:<port> to a server; `cut()` drops it, `blackhole()` hangs it."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self.server: asyncio.Server | None = None
        self.forwarding = True
        self.writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self.forwarding = True
        self.server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)
        self.port = self.server.sockets[0].getsockname()[1]

    async def cut(self) -> None:
        """Refuse new connections and reset the open ones, as a crashed server does."""
        assert self.server is not None
        self.server.close()
        for writer in list(self.writers):
            writer.transport.abort()
        await self.server.wait_closed()

    async def blackhole(self) -> None:
        """Accept connections but never answer, as a hung server or a dead route does."""
        self.forwarding = False
        for writer in list(self.writers):
            writer.transport.abort()

    async def _accept(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        self.writers.add(client_w)
        if not self.forwarding:
            return  # keep the socket open and silent
        server_r, server_w = await asyncio.open_connection(*self.target)
        self.writers.add(server_w)
        await asyncio.gather(self._pipe(client_r, server_w), self._pipe(server_r, client_w))

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()
        self.writers.discard(writer)
