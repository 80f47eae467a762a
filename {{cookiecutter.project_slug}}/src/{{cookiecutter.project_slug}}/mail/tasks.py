"""Mail sent by the worker: `mail/outbox.py` enqueues a message once the request's
transaction has committed, and this task hands it to the worker's mail sender, which
`mail_lifespan` built from the settings as it does for the API."""

from __future__ import annotations

import structlog
from taskiq import Context, TaskiqDepends
from taskiq.brokers.shared_broker import shared_task

from {{ cookiecutter.project_slug }}.mail.senders import MailSender, Message
from {{ cookiecutter.project_slug }}.tasks.broker import TransientTaskError, task_app
from {{ cookiecutter.project_slug }}.tasks.middleware import attempt

logger = structlog.stdlib.get_logger("mail")


@shared_task
async def send_mail(message: Message, context: Context = TaskiqDepends()) -> None:
    """Send `message`. A failure (the mail server down, slow or refusing) is retried with
    backoff, up to TASK_MAX_ATTEMPTS runs in all; after the last one the mail is logged as
    not delivered. Logs carry the kind of mail and the error class only: the message holds
    an address and a link with a token, and a server's reply can quote the address.

    Delivery is at least once: a worker that dies after the mail server accepted the
    message sends it again (the same link, still valid once)."""
    app = task_app(context)
    sender: MailSender = app.state.mail_sender
    run = attempt(context.message)
    try:
        await sender.send(message)
    except Exception as exc:  # any failure of the mail system: worth another try
        error = type(exc).__name__
        logger.warning("mail_attempt_failed", kind=message.kind, attempt=run, error=error)
        if run >= app.state.settings.task_max_attempts:
            logger.error("mail_not_delivered", kind=message.kind, attempts=run, error=error)
        # `from None`: the worker logs this error's traceback, which would quote the cause.
        raise TransientTaskError(error) from None
    logger.info("mail_sent", kind=message.kind, attempt=run)
