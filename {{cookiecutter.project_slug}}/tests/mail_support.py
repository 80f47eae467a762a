"""Mail servers for tests, on loopback ports: a real SMTP server (aiosmtpd) that keeps what
it receives, and one that accepts connections and then says nothing (a stalled server)."""

from __future__ import annotations

import asyncio
import logging
import re
import socket
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from email import message_from_bytes, policy
from email.message import EmailMessage

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

# The link's token, as accounts/service.py writes it (in the URL's fragment).
LINK = re.compile(r"(https?://[^\s\"<>]+)#token=([A-Za-z0-9_-]+)")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Inbox:
    """What the SMTP server accepted, parsed."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802 - aiosmtpd's name
        raw = envelope.original_content or b""
        self.messages.append(message_from_bytes(raw, policy=policy.default))
        return "250 Message accepted for delivery"

    def only(self, to: str) -> EmailMessage:
        """The one message received, which must be addressed to `to`; the inbox empties."""
        assert len(self.messages) == 1, [m["To"] for m in self.messages]
        message = self.messages.pop()
        assert message["To"] == to
        return message


@contextmanager
def smtp_server() -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    server_log = logging.getLogger("mail.log")  # aiosmtpd's: every command it reads
    level = server_log.level
    server_log.setLevel(logging.WARNING)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()
        server_log.setLevel(level)


def body(message: EmailMessage, subtype: str) -> str:
    part = message.get_body(preferencelist=(subtype,))
    assert part is not None, f"no text/{subtype} part"
    content: str = part.get_content()
    return content


def link_token(message: EmailMessage) -> tuple[str, str]:
    """(the link's page, the token) from the plain text; the HTML part links the same."""
    match = LINK.search(body(message, "plain"))
    assert match, body(message, "plain")
    assert f'href="{match[0]}"' in body(message, "html")
    return match[1], match[2]


class StalledServer:
    """Accepts connections and never answers, until `release` closes them."""

    def __init__(self) -> None:
        self.connected = asyncio.Event()
        self.writers: list[asyncio.StreamWriter] = []

    async def _handle(self, _reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writers.append(writer)
        self.connected.set()

    def release(self) -> None:
        for writer in self.writers:
            writer.close()


@asynccontextmanager
async def stalled_server() -> AsyncIterator[tuple[StalledServer, int]]:
    stalled = StalledServer()
    server = await asyncio.start_server(stalled._handle, "127.0.0.1", 0)
    port: int = server.sockets[0].getsockname()[1]
    async with server:
        try:
            yield stalled, port
        finally:
            stalled.release()
