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
    # Orders and the pull oracle: who chooses the price.
    Mutant(
        "market-fill-skips-delay",
        "a market order fills at a price published before its commit plus the delay",
        "contracts/OrderBook.sol",
        "uint256 minTime = uint256(o.updatedAt) + st.settlementDelay;",
        "uint256 minTime = uint256(o.updatedAt);",
    ),
    Mutant(
        "fill-price-not-unique",
        "the settler may prove any price in the window, not the earliest one",
        "contracts/OracleAdapter.sol",
        "_parse(marketId, m, update, minPublishTime, maxPublishTime, true);",
        "_parse(marketId, m, update, minPublishTime, maxPublishTime, false);",
    ),
    Mutant(
        "stop-by-price-before-increase",
        "a stop-loss or take-profit triggers at a price from before the position's last increase",
        "contracts/OrderBook.sol",
        "if (pos.lastIncreaseTime > since) since = pos.lastIncreaseTime;",
        "if (pos.lastIncreaseTime > since) since = since;",
    ),
    Mutant(
        "conditional-skips-delay",
        "a conditional order triggers at a price published right after its update",
        "contracts/OrderBook.sol",
        "if (price.publishTime < since + st.settlementDelay) return (WAIT, price);",
        "if (price.publishTime < since) return (WAIT, price);",
    ),
    Mutant(
        "conditional-fills-at-trigger-price",
        "a conditional order fills at the stored price that triggers it (its executor chooses it among recent ones)",
        "contracts/OrderBook.sol",
        "                continue; // a trigger is never filled in the transaction that sees it\n",
        "                ready = status == READY;\n",
    ),
    Mutant(
        "owner-cancels-triggered-order",
        "a trader may cancel a triggered conditional order once it has seen its fill price",
        "contracts/OrderBook.sol",
        "if (o.kind == uint8(OrderKind.Market) || o.triggered) {\n            uint256 expiry",
        "if (o.kind == uint8(OrderKind.Market)) {\n            uint256 expiry",
    ),
    Mutant(
        "expired-fee-refunded",
        "an expired market order's executor fee goes back to the trader (free options)",
        "contracts/OrderBook.sol",
        "        vault.forfeitExecutorFee(accountId, o.executorFee);\n",
        "        vault.releaseExecutorFee(accountId, o.executorFee, address(0));\n",
    ),
    Mutant(
        "owner-cancels-market-order",
        "a trader may cancel a committed market order before it expires",
        "contracts/OrderBook.sol",
        "if (block.timestamp <= expiry) revert OrderNotCancellable(orderId, expiry);",
        "if (block.timestamp <= expiry) {}",
    ),
    Mutant(
        "worst-price-ignored",
        "margin on other markets is valued at the pull price, not the worse of pull and reference",
        "contracts/PerpEngine.sol",
        "if (ref != 0 && (sizeWad > 0 ? ref < d.priceWad : ref > d.priceWad)) d.priceWad = ref;",
        "if (ref != 0 && (sizeWad > 0 ? ref > d.priceWad : ref < d.priceWad)) d.priceWad = ref;",
    ),
    Mutant(
        "market-order-no-window",
        "a market order fills after its settlement window instead of expiring",
        "contracts/OrderBook.sol",
        "if (block.timestamp > _expiry(o, st)) {",
        "if (false && block.timestamp > _expiry(o, st)) {",
    ),
    Mutant(
        "close-leaves-debt",
        "closing an account's last position may leave its margin negative: a debt no liquidation books",
        "contracts/PerpEngine.sol",
        "if (closesLast && r.marginAfterToken < 0) revert",
        "if (false && closesLast && r.marginAfterToken < 0) revert",
    ),
    # The pool: its price, its reserve, its LPs.
    Mutant(
        "lp-deposit-no-delay",
        "an LP request settles at a price published before the request plus the delay",
        "contracts/LeverVault.sol",
        "uint256 earliest = time + lp.settlementDelay;",
        "uint256 earliest = time;",
    ),
    Mutant(
        "lp-no-liquidation-grace",
        "an LP request settles before pending liquidations could clear",
        "contracts/LeverVault.sol",
        "if (block.timestamp < d.publishTime + lp.liquidationGrace) {",
        "if (block.timestamp < d.publishTime) {",
    ),
    Mutant(
        "lp-value-ignores-later-book",
        "an LP request is valued at its pull prices alone: a position opened after them is marked at them",
        "contracts/libraries/PoolMath.sol",
        "return isDeposit == (atPull > atNewest) ? atPull : atNewest;",
        "return atPull;",
    ),
    Mutant(
        "lp-redeem-ignores-reserve",
        "LPs can redeem the reserve that backs open positions",
        "contracts/LeverVault.sol",
        "return pool > reserve ? pool - reserve : 0;",
        "return pool;",
    ),
    Mutant(
        "reserve-for-skew-only",
        "the pool reserves for the longs' profit only (a balanced book reserves half)",
        "contracts/PerpEngine.sol",
        "return PerpMath.reserveWad(s.longCostWad, p.maxProfitRatioWad)\n"
        "            + PerpMath.reserveWad(s.shortCostWad, p.maxProfitRatioWad);",
        "return PerpMath.reserveWad(s.longCostWad, p.maxProfitRatioWad);",
    ),
    Mutant(
        "side-value-uncapped",
        "the pool counts a side's profit beyond its reserve",
        "contracts/libraries/PerpMath.sol",
        "        if (value > cap) value = cap;\n",
        "\n",
    ),
    Mutant(
        "profit-cap-removed",
        "a position's profit is not capped at maxProfitRatio of its cost",
        "contracts/libraries/PerpMath.sol",
        "return raw < cap ? raw : cap;",
        "return raw;",
    ),
    # The premises that keep the pool's assets at or above the total reserve (with the profit cap
    # and the free-asset redemptions above): see EQUIVALENT below.
    Mutant(
        "profit-ratio-raise-beyond-pool",
        "a raise of maxProfitRatio may take the reserve beyond the pool",
        "contracts/PerpEngine.sol",
        "if (totalReserve > totalBefore && totalReserve > poolWad) revert",
        "if (false) revert",
    ),
    Mutant(
        "profit-ratio-cut-while-open",
        "maxProfitRatio may be cut while positions are open (their reserve shrinks, their cap does not)",
        "contracts/PerpEngine.sol",
        "if (open && params.maxProfitRatioWad < c.p.maxProfitRatioWad) {",
        "if (false) {",
    ),
    Mutant(
        "reserve-rounds-down",
        "a side's reserve is rounded down, below the capped profit it must cover",
        "contracts/libraries/PerpMath.sol",
        "return sideCostWad.mulDivUp(maxProfitRatioWad, WAD);",
        "return sideCostWad.mulDivDown(maxProfitRatioWad, WAD);",
    ),
    Mutant(
        "last-shares-leave-open-book",
        "every share can be redeemed while the pool backs open positions (their outcome is left to no one)",
        "contracts/LeverVault.sol",
        "return shares == supply && engine.totalReserveWad() != 0;",
        "return false;",
    ),
    Mutant(
        "self-liquidation-rewarded",
        "an owner liquidating its own account in debt is paid the reward out of the pool's share",
        "contracts/PerpEngine.sol",
        "own ? 0 : LiquidationMath.rewardWad(r.closedNotionalWad, lp).toTokenDown(_tokenScale),",
        "LiquidationMath.rewardWad(r.closedNotionalWad, lp).toTokenDown(_tokenScale),",
    ),
    # Funding, fees, parameters.
    Mutant(
        "funding-to-dust",
        "a dust receiver earns more per unit than the payers pay",
        "contracts/libraries/PerpMath.sol",
        "if (receiverOiWad <= payerOiWad) return payerDeltaWad;",
        "if (receiverOiWad == 0) return payerDeltaWad;",
    ),
    Mutant(
        "funding-sign-inverted",
        "the paying side's index falls instead of rising",
        "contracts/PerpEngine.sol",
        "s.longIndexWad += payer.toInt256().toInt128();",
        "s.longIndexWad -= payer.toInt256().toInt128();",
    ),
    Mutant(
        "param-change-at-once",
        "a risk parameter change applies at once instead of ramping in",
        "contracts/PerpEngine.sol",
        "if (elapsed >= PARAM_RAMP_DURATION) return WAD;",
        "if (elapsed >= 0) return WAD;",
    ),
    Mutant(
        "credit-rounds-up",
        "a trader's realised profit rounds up to token units instead of down",
        "contracts/libraries/FixedPointMath.sol",
        "if (wad >= 0) return int256(uint256(wad) / scale);",
        "if (wad >= 0) return int256(divUp(uint256(wad), scale));",
    ),
    Mutant(
        "protocol-fee-cut-lost",
        "the protocol's share of a fee is taken from the trader but booked nowhere",
        "contracts/LeverVault.sol",
        "if (protocolCut > 0) _protocolFees += protocolCut.toUint96();",
        "if (protocolCut > 0) _protocolFees += 0;",
    ),
    # Margin and liquidation.
    Mutant(
        "withdraw-without-margin-check",
        "withdrawMargin skips the engine's margin (and owner) check",
        "contracts/LeverVault.sol",
        "engine.checkWithdrawal(accountId, msg.sender, margin);",
        "// engine.checkWithdrawal(accountId, msg.sender, margin);",
    ),
    Mutant(
        "initial-margin-halved",
        "an increase only needs half the initial margin",
        "contracts/PerpEngine.sol",
        "uint256(c.p.maxLeverage) * WAD);\n        }\n        if (a.equityWad < int256(a.initialMarginWad)) {",
        "uint256(c.p.maxLeverage) * WAD);\n        }\n        if (a.equityWad < int256(a.initialMarginWad) / 2) {",
    ),
    Mutant(
        "healthy-accounts-liquidatable",
        "accounts are liquidated below 2x maintenance margin",
        "contracts/PerpEngine.sol",
        "if (a.equityWad >= int256(a.maintenanceMarginWad)) return r;\n        // Below maintenance",
        "if (a.equityWad >= 2 * int256(a.maintenanceMarginWad)) return r;\n        // Below maintenance",
    ),
    Mutant(
        "reward-cap-removed",
        "the keeper reward is not capped at maxReward",
        "contracts/libraries/LiquidationMath.sol",
        "return reward < p.maxRewardWad ? reward : p.maxRewardWad;",
        "return reward;",
    ),
    Mutant(
        "reward-floor-not-from-insurance",
        "the keeper of an underwater account is paid its floor out of nothing",
        "contracts/LeverVault.sol",
        "            insurance -= topUp;\n",
        "\n",
    ),
    Mutant(
        "bad-debt-not-charged-to-insurance",
        "bad debt covered by insurance leaves the insurance ledger untouched",
        "contracts/LeverVault.sol",
        "            insurance -= byInsurance;\n",
        "\n",
    ),
    Mutant(
        "oi-not-decremented",
        "open interest never decreases when positions shrink or close",
        "contracts/PerpEngine.sol",
        "sideOi = uint256(s.longOpenInterestWad) - oldSize + t.newSizeWad.abs();",
        "sideOi = uint256(s.longOpenInterestWad) + (t.increasing ? t.newSizeWad.abs() - oldSize : 0);",
    ),
    Mutant(
        "pause-does-not-stop-increases",
        "a paused engine still lets positions grow",
        "contracts/PerpEngine.sol",
        "            _requireNotPaused();\n",
        "\n",
    ),
)


