"""Mail: a small port (`MailSender`) with two adapters (SMTP, and the log for local
development), messages rendered from the templates in `templates/`, and `Outbox`, the one
place that decides when and how a message leaves: after the request's commit,
{%- if cookiecutter.tasks == "taskiq" %} through
the task queue.{% else %} after the
response.{% endif %}"""
