"""The mail port and its adapters: `SmtpSender` (aiosmtplib) and `LogSender` (development).

Which one a process uses is decided once, at startup, by `build_sender`: SMTP when
SMTP_HOST is set, the log otherwise (settings refuse a missing SMTP_HOST in production)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Annotated, Protocol

import aiosmtplib
import structlog
from fastapi import Depends, FastAPI, Request

from {{ cookiecutter.project_slug }}.settings import Settings

logger = structlog.stdlib.get_logger(__name__)


@dataclass(frozen=True)
class Message:
    """One rendered mail. `kind` names it in logs, which never carry its text."""

    kind: str
    to: str
    subject: str
    text: str
    html: str


class MailSender(Protocol):
    async def send(self, message: Message) -> None:
        """Hand `message` to the mail system; raises when it was not accepted."""


class SmtpSender:
    """One SMTP connection per message (mail is rare here; no pool to keep alive)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    async def send(self, message: Message) -> None:
        settings = self.settings
        email = EmailMessage()
        email["From"] = settings.mail_from
        email["To"] = message.to
        email["Subject"] = message.subject
        email.set_content(message.text)
        email.add_alternative(message.html, subtype="html")
        await aiosmtplib.send(
            email,
            hostname=settings.smtp_host,
            port=settings.smtp_port,
            username=settings.smtp_username or None,
            password=settings.smtp_password.get_secret_value() or None,
            use_tls=settings.smtp_tls == "tls",
            start_tls=settings.smtp_tls == "starttls",
            timeout=settings.smtp_timeout_seconds,
        )


class LogSender:
    """Writes mail to the log instead of sending it. In development the whole text is
    logged (the links are the point, on a laptop); anywhere else only the kind of mail,
    so no token ever reaches a log collector."""

    def __init__(self, *, include_text: bool) -> None:
        self.include_text = include_text

    async def send(self, message: Message) -> None:
        if self.include_text:
            logger.info(
                "mail_logged_not_sent",
                kind=message.kind,
                to=message.to,
                subject=message.subject,
                text=message.text,
            )
        else:
            logger.warning("mail_dropped_no_smtp_host", kind=message.kind)


def build_sender(settings: Settings) -> MailSender:
    if settings.smtp_host:
        return SmtpSender(settings)
    return LogSender(include_text=settings.environment == "development")


@asynccontextmanager
async def mail_lifespan(app: FastAPI, settings: Settings) -> AsyncIterator[None]:
    app.state.mail_sender = build_sender(settings)
    yield


def _mail_sender(request: Request) -> MailSender:
    sender: MailSender = request.app.state.mail_sender
    return sender


Mailer = Annotated[MailSender, Depends(_mail_sender)]
