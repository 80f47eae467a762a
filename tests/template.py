"""Where the template lives, and its hooks imported as modules (they stay valid Python)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

TEMPLATE_DIR = Path(__file__).resolve().parents[1]
PROJECT_TEMPLATE = TEMPLATE_DIR / "{{cookiecutter.project_slug}}"
COOKIECUTTER_JSON: dict[str, Any] = json.loads(
    (TEMPLATE_DIR / "cookiecutter.json").read_text(encoding="utf-8")
)
DEFAULT_SLUG = "my_service"
# The free-text answers as cookiecutter renders them with --no-input.
FREE_TEXT_DEFAULTS: dict[str, Any] = {
    "project_name": COOKIECUTTER_JSON["project_name"],
    "project_slug": DEFAULT_SLUG,
    "description": COOKIECUTTER_JSON["description"],
    "author_name": COOKIECUTTER_JSON["author_name"],
    "author_email": COOKIECUTTER_JSON["author_email"],
}


def load_hook(name: str) -> ModuleType:
    path = TEMPLATE_DIR / "hooks" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while it executes
    spec.loader.exec_module(module)
    return module


pre_gen = load_hook("pre_gen_project")
post_gen = load_hook("post_gen_project")
