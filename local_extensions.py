"""Jinja filters for `cookiecutter.json`, loaded by cookiecutter (and cruft) through its
`_extensions` key from the template's root directory."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

from cookiecutter.utils import simple_filter
from slugify import slugify  # python-slugify, a dependency of cookiecutter


def _pre_gen_hook() -> ModuleType:
    """The pre-gen hook's rules (its unrendered file is valid Python), so that a derived
    name passes exactly the check that the answer later gets."""
    path = Path(__file__).resolve().parent / "hooks" / "pre_gen_project.py"
    spec = importlib.util.spec_from_file_location("pre_gen_project_rules", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@simple_filter
def package_name(project_name: str) -> str:
    """A valid package name for any project name: transliterated to ASCII, punctuation
    dropped, words joined by `_` ("Café Orders" -> cafe_orders, "Order's Service v2.0" ->
    orders_service_v2_0), a leading digit prefixed
    ("2024 Orders" -> service_2024_orders), and a name that would shadow a module
    suffixed ("JSON" -> json_service)."""
    # An apostrophe joins its word ("Order's" -> orders), where slugify would split it.
    slug = slugify(project_name.replace("'", "").replace("\u2019", ""), separator="_")
    if not slug:
        slug = "service"
    elif slug[0].isdigit():
        slug = f"service_{slug}"
    if _pre_gen_hook().slug_problem(slug):
        slug = f"{slug}_service"
    return slug
