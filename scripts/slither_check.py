"""Slither over the protocol's contracts; fails on any high or medium finding not triaged.

    python scripts/slither_check.py            (make slither; part of make test)

Slither builds through Foundry (`forge build`, whose compiler is the solc-js bridge: see
foundry.toml). Mocks and test helpers are not analysed: they are never deployed to a real chain.
Every high or medium finding must match an entry of `security/slither-triage.toml` (the detector
and where it fires: `Contract.function` or `Contract.function.variable`) that says why it is
not a bug; an entry that no longer matches anything fails the run too, so the file stays true.
The full report is written to `build/slither.json`.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
TRIAGE = ROOT / "security" / "slither-triage.toml"
REPORT = ROOT / "build" / "slither.json"
GATED = ("High", "Medium")
NOT_ANALYSED = "node_modules|contracts/mocks|contracts/test"


def where(element: dict[str, Any]) -> str:
    """`Contract.function[.variable]` of a result's first element."""
    names = [element["name"]]
    parent = element.get("type_specific_fields", {}).get("parent")
    while parent is not None:
        names.append(parent["name"])
        parent = parent.get("type_specific_fields", {}).get("parent")
    return ".".join(reversed(names))


def run_slither() -> list[dict[str, Any]]:
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.unlink(missing_ok=True)
    command = [
        "slither",
        ".",
        "--compile-force-framework",
        "foundry",
        "--foundry-out-directory",
        "build/forge/out",
        "--filter-paths",
        NOT_ANALYSED,
        "--json",
        str(REPORT),
    ]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    if not REPORT.exists():
        sys.stderr.write(done.stdout[-4000:] + done.stderr[-4000:])
        raise SystemExit(f"slither did not produce a report (exit {done.returncode})")
    report = json.loads(REPORT.read_text())
    if not report.get("success"):
        raise SystemExit(f"slither failed: {report.get('error')}")
    return list(report.get("results", {}).get("detectors", []))


def main() -> int:
    triage = tomllib.loads(TRIAGE.read_text())["finding"]
    triaged = {(t["check"], t["where"]) for t in triage}
    if len(triaged) != len(triage):
        raise SystemExit(f"{TRIAGE.name}: an entry is listed twice")
    missing = [t for t in triage if not str(t.get("why", "")).strip()]
    if missing:
        raise SystemExit(f"{TRIAGE.name}: {missing[0]['check']} at {missing[0]['where']} says no why")

    results = run_slither()
    by_impact = Counter(r["impact"] for r in results)
    untriaged: list[str] = []
    used: set[tuple[str, str]] = set()
    for r in results:
        if r["impact"] not in GATED:
            continue
        key = (r["check"], where(r["elements"][0]))
        if key in triaged:
            used.add(key)
        else:
            untriaged.append(f"{r['impact']} {r['check']} at {key[1]}: {r['description'].splitlines()[0]}")
    stale = [f"{c} at {w}" for (c, w) in triaged if (c, w) not in used]

    print(
        "slither: "
        + ", ".join(
            f"{by_impact.get(i, 0)} {i.lower()}" for i in ("High", "Medium", "Low", "Informational", "Optimization")
        )
        + f"; {len(used)} triaged high/medium locations ({TRIAGE.relative_to(ROOT)}); report {REPORT.relative_to(ROOT)}"
    )
    for line in untriaged:
        print(f"UNTRIAGED {line}")
    for line in stale:
        print(f"STALE triage entry (no longer reported): {line}")
    return 1 if untriaged or stale else 0


if __name__ == "__main__":
    raise SystemExit(main())
