"""The catalogue of variants: the defaults, everything on, and a pairwise covering set.

Options and their values come from cookiecutter.json, so a new option joins the catalogue
by itself. Combinations that the pre-gen hook rejects are never baked (each rejection has
its own test in test_bad_answers.py).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

from tests.template import COOKIECUTTER_JSON, FREE_TEXT_DEFAULTS, pre_gen


def option_values(config: dict[str, Any]) -> dict[str, list[Any]]:
    """Every choice option with its values, default first; booleans as [default, other]."""
    options: dict[str, list[Any]] = {}
    for key, default in config.items():
        if key.startswith("_"):
            continue
        if isinstance(default, bool):
            options[key] = [default, not default]
        elif isinstance(default, list):
            options[key] = list(default)
    return options


OPTIONS = option_values(COOKIECUTTER_JSON)
DEFAULTS = {key: values[0] for key, values in OPTIONS.items()}
EVERYTHING_ON: dict[str, Any] = {
    "database": "postgresql",
    "auth": "jwt",
    "docker": True,
    "ci": "github",
    "metrics": True,
    "tracing": True,
    "sentry": True,
    "kubernetes": True,
    "redis": True,
    "tasks": "taskiq",
}


def is_accepted(answers: dict[str, Any]) -> bool:
    return not pre_gen.validate({**FREE_TEXT_DEFAULTS, **DEFAULTS, **answers})


Pair = tuple[str, Any, str, Any]


def value_pairs(row: dict[str, Any]) -> set[Pair]:
    return {(a, row[a], b, row[b]) for a, b in itertools.combinations(sorted(row), 2)}


def pairwise(options: dict[str, list[Any]]) -> list[dict[str, Any]]:
    """Greedy covering set: every pair of values that some accepted row has, at least once."""
    keys = list(options)
    rows = [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*options.values())]
    rows = [row for row in rows if is_accepted(row)]
    row_pairs = [value_pairs(row) for row in rows]
    uncovered = set().union(*row_pairs)
    chosen: list[dict[str, Any]] = []
    while uncovered:
        best = max(range(len(rows)), key=lambda i: len(row_pairs[i] & uncovered))
        chosen.append(rows[best])
        uncovered -= row_pairs[best]
    return chosen


@dataclass(frozen=True)
class Variant:
    name: str
    answers: dict[str, Any]  # only what differs from the defaults

    @property
    def context(self) -> dict[str, Any]:
        return {**FREE_TEXT_DEFAULTS, **DEFAULTS, **self.answers}


def make_variant(answers: dict[str, Any], name: str | None = None) -> Variant:
    changed = {key: value for key, value in answers.items() if DEFAULTS.get(key) != value}
    label = ",".join(f"{key}={str(value).lower()}" for key, value in changed.items())
    return Variant(name=name or label or "defaults", answers=changed)


def catalogue() -> list[Variant]:
    variants = [make_variant({}, "defaults"), make_variant(EVERYTHING_ON, "everything")]
    variants += [make_variant(row) for row in pairwise(OPTIONS)]
    unique: dict[frozenset[tuple[str, Any]], Variant] = {}
    for variant in variants:
        unique.setdefault(frozenset(variant.answers.items()), variant)
    return list(unique.values())


VARIANTS = catalogue()
