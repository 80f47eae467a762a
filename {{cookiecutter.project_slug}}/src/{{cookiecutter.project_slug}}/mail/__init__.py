"""Mail: a small port (`MailSender`) with two adapters (SMTP, and the log for local
development), messages rendered from the templates in `templates/`, and `deliver_later`,
the one place that decides when and how a message leaves (after the response)."""
