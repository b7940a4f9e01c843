"""The `lever` command line, through click's CliRunner, against an Anvil of its own with the price
service (`lever price serve`) and, where a test says so, the keeper (`lever keeper run`) running
beside it as separate processes. A trader follows the order lifecycle from the command line alone;
a user's mistake is one `error:` line, a non-zero exit, and nothing moved."""

from __future__ import annotations

import ast
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from eth_account import Account
from nodes import REPO, anvil, background, free_port, wait_for

from lever import app
from lever import cli as cli_module
from lever.chain import Addresses, ProtocolReader
from lever.cli import cli
from lever.deployments import load_deployment
from lever.errors import ConfigError

Lever = Callable[..., str]
USDC = 10**6


@dataclass(frozen=True)
class World:
    node: str
    prices: str
    records: Path
    reader: ProtocolReader

    def mined(self) -> bool:
        """A block now: the chain's clock moves as on a live chain (Anvil makes blocks only for transactions)."""
        self.reader.w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
        return True

    def address(self, n: int) -> str:
        return str(app.resolve_signer(f"test:{n}").address)

    def wallet(self, n: int) -> int:
        return int(self.reader.token.functions.balanceOf(self.address(n)).call())

    def margin(self, account: int) -> int:
        return int(self.reader.vault.functions.marginOf(account).call())

    def holdings(self) -> dict[str, Any]:
        """Every test account's tokens, lvLP and nonce, every Lever account's margin, the vault's tokens."""
        r, w3 = self.reader, self.reader.w3
        people = [self.address(n) for n in range(10)]
        return {
            "tokens": [r.token.functions.balanceOf(a).call() for a in people],
            "shares": [r.vault.functions.balanceOf(a).call() for a in people],
            "nonces": [w3.eth.get_transaction_count(a) for a in people],
            "margins": [self.margin(i) for i in range(1, r.account_count() + 1)],
            "vault": r.token.functions.balanceOf(r.vault.address).call(),
        }


