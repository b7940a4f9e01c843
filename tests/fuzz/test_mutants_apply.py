"""The mutation check's mutants still apply: each one's original text occurs exactly once in the
contracts, so `make mutants` breaks here, in `make test`, when a contract edit moves it."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _mutants() -> list:
    spec = importlib.util.spec_from_file_location("mutants", ROOT / "scripts" / "mutants.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["mutants"] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return list(module.MUTANTS)


@pytest.mark.parametrize("mutant", _mutants(), ids=lambda m: m.name)
def test_mutant_text_occurs_once_in_the_contracts(mutant) -> None:
    source = (ROOT / mutant.path).read_text()
    assert source.count(mutant.old) == 1, f"{mutant.name}: {source.count(mutant.old)} occurrences in {mutant.path}"
    assert mutant.new != mutant.old
