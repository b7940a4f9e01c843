"""`lever.math.constants` is `Constants.sol`: every constant, the same value (parsed from the source)."""

from __future__ import annotations

import re
from decimal import Decimal

from lever.math import constants
from lever.paths import REPO

SOURCE = REPO / "contracts" / "libraries" / "Constants.sol"
DECLARATION = re.compile(r"^uint256 constant (\w+) = ([^;]+);", re.MULTILINE)
UNITS = {"days": 86_400, "hours": 3_600, "minutes": 60, "seconds": 1}


def solidity_value(expression: str) -> int:
    """A Solidity number literal: `1e18`, `0.001e18`, `1_000e18`, `1 days`, `100`."""
    text = expression.strip().replace("_", "")
    number, _, unit = text.partition(" ")
    value = Decimal(number) * UNITS.get(unit, 1)
    assert value == value.to_integral_value(), f"{expression} is not an integer"
    return int(value)


def test_every_solidity_constant_has_the_same_value_in_python() -> None:
    declared = {name: solidity_value(value) for name, value in DECLARATION.findall(SOURCE.read_text())}
    assert len(declared) > 30
    mirrored = {name: getattr(constants, name) for name in dir(constants) if name.isupper()}
    assert declared == mirrored