@pytest.fixture(scope="module")
def world(chain: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """A deployment made with `lever deploy` on an Anvil of the module's own, and `lever price
    serve` for it. Runs in the Anvil session only (the commands talk to their own node either way)."""
    if chain.provider.name != "foundry":
        pytest.skip("runs in the Anvil session")
    records = tmp_path_factory.mktemp("deployments")
    with pytest.MonkeyPatch.context() as mp, anvil() as node:
        mp.setenv("LEVER_DEPLOYMENTS_DIR", str(records))
        deployed = CliRunner().invoke(cli, ["deploy", "--network", node])
        assert deployed.exit_code == 0, deployed.output
        prices = f"http://127.0.0.1:{free_port()}"
        serve = [
            "price",
            "serve",
            "--port",
            prices.rsplit(":", 1)[1],
            "--rpc-url",
            node,
            "--deployment",
            str(records / "31337.json"),
        ]
        with background(serve, records / "prices.log"):
            wait_for(lambda: _answers(prices + "/lever/feeds"), "the price service")
            from web3 import Web3

            reader = ProtocolReader(Web3(Web3.HTTPProvider(node)), Addresses.from_deployment(load_deployment(31337)))
            yield World(node, prices, records, reader)


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture
def lever(world: World) -> Lever:
    """`lever(*args, code=0)`: one command on the module's chain and price service. A failure must
    be exactly one `error: ...` line (no traceback, no usage text) and the expected exit code."""
    runner = CliRunner()

    def run(*args: str, code: int = 0) -> str:
        result = runner.invoke(cli, [*args, "--network", world.node, "--price-service", world.prices])
        assert result.exit_code == code, (result.output, result.exception)
        assert isinstance(result.exception, SystemExit | None), f"an unhandled {result.exception!r}"
        if code:
            assert result.output.startswith("error: ") and result.output.count("\n") == 1, result.output
        return str(result.output)

    return run


def test_a_trader_follows_the_order_lifecycle_from_the_command_line(world: World, lever: Lever) -> None:
    lever("token", "mint", "1000000", "--account", "test:1")
    out = lever("lp", "deposit", "500000", "--settle", "--account", "test:1")
    assert "claimed: deposited 500,000.000000 for 500,000 lvLP" in out
    assert int(world.reader.vault.functions.poolAssets().call()) == 500_000 * USDC

    lever("token", "mint", "5000", "--account", "test:2")
    assert lever("margin", "deposit", "1000", "--account", "test:2").startswith("created account 1: deposited 1000")
    assert "ETH-USD set to 3000 USD" in lever("price", "set", "ETH-USD", "3000")
    out = lever("trade", "open", "ETH-USD", "long", "1", "--settle", "--account", "test:2")
    assert "order 8: ETH-USD +1 on account 1, executor fee 0.5 (from the margin)" in out
    assert "order 8 filled: ETH-USD +1 at 3,000.00" in out and f"to {world.address(2)}" in out  # settled it itself
    assert "position ETH-USD +1 at 3,000.00; account 1" in out and "liquidation price" in out
    assert world.reader.account(1).positions[0].size == 10**18

    # An order id is the account's id * 8 + a slot: the market order's slot is free again.
    assert "stop order 8: ETH-USD -1 at 2800 (executor fee 0.5 from the margin)" in lever(
        "order", "stop", "ETH-USD", "2800", "--account", "test:2"
    )
    assert "limit order 9: ETH-USD +0.5 at 2500" in lever(
        "order", "limit", "ETH-USD", "2500", "--size", "0.5", "--account", "test:2"
    )
    assert "take-profit order 10: ETH-USD -0.25 at 3500" in lever(
        "order", "take-profit", "ETH-USD", "3500", "--size", "-0.25", "--account", "test:2"
    )
    listed = lever("order", "list", "--account", "test:2").splitlines()
    assert [line.split(":")[0] for line in listed] == ["8", "9", "10"]
    assert "stop ETH-USD -1 trigger 2,800" in listed[0] and "limit ETH-USD +0.5 trigger 2,500" in listed[1]
    assert "take-profit ETH-USD -0.25 trigger 3,500" in listed[2]
    margin = world.margin(1)
    assert "cancelled order 9; its executor fee 0.500000 went to the margin" in lever(
        "order", "cancel", "9", "--account", "test:2"
    )
    assert world.margin(1) == margin + USDC // 2

    out = lever("trade", "close", "ETH-USD", "--settle", "--account", "test:2")
    assert "filled: ETH-USD -1 at" in out and "no position in ETH-USD any more" in out
    assert world.reader.account(1).positions == {}
    assert lever("order", "list", "--account", "test:2") == "no pending orders\n"  # stop and take-profit went with it
    left = world.margin(1)
    wallet = world.wallet(2)
    assert "account 1: withdrew 100" in lever("margin", "withdraw", "100", "--account", "test:2")
    assert (world.margin(1), world.wallet(2)) == (left - 100 * USDC, wallet + 100 * USDC)

    out = lever("lp", "redeem", "1000", "--settle", "--account", "test:1")
    assert "requested a redemption of 1000 (" in out and "claimed: redeemed" in out and "for 1,000 lvLP" in out
    assert "pending: a keeper settles it" in lever("lp", "deposit", "10", "--wait", "0", "--account", "test:1")
    assert "has nothing to claim" in lever("lp", "claim", "--account", "test:1", code=1)
    state = json.loads(lever("status", "--json"))
    assert state["solvent"] is True and state["accounts"] == [] and state["pending_orders"] == 0


def test_orders_commit_without_settle_are_filled_by_the_keeper(world: World, lever: Lever) -> None:
    """`trade open` without --settle waits for a keeper (`lever keeper run`, signing as test:9:
    the flag means what it means for every command); an LP request left pending is settled by
    it too, then claimed with `lp claim`."""
    keeper = [
        "keeper",
        "run",
        "--rpc-url",
        world.node,
        "--price-service",
        world.prices,
        "--account",
        "test:9",
        "--deployment",
        str(world.records / "31337.json"),
        "--metrics-port",
        "0",
        "--poll-interval",
        "0.5",
    ]
    with background(keeper, world.records / "keeper.log"):
        lever("token", "mint", "2000", "--account", "test:3")
        out = lever("trade", "open", "ETH-USD", "short", "0.5", "--margin", "500", "--account", "test:3")
        assert "deposited 500.000000; order" in out and f"executor fee 0.500000 to {world.address(9)}" in out
        account = int(out.split("on account ")[1].split(",")[0])
        assert world.reader.account(account).positions[0].size == -(10**18) // 2
        out = lever("trade", "close", "ETH-USD", "--account", "test:3")
        assert "filled: ETH-USD +0.5 at" in out and f"to {world.address(9)}" in out

        lever("token", "mint", "1001", "--account", "test:4")
        assert "pending: a keeper settles it" in lever("lp", "deposit", "1000", "--wait", "0", "--account", "test:4")
        vault = world.reader.vault.functions
        wait_for(
            lambda: world.mined() and int(vault.maxDeposit(world.address(4)).call()) > 0, "the keeper's LP settlement"
        )
        assert "claimed: deposited 1,000.000000 for" in lever("lp", "claim", "--account", "test:4")
        assert int(vault.balanceOf(world.address(4)).call()) > 0


def test_an_executor_fee_the_margin_cannot_cover_comes_from_the_wallet(world: World, lever: Lever) -> None:
    lever("token", "mint", "1", "--account", "test:5")
    out = lever("margin", "deposit", "0.2", "--account", "test:5")
    account = int(out.split("account ")[1].split(":")[0])
    wallet, margin = world.wallet(5), world.margin(account)
    out = lever("order", "limit", "ETH-USD", "2000", "--size", "0.01", "--account", "test:5")
    assert "(executor fee 0.5 from the wallet)" in out
    assert (world.wallet(5), world.margin(account)) == (wallet - USDC // 2, margin)


MISTAKES = [
    (
        ("trade", "open", "DOGE-USD", "long", "1", "--account", "test:2"),
        1,
        "unknown market 'DOGE-USD' (markets: BTC-USD, ETH-USD)",
    ),
    (("trade", "open", "ETH-USD", "long", "abc", "--account", "test:2"), 2, "not a number: 'abc'"),
    (
        ("trade", "open", "ETH-USD", "sideways", "1", "--account", "test:2"),
        2,
        "'sideways' is not one of 'long', 'short'",
    ),
    (
        ("trade", "open", "ETH-USD", "long", "1", "--margin", "10", "--account", "test:6"),
        1,
        "holds 0.000000 mUSDC, needs 10",
    ),
    (
        ("trade", "open", "ETH-USD", "long", "100", "--account", "test:2"),
        1,
        "would not fill at the latest price (nothing was sent): LeverageTooHigh: leverage",
    ),
    (
        ("trade", "open", "ETH-USD", "long", "0.01", "--executor-fee", "50", "--account", "test:2"),
        1,
        "committing ETH-USD: ExecutorFeeOutOfBounds: the executor fee 50.000000 must be between 0.050000 and 20.000000",
    ),
    (
        ("trade", "open", "ETH-USD", "long", "0.01", "--margin", "5", "--executor-fee", "0.01", "--account", "test:2"),
        1,
        "committing ETH-USD: ExecutorFeeOutOfBounds: the executor fee 0.010000 must be between 0.050000 and 20.000000",
    ),
    (
        ("order", "stop", "ETH-USD", "2000", "--executor-fee", "21", "--account", "test:2"),
        1,
        "placing a stop order: ExecutorFeeOutOfBounds: the executor fee 21.000000 must be between",
    ),
    (
        ("trade", "open", "ETH-USD", "long", "1", "--account", "test:2", "--account-id", "999"),
        1,
        "account 999 does not exist",
    ),
    (("trade", "close", "BTC-USD", "--account", "test:2"), 1, "account 1 has no position in BTC-USD"),
    (
        ("margin", "withdraw", "99999", "--account", "test:2"),
        1,
        "withdrawing margin: WithdrawExceedsMargin: cannot withdraw 99,999.000000: account 1 has",
    ),
    (("margin", "withdraw", "1", "--account", "test:7"), 1, "has no Lever account"),
    (("margin", "withdraw", "1", "--to", "0xnope", "--account", "test:2"), 1, "bad recipient '0xnope': not an address"),
    (("token", "mint", "5", "--to", "alice"), 1, "bad recipient 'alice': not an address"),
    (("price", "set", "ETH-USD", "2500.123456789"), 1, "bad price: 2500.123456789 has more than 8 decimal places"),
    (("price", "set", "ETH-USD", "0"), 1, "the price must be above zero"),
    (("order", "cancel", "12345", "--account", "test:2"), 1, "no pending order 12345"),
    (("lp", "redeem", "all", "--account", "test:7"), 1, "holds no lvLP shares"),
    (("lp", "deposit", "lots", "--account", "test:1"), 1, "not a number: 'lots'"),
    (("status", "--account", "nosuchalias"), 1, "no ape account named 'nosuchalias'"),
]


@pytest.mark.parametrize(("args", "code", "message"), MISTAKES, ids=[" ".join(m[0][:3]) for m in MISTAKES])
def test_a_mistake_is_one_line_a_nonzero_exit_and_nothing_moves(
    world: World, lever: Lever, args: tuple[str, ...], code: int, message: str
) -> None:
    if world.reader.account_count() == 0:  # run alone: the trader of the lifecycle has an account
        lever("token", "mint", "100", "--account", "test:2")
        lever("margin", "deposit", "100", "--account", "test:2")
    before = world.holdings()
    out = lever(*args, code=code)
    assert message in out
    assert world.holdings() == before


def test_a_pending_market_order_cannot_be_cancelled_and_the_revert_is_named(world: World, lever: Lever) -> None:
    lever("token", "mint", "600", "--account", "test:8")
    out = lever("trade", "open", "ETH-USD", "long", "0.1", "--margin", "500", "--wait", "0", "--account", "test:8")
    order = out.split("order ")[1].split(":")[0]
    before = world.holdings()
    out = lever("order", "cancel", order, "--account", "test:8", code=1)
    assert (
        f"cancelling order {order}: OrderNotCancellable: order {order} is a pending market order"
        " (or a triggered conditional one)" in out
    )
    assert world.holdings() == before


def test_settling_a_conditional_order_that_has_not_triggered_is_one_line(world: World, lever: Lever) -> None:
    lever("token", "mint", "100", "--account", "test:5")
    lever("margin", "deposit", "100", "--account", "test:5")
    out = lever("order", "limit", "ETH-USD", "1000", "--size", "0.01", "--account", "test:5")
    order = out.split("order ")[1].split(":")[0]
    before = world.holdings()
    out = lever("order", "settle", order, "--account", "test:5", code=1)
    assert f"order {order} is a conditional order waiting for its trigger" in out
    assert world.holdings() == before


def test_no_deployment_a_malformed_record_and_an_unreachable_node_are_one_line(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner = CliRunner()
    monkeypatch.setenv("LEVER_DEPLOYMENTS_DIR", str(tmp_path))
    cases = [
        (["status", "--network", world.node], "no deployment recorded for chain 31337"),
        (["status", "--network", "ethereum:local:nope"], "unknown network 'ethereum:local:nope'"),
        (["status", "--network", "http://127.0.0.1:9"], "http://127.0.0.1:9"),
        (["keeper", "run", "--rpc-url", "http://127.0.0.1:9"], "cannot reach the RPC at http://127.0.0.1:9"),
        (
            [
                "keeper",
                "run",
                "--rpc-url",
                world.node,
                "--deployment",
                str(world.records / "31337.json"),
                "--account",
                "nosuchalias",
            ],
            "no ape account named 'nosuchalias'",
        ),
    ]
    for args, message in cases:
        result = runner.invoke(cli, args)
        assert result.exit_code == 1 and result.output.startswith("error: "), (args, result.output)
        assert result.output.count("\n") == 1 and message in result.output, (args, result.output)
    (tmp_path / "31337.json").write_text("{not json")
    result = runner.invoke(cli, ["status", "--network", world.node])
    assert result.exit_code == 1 and result.output.startswith("error: malformed deployment record")


# --------------------------------------------------------------------------- without a chain


def test_account_means_one_signer_for_the_commands_and_the_keeper(
    accounts: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`test:N` and an ape account alias resolve alike for a command (an ape account) and for the
    keeper (its key, from ape's passphrase variable for a keyfile account)."""
    from ape_accounts.accounts import import_account_from_private_key

    assert Account.from_key(app.private_key("test:4")).address == app.resolve_signer("test:4").address
    assert app.resolve_signer("test:4").address == accounts[4].address
    key = "0x" + "42" * 32
    alias = f"lever-test-{free_port()}"
    imported = import_account_from_private_key(alias, "pass phrase", key)
    try:
        monkeypatch.setenv(f"APE_ACCOUNTS_{alias}_PASSPHRASE", "pass phrase")
        signer = app.resolve_signer(alias, local=False)
        assert signer.address == Account.from_key(key).address == str(imported.address)
        assert app.private_key(alias) == key
        monkeypatch.setenv(f"APE_ACCOUNTS_{alias}_PASSPHRASE", "wrong")
        with pytest.raises(ConfigError, match="wrong passphrase"):
            app.private_key(alias)
    finally:
        imported.keyfile_path.unlink()
    with pytest.raises(ConfigError, match="test accounts exist only on local chains"):
        app.resolve_signer("test:1", local=False)


def test_groups_registered_by_name_load_on_first_use(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(cli_module.GROUPS, "governance", "lever.cli_admin:admin")
    monkeypatch.setattr(cli, "commands", dict(cli.commands))
    assert "governance" not in cli.commands
    result = CliRunner().invoke(cli, ["--help"])
    assert "governance" in result.output and "trade" in result.output
    result = CliRunner().invoke(cli, ["governance", "schedule", "--help"])
    assert result.exit_code == 0 and "Schedule a change" in result.output


def test_the_command_line_is_a_thin_shell_and_the_codebase_sends_two_ways() -> None:
    """cli.py: at most 350 lines, no formulas (nothing from lever.math). Transactions: the
    keeper's runner signs for bots; every other module sends through `app.send` (ape), except
    the deployment itself (`lever.deploy`: ape's `deploy` and the wiring, as the deployer)."""
    source = (REPO / "src" / "lever" / "cli.py").read_text()
    assert len(source.splitlines()) <= 350
    assert "lever.math" not in source and "import math" not in source
    signers, senders = set(), set()
    for path in sorted((REPO / "src" / "lever").rglob("*.py")):
        tree = ast.parse(path.read_text())
        name = str(path.relative_to(REPO / "src"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr in ("sign_transaction", "send_raw_transaction"):
                signers.add(name)
            if isinstance(node, ast.Call) and any(k.arg == "sender" for k in node.keywords):
                target = ast.unparse(node.func)
                if not target.endswith(("app.send", "s.send", "self.send")) and target != "send":
                    senders.add(f"{name}: {target}")
    assert signers == {"lever/keeper/runner.py"}
    assert {sender.split(":")[0] for sender in senders} <= {"lever/deploy.py"}, senders
