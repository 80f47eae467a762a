"""Messages from the Jinja templates next to this file: `<name>.txt.jinja` (plain text)
and `<name>.html.jinja` (HTML, every value autoescaped)."""

from __future__ import annotations

from functools import cache
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from {{ cookiecutter.project_slug }}.mail.senders import Message

SERVICE_NAME = "{{ cookiecutter.project_name }}"


@cache
def environment() -> Environment:
    return Environment(
        loader=PackageLoader("{{ cookiecutter.project_slug }}.mail", "templates"),
        autoescape=select_autoescape(enabled_extensions=("html.jinja",), default=False),
        undefined=StrictUndefined,  # a missing value is an error, not an empty string
        keep_trailing_newline=True,
    )


def render(name: str, *, to: str, subject: str, **values: Any) -> Message:
    values = {"service": SERVICE_NAME, "email": to, **values}
    env = environment()
    return Message(
        kind=name,
        to=to,
        subject=subject,
        text=env.get_template(f"{name}.txt.jinja").render(values),
        html=env.get_template(f"{name}.html.jinja").render(values),
    )
