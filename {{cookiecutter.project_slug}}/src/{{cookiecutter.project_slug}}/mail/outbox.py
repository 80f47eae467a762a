"""When mail leaves: after the response, with a bounded number of retries.

`deliver_later` is the one seam between the code that decides to send a mail and the
machinery that sends it. Today it is a FastAPI background task: it runs after the response
has been sent, and so after the request's transaction committed (`SessionDep` commits
before the response); a slow or unreachable mail server never delays or fails a request.
To send through a task queue instead, enqueue `message` here (it is a plain dataclass) and
have the worker call `deliver`.
"""

from __future__ import annotations

import anyio
import structlog
from fastapi import BackgroundTasks

from {{ cookiecutter.project_slug }}.mail.senders import MailSender, Message

logger = structlog.stdlib.get_logger(__name__)

# Pauses before the second and third attempts; each attempt is bounded by
# SMTP_TIMEOUT_SECONDS. Short: a process that stops waits for mail in flight.
RETRY_DELAYS_SECONDS: tuple[float, ...] = (1.0, 2.0)


def deliver_later(tasks: BackgroundTasks, sender: MailSender, message: Message) -> None:
    tasks.add_task(deliver, sender, message)


async def deliver(sender: MailSender, message: Message) -> bool:
    """Send `message`, retrying; whether it was accepted. Failures are logged by kind and
    error class only: server replies can quote addresses, and the text holds a token."""
    delays = (0.0, *RETRY_DELAYS_SECONDS)
    try:
        for attempt, delay in enumerate(delays, start=1):
            await anyio.sleep(delay)
            try:
                await sender.send(message)
            except Exception as exc:  # any failure: retried, then logged
                error = type(exc).__name__
                logger.warning(
                    "mail_attempt_failed", kind=message.kind, attempt=attempt, error=error
                )
            else:
                logger.info("mail_sent", kind=message.kind, attempt=attempt)
                return True
    except anyio.get_cancelled_exc_class():
        # The process stops (its graceful shutdown timed out) with the mail still pending.
        logger.error("mail_not_delivered", kind=message.kind, reason="shutdown")
        raise
    logger.error("mail_not_delivered", kind=message.kind, attempts=len(delays))
    return False
