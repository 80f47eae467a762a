"""The variant catalogue itself: complete, valid, and free of typos cookiecutter would ignore."""

from __future__ import annotations

import itertools

from tests.template import COOKIECUTTER_JSON
from tests.variants import EVERYTHING_ON, OPTIONS, VARIANTS, is_accepted, pairwise, value_pairs


def test_every_variant_names_real_keys_and_values() -> None:
    # cookiecutter silently ignores an unknown key in extra_context: a typo would bake the
    # defaults and pass. Guard every answer against cookiecutter.json.
    for variant in VARIANTS:
        for key, value in variant.answers.items():
            assert key in COOKIECUTTER_JSON, (variant.name, key)
            assert value in OPTIONS[key], (variant.name, key, value)
    for key, value in EVERYTHING_ON.items():
        assert value in OPTIONS[key], key


def test_every_coverable_pair_of_values_is_baked() -> None:
    # Computed independently of the greedy search: every pair that some accepted
    # combination of answers contains must appear in at least one baked variant.
    keys = list(OPTIONS)
    coverable: set[tuple[object, ...]] = set()
    for combo in itertools.product(*OPTIONS.values()):
        row = dict(zip(keys, combo, strict=True))
        if is_accepted(row):
            coverable |= value_pairs(row)
    baked: set[tuple[object, ...]] = set()
    for variant in VARIANTS:
        baked |= value_pairs({key: variant.context[key] for key in keys})
    assert coverable - baked == set()


def test_no_variant_is_one_the_hook_rejects() -> None:
    assert all(is_accepted(variant.answers) for variant in VARIANTS)


def test_defaults_and_everything_on_are_in_the_catalogue() -> None:
    names = [variant.name for variant in VARIANTS]
    assert names[:2] == ["defaults", "everything"]
    assert (
        next(v for v in VARIANTS if v.name == "everything").answers.items()
        >= {key: value for key, value in EVERYTHING_ON.items() if OPTIONS[key][0] != value}.items()
    )
    assert len(names) == len(set(names))


def test_pairwise_covers_every_pair_it_can() -> None:
    options = {"a": [1, 2, 3], "b": ["x", "y"], "c": [True, False]}
    rows = pairwise(options)
    wanted = {
        (a, va, b, vb)
        for a, b in [("a", "b"), ("a", "c"), ("b", "c")]
        for va in options[a]
        for vb in options[b]
    }
    covered = set().union(*(value_pairs(row) for row in rows))
    assert wanted <= covered
    assert len(rows) < 3 * 2 * 2  # fewer than the full product
