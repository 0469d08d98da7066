"""The everyday training pool (models/realworld/everyday_pool.py) against the real-world evaluation set."""

from __future__ import annotations

import importlib.util
import json
import re
from collections import Counter
from pathlib import Path

import pytest

REALWORLD = Path(__file__).resolve().parents[2] / "models" / "realworld"


@pytest.fixture(scope="module")
def pool_module():
    spec = importlib.util.spec_from_file_location("everyday_pool", REALWORLD / "everyday_pool.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _normal(text: str) -> str:
    return " ".join(re.findall(r"[a-z0-9']+", text.lower()))


def _held_out() -> list[dict]:
    return [json.loads(line) for f in ("eval.jsonl", "dev.jsonl") for line in (REALWORLD / f).read_text().splitlines()]


def test_pool_is_balanced_distinct_and_seeded(pool_module):
    rows = pool_module.generate(120, seed=3)
    assert Counter(r["label"] for r in rows) == {label: 120 for label in pool_module.LABELS}
    assert len({r["text"] for r in rows}) == len(rows)
    assert rows == pool_module.generate(120, seed=3)
    assert rows != pool_module.generate(120, seed=4)

    def sayings(rows):
        return sum(any(_normal(s) == _normal(r["text"]) for s in pool_module.SAYINGS[r["label"]]) for r in rows)

    assert sayings(rows) == 0  # the default pool is the shipped model's: events and reactions only
    mixed = pool_module.generate(120, seed=3, sayings=0.4)
    assert 0.25 * len(mixed) < sayings(mixed) < 0.55 * len(mixed)


def test_no_held_out_sentence_is_in_the_pool(pool_module):
    held_out = {_normal(r["text"]) for r in _held_out()}
    fragments = [
        f
        for table in (pool_module.EVENTS, pool_module.REACTIONS, pool_module.SAYINGS)
        for label in pool_module.LABELS
        for f in table[label]
    ]
    # a fragment is a whole sentence, or the bulk of one, when it stands alone as a text
    assert not [f for f in fragments if _normal(f) in held_out]
    for share in (0.0, 0.4):
        assert not [r["text"] for r in pool_module.generate(500, sayings=share) if _normal(r["text"]) in held_out]


def test_every_label_has_its_fragments(pool_module):
    for table in (pool_module.EVENTS, pool_module.REACTIONS, pool_module.SAYINGS):
        assert set(table) == set(pool_module.LABELS)
        for label in pool_module.LABELS:
            assert len(table[label]) == len(set(table[label])) >= 15
