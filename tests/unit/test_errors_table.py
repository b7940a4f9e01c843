"""`docs/errors.md` lists every custom error of `contracts/libraries/Errors.sol`, no more, no fewer,
each with its arguments as declared (both files parsed; no chain)."""

from __future__ import annotations

import re

from lever.paths import REPO

ERRORS_SOL = REPO / "contracts" / "libraries" / "Errors.sol"
ERRORS_MD = REPO / "docs" / "errors.md"
SECTION = "## Protocol errors"

DECLARATION = re.compile(r"^\s*error\s+(\w+)\s*\(([^)]*)\)\s*;", re.MULTILINE)
ROW = re.compile(r"^\|\s*`(\w+)`\s*\|([^|]*)\|", re.MULTILINE)
NO_ARGUMENTS = {"", "—", "-"}


def _normalise(arguments: str) -> str:
    """`uint256  a,uint256 b` and `` `uint256 a, uint256 b` `` alike: one space after each comma."""
    text = arguments.strip().strip("`").strip()
    if text in NO_ARGUMENTS:
        return ""
    return ", ".join(" ".join(part.split()) for part in text.split(","))


def declared_errors() -> dict[str, str]:
    """Name -> arguments of every `error` in Errors.sol (comments stripped first)."""
    source = re.sub(r"//[^\n]*", "", ERRORS_SOL.read_text())
    source = re.sub(r"/\*.*?\*/", "", source, flags=re.DOTALL)
    found: dict[str, str] = {}
    for name, arguments in DECLARATION.findall(source):
        assert name not in found, f"{name} is declared twice in Errors.sol"
        found[name] = _normalise(arguments)
    return found


def documented_errors() -> dict[str, str]:
    """Name -> arguments of every table row in the protocol-errors section of docs/errors.md."""
    text = ERRORS_MD.read_text()
    start = text.index(SECTION) + len(SECTION)
    following = re.search(r"^## ", text[start:], re.MULTILINE)
    section = text[start : start + following.start()] if following else text[start:]
    found: dict[str, str] = {}
    for name, arguments in ROW.findall(section):
        assert name not in found, f"{name} is listed twice in docs/errors.md"
        found[name] = _normalise(arguments)
    return found


def test_the_parsers_find_the_errors() -> None:
    assert len(declared_errors()) > 40
    assert len(documented_errors()) > 40


def test_every_declared_error_is_in_the_table() -> None:
    missing = sorted(set(declared_errors()) - set(documented_errors()))
    assert not missing, f"declared in Errors.sol but missing from docs/errors.md: {missing}"


def test_the_table_lists_no_error_that_is_not_declared() -> None:
    extra = sorted(set(documented_errors()) - set(declared_errors()))
    assert not extra, f"listed in docs/errors.md but not declared in Errors.sol: {extra}"


def test_the_table_gives_each_error_its_declared_arguments() -> None:
    declared, documented = declared_errors(), documented_errors()
    wrong = {
        name: (documented[name], declared[name])
        for name in sorted(set(declared) & set(documented))
        if documented[name] != declared[name]
    }
    assert not wrong, f"arguments in docs/errors.md (documented, declared) differ: {wrong}"