# Equivalent mutants: changes no state the protocol can reach tells apart, so no test can catch
# them. They are listed (and their text kept in place by tests/unit/test_mutants_apply.py), not
# scored. `profit-not-scaled-by-coverage` removes the coverage rule, which applies only when the
# pool's assets are below the total reserve; the pool never gets there: a profit paid is at most
# its position's cap (cost x maxProfitRatio, floored) while the reserve it releases is the same
# product ceiled; a liquidation credits the pool the loss and takes back only what was not
# collected; redemptions take only free assets; a maxProfitRatio raise beyond the pool is refused
# and a cut is refused while positions are open. Each premise has a mutant above that the suite
# catches, and the fuzz machine checks the conclusion (`reserves_cover_profits`) after every step.
EQUIVALENT = (
    Mutant(
        "profit-not-scaled-by-coverage",
        "profits are paid in full when the pool holds less than the reserve (first closer wins)",
        "contracts/libraries/PerpMath.sol",
        "if (valueWad_ <= 0 || poolWad >= totalReserveWad) return valueWad_;",
        "return valueWad_;",
    ),
)

NAMES = {m.name for m in MUTANTS}


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
        [sys.executable, "-m", "pytest", "tests/fuzz", "-p", "no:ape_test", "-n", "2", "-q", "-x", "--tb=line"],
        check=False,
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    # Exit 1: a test failed. Exit 2 with failures: xdist interrupted the other shard after the first.
    failed = done.returncode == 1 or (done.returncode == 2 and "FAILED tests/fuzz/" in done.stdout)
    reason = next((line.strip() for line in done.stdout.splitlines() if "Error" in line or "Violation" in line), "")
    # Caught means a check of the suite failed (a mismatch with the ghost or an invariant), not the
    # run itself (a missing build, a crash): that is an error of the harness, never a catch.
    if (done.returncode != 0 and not failed) or (failed and not ("AssertionError" in reason or "Violation" in reason)):
        raise SystemExit(f"the fuzz run could not run (exit {done.returncode}):\n{done.stdout[-3000:]}")
    return failed, reason[:300]


