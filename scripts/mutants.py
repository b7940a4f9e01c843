"""Proof that the invariant suite bites: deliberately broken copies of the contracts, each of which
the `ci` fuzz profile must catch.

    python scripts/mutants.py [NAME ...]     (make mutants)

Each mutant is one textual change applied to a copy of `contracts/` under `build/mutants/<name>/`,
compiled there with ape, then fuzzed in process (`LEVER_FUZZ_ARTIFACTS` points the suite at the
copy). Writes `build/bench/mutants.json` and exits non-zero if any mutant survives.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Mutant:
    name: str
    what: str
    path: str
    old: str
    new: str


MUTANTS = (
    Mutant("credit-rounds-up", "a trader's realised profit rounds up to token units instead of down",
           "contracts/PerpEngine.sol",
           "if (valueWad >= 0) return int256(uint256(valueWad) / _tokenScale);",
           "if (valueWad >= 0) return int256(uint256(valueWad).divUp(_tokenScale));"),
    Mutant("funding-sign-inverted", "longs receive funding when they should pay it",
           "contracts/PerpEngine.sol",
           "s.longFundingIndexWad += payerDelta.toInt256().toInt128();",
           "s.longFundingIndexWad -= payerDelta.toInt256().toInt128();"),
    Mutant("withdraw-without-margin-check", "withdrawMargin skips the engine's margin (and owner) check",
           "contracts/LeverVault.sol",
           "engine.checkWithdrawal(accountId, msg.sender, margin);",
           "// engine.checkWithdrawal(accountId, msg.sender, margin);"),
    Mutant("reward-cap-removed", "the keeper reward is not capped at maxReward",
           "contracts/libraries/LiquidationMath.sol",
           "return reward < p.maxRewardWad ? reward : p.maxRewardWad;",
           "return reward;"),
    Mutant("bad-debt-not-charged-to-insurance", "bad debt covered by insurance leaves the insurance ledger untouched",
           "contracts/LeverVault.sol",
           "_insuranceFund = uint96(insurance - byInsurance);",
           "_insuranceFund = uint96(insurance);"),
    Mutant("oi-not-decremented", "open interest never decreases when positions shrink or close",
           "contracts/PerpEngine.sol",
           "sideOi = (t.isLong ? s.longOpenInterestWad : s.shortOpenInterestWad) - int256(pos.sizeWad).abs()\n"
           "            + t.newSizeWad.abs();",
           "sideOi = (t.isLong ? s.longOpenInterestWad : s.shortOpenInterestWad)\n"
           "            + (t.increasing ? t.newSizeWad.abs() - int256(pos.sizeWad).abs() : 0);"),
    Mutant("protocol-fee-cut-lost", "the protocol's share of a fee is taken from the trader but booked nowhere",
           "contracts/LeverVault.sol",
           "_protocolFees += protocolCut.toUint96();",
           "// _protocolFees += protocolCut.toUint96();"),
    Mutant("healthy-accounts-liquidatable", "accounts are liquidated below 2x maintenance margin",
           "contracts/PerpEngine.sol",
           "if (a.equityWad >= int256(a.maintenanceMarginWad)) return r;",
           "if (a.equityWad >= 2 * int256(a.maintenanceMarginWad)) return r;"),
    Mutant("initial-margin-halved", "an increase only needs half the initial margin",
           "contracts/PerpEngine.sol",
           "if (a.equityWad < int256(a.initialMarginWad)) {",
           "if (a.equityWad < int256(a.initialMarginWad) / 2) {"),
    Mutant("lp-redeem-ignores-reserve", "LPs can redeem the reserve that backs open positions",
           "contracts/LeverVault.sol",
           "return available > reserved ? available - reserved : 0;",
           "return available;"),
    Mutant("pause-does-not-stop-increases", "a paused engine still lets positions grow",
           "contracts/PerpEngine.sol",
           "            _requireNotPaused();\n",
           "\n"),
)


def build_mutant(m: Mutant, workdir: Path) -> Path:
    if workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    shutil.copytree(ROOT / "contracts", workdir / "contracts", ignore=shutil.ignore_patterns(".cache"))
    shutil.copy(ROOT / "ape-config.yaml", workdir / "ape-config.yaml")
    (workdir / "node_modules").symlink_to(ROOT / "node_modules")
    target = workdir / m.path
    source = target.read_text()
    if source.count(m.old) != 1:
        raise SystemExit(f"mutant {m.name}: the original text occurs {source.count(m.old)} times in {m.path}")
    target.write_text(source.replace(m.old, m.new))
    done = subprocess.run(["ape", "compile", "--force"], check=False, cwd=workdir, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"mutant {m.name} does not compile:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return workdir / ".build" / "__local__.json"


def fuzz(artifacts: Path) -> tuple[bool, str]:
    """Runs the ci profile against the mutant; caught means the suite failed (exit code 1)."""
    env = dict(os.environ, LEVER_FUZZ_ARTIFACTS=str(artifacts), LEVER_FUZZ_PROFILE="ci", LEVER_FUZZ_NO_SHRINK="1")
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "tests/fuzz", "-p", "no:ape_test", "-n", "2", "-q", "--tb=line"],
        check=False, cwd=ROOT, env=env, capture_output=True, text=True,
    )
    if done.returncode not in (0, 1):
        raise SystemExit(f"the fuzz run could not run (exit {done.returncode}):\n{done.stdout[-3000:]}")
    reason = next((line.strip() for line in done.stdout.splitlines() if "Error" in line), "")
    return done.returncode == 1, reason[:300]


def main(names: list[str]) -> int:
    chosen = [m for m in MUTANTS if not names or m.name in names]
    results = []
    for m in chosen:
        started = time.perf_counter()
        artifacts = build_mutant(m, ROOT / "build" / "mutants" / m.name)
        caught, reason = fuzz(artifacts)
        seconds = round(time.perf_counter() - started, 1)
        print(f"{'caught  ' if caught else 'SURVIVED'} {m.name:36} {seconds:6.1f} s  {reason}", flush=True)
        results.append({"name": m.name, "what": m.what, "caught": caught, "by": reason, "seconds": seconds})
    report = {"total": len(results), "caught": sum(r["caught"] for r in results), "mutants": results}
    out = ROOT / "build" / "bench" / "mutants.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"{report['caught']}/{report['total']} mutants caught -> {out.relative_to(ROOT)}")
    return 0 if report["caught"] == report["total"] else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
