"""Every pure library function has its mirror in `lever.math`, and every mirror names something
that exists: each mirror's docstring says "Mirrors `Contract.function`"."""

from __future__ import annotations

import inspect
import re

import lever.math as m
from lever.paths import REPO

CONTRACTS = REPO / "contracts"
LIBRARIES = ("FixedPointMath", "PerpMath", "PoolMath", "VolatilityMath", "LiquidationMath")
MIRRORS = re.compile(r"Mirrors `(\w+)\.(\w+)`")


def _mirrored() -> set[tuple[str, str]]:
    names = set()
    for module in (m.fixed, m.perp, m.pool, m.volatility, m.liquidation, m.engine, m.vault, m.oracle, m.orders):
        for _, member in inspect.getmembers(module, lambda x: inspect.isfunction(x) or inspect.isclass(x)):
            names |= set(MIRRORS.findall(member.__doc__ or ""))
    return names


def _source(contract: str) -> str:
    [path] = [p for p in CONTRACTS.rglob(f"{contract}.sol") if "mocks" not in p.parts]
    return path.read_text()


def test_every_library_function_has_a_mirror() -> None:
    mirrored = _mirrored()
    missing = []
    for library in LIBRARIES:
        for name in re.findall(r"function (\w+)\(", _source(library)):
            if not name.startswith("_") and (library, name) not in mirrored:
                missing.append(f"{library}.{name}")
    assert not missing, f"library functions without a mirror in lever.math: {missing}"


def test_every_mirror_names_a_function_that_exists() -> None:
    wrong = [
        f"{contract}.{name}"
        for contract, name in sorted(_mirrored())
        if not re.search(rf"(function|struct) {name}\b", _source(contract))
    ]
    assert not wrong, f"mirrors naming nothing in the contracts: {wrong}"
