"""When mail leaves: never inside the request's transaction, never holding up the response.

`Outbox` (a dependency) is the one seam between the code that decides to send a mail and
the machinery that sends it.
{%- if cookiecutter.tasks == "taskiq" %} The message goes to the task queue once the request's transaction has
committed (`after_commit`), so a rolled-back request sends nothing; a worker sends it
(`mail/tasks.py`), retrying with backoff. The message, link and token included, waits in
Redis until then: keep Redis private (production requires its password).

When the queue cannot take the message (Redis down or refusing), the request has committed
already: it still answers as it would have, which matters for a password reset, whose
answer must not depend on whether the account exists. The failure is logged and the mail
leaves from this process after the response instead, as it does without a queue (`deliver`).
{%- else %} It uses a FastAPI background task: it runs after the
response has been sent, and so after the request's transaction committed (`SessionDep`
commits before the response); a slow or unreachable mail server never delays or fails a
request. With a task queue (the template's `tasks=taskiq`), the message is enqueued here
instead, once the transaction has committed, and a worker sends it.
{%- endif %}
"""

from __future__ import annotations

from typing import Annotated

import anyio
import structlog
from fastapi import BackgroundTasks, Depends

{% if cookiecutter.tasks == "taskiq" -%}
from {{ cookiecutter.project_slug }}.db import SessionDep, after_commit
{% endif -%}
from {{ cookiecutter.project_slug }}.mail.senders import Mailer, MailSender, Message
{%- if cookiecutter.tasks == "taskiq" %}
from {{ cookiecutter.project_slug }}.mail.tasks import send_mail
{%- endif %}

logger = structlog.stdlib.get_logger(__name__)

# Pauses before the second and third attempts; each attempt is bounded by
# SMTP_TIMEOUT_SECONDS. Short: a process that stops waits for mail in flight.
RETRY_DELAYS_SECONDS: tuple[float, ...] = (1.0, 2.0)


class MailOutbox:
    """Where a request leaves the mail it sends: `send_later(message)`."""

    def __init__(self, tasks: BackgroundTasks, sender: Mailer{% if cookiecutter.tasks == "taskiq" %}, session: SessionDep{% endif %}) -> None:
        self.tasks = tasks
        self.sender = sender
{%- if cookiecutter.tasks == "taskiq" %}
        self.session = session
{%- endif %}

    def send_later(self, message: Message) -> None:
{%- if cookiecutter.tasks == "taskiq" %}
        after_commit(self.session, lambda: self._enqueue(message))

    async def _enqueue(self, message: Message) -> None:
        try:
            await send_mail.kiq(message)
        except Exception as exc:  # the queue did not take it, whatever the reason
            # taskiq wraps the broker's error (a ConnectionError, say): name the cause.
            error = type(exc.__cause__ or exc).__name__
            logger.error("mail_not_queued", kind=message.kind, error=error)
            self.tasks.add_task(deliver, self.sender, message)
{%- else %}
        self.tasks.add_task(deliver, self.sender, message)
{%- endif %}


Outbox = Annotated[MailOutbox, Depends()]


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
