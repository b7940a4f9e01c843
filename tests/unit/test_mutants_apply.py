"""`make mutants` breaks the contracts on purpose; each mutant must still apply to today's sources
(a refactor that moves its line would otherwise make it fail to build, or silently test nothing)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _mutants() -> ModuleType:
    spec = importlib.util.spec_from_file_location("lever_mutants", ROOT / "scripts" / "mutants.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


MUTANTS = _mutants().MUTANTS + _mutants().EQUIVALENT


def test_there_are_at_least_twenty_mutants_with_distinct_names() -> None:
    names = [m.name for m in MUTANTS]
    assert len(names) >= 20 and len(set(names)) == len(names)


@pytest.mark.parametrize("mutant", MUTANTS, ids=lambda m: m.name)
def test_each_mutant_changes_exactly_one_place_in_its_contract(mutant: object) -> None:
    source = (ROOT / mutant.path).read_text()  # type: ignore[attr-defined]
    assert source.count(mutant.old) == 1  # type: ignore[attr-defined]
    assert mutant.old != mutant.new  # type: ignore[attr-defined]