def main(names: list[str]) -> int:
    chosen = [m for m in MUTANTS if not names or m.name in names]
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], check=False, cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    results = []
    for m in chosen:
        started = time.perf_counter()
        try:
            artifacts = build_mutant(m, ROOT / "build" / "mutants" / m.name)
        except SystemExit as exc:  # reported, and the others still run
            print(f"ERROR    {m.name}: {str(exc)[:2000]}", flush=True)
            results.append({"name": m.name, "what": m.what, "caught": False, "by": "does not build", "commit": commit})
            continue
        caught, reason = fuzz(artifacts)
        seconds = round(time.perf_counter() - started, 1)
        print(f"{'caught  ' if caught else 'SURVIVED'} {m.name:36} {seconds:6.1f} s  {reason}", flush=True)
        results.append(
            {"name": m.name, "what": m.what, "caught": caught, "by": reason, "seconds": seconds, "commit": commit}
        )
    out = ROOT / "build" / "bench" / "mutants.json"
    if names and out.exists():  # a rerun of some: the others keep their last result (and its commit)
        rerun = {r["name"] for r in results}
        kept = [r for r in json.loads(out.read_text())["mutants"] if r["name"] in NAMES and r["name"] not in rerun]
        order = [m.name for m in MUTANTS]
        results = sorted(kept + results, key=lambda r: order.index(r["name"]))
    report = {
        "total": len(results),
        "caught": sum(r["caught"] for r in results),
        "mutants": results,
        "equivalent": [{"name": m.name, "what": m.what} for m in EQUIVALENT],  # not scored: see EQUIVALENT
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"{report['caught']}/{report['total']} mutants caught -> {out.relative_to(ROOT)}")
    return 0 if report["caught"] == report["total"] else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
