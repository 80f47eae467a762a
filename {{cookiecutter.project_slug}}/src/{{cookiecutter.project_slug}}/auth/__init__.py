{%- if cookiecutter.auth == "jwt" -%}
"""Authentication with built-in users: passwords, tokens, login hardening.

The users themselves (table, profile endpoints) live in `users/`.
"""
{%- else -%}
"""Authentication by an external OpenID Connect provider: this service only verifies its tokens."""
{%- endif %}
