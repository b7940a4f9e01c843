"""Deploys and wires the whole protocol through ape. Used by `lever deploy`, the demo and the tests."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import rlp
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

from lever.config import NetworkConfig
from lever.deployments import Deployment
from lever.errors import DeploymentError
from lever.units import to_scaled, to_wad

RISK_ROLE = keccak(text="RISK_ROLE")
DEFAULT_ADMIN_ROLE = b"\x00" * 32
# The modules whose risk parameters the timelock governs.
GOVERNED = ("oracle", "vault", "engine", "order_book", "liquidator")


def market_key(name: str) -> bytes:
    """A market name as the engine stores it (bytes32, right-padded)."""
    raw = name.encode()
    if len(raw) > 32:
        raise ValueError(f"market name longer than 32 bytes: {name}")
    return raw.ljust(32, b"\0")


@dataclass
class Protocol:
    """Handles to a deployed protocol (ape contract instances)."""

    token: Any
    pyth: Any
    oracle: Any
    vault: Any
    engine: Any
    order_book: Any
    liquidator: Any
    timelock: Any
    deployer: Any
    feeds: dict[str, Any] = field(default_factory=dict)  # market name -> reference feed
    price_ids: dict[str, bytes] = field(default_factory=dict)  # market name -> pull-oracle price id
    markets: dict[str, int] = field(default_factory=dict)
    deploy_block: int = 0

    def contracts(self) -> dict[str, str]:
        names = ("token", "pyth", "oracle", "vault", "engine", "order_book", "liquidator", "timelock")
        return {name: str(getattr(self, name).address) for name in names}


def create_address(deployer: str, nonce: int) -> str:
    """The address a CREATE from `deployer` at `nonce` deploys to."""
    return to_checksum_address(keccak(rlp.encode([bytes.fromhex(deployer[2:]), nonce]))[12:])


def deploy_core(
    project: Any, deployer: Any, token: Any, oracle: Any, config: NetworkConfig
) -> tuple[Any, Any, Any, Any]:
    """Vault, engine, order book and liquidator, wired through immutables: each is deployed
    knowing the addresses the others will get (four consecutive nonces of the deployer)."""
    nonce = deployer.nonce
    engine_at, book_at, liquidator_at = (create_address(deployer.address, nonce + i) for i in (1, 2, 3))
    decimals = config.collateral.decimals
    vault = project.LeverVault.deploy(
        token,
        deployer,
        to_wad(config.vault.protocol_fee_share),
        config.lp.params(decimals),
        engine_at,
        book_at,
        oracle,
        sender=deployer,
    )
    engine = project.PerpEngine.deploy(vault, oracle, book_at, liquidator_at, deployer, sender=deployer)
    book = project.OrderBook.deploy(engine, vault, oracle, deployer, config.orders.settings(decimals), sender=deployer)
    liquidator = project.Liquidator.deploy(engine, oracle, deployer, config.liquidation.params(), sender=deployer)
    if (engine.address, book.address, liquidator.address) != (engine_at, book_at, liquidator_at):
        raise DeploymentError("the deployer sent another transaction during deployment; deploy again")
    return vault, engine, book, liquidator


def create_account(engine: Any, owner: Any) -> int:
    """Creates an account for `owner` and returns its id (read from the event: a receipt's
    `return_value` is not reliable on every provider)."""
    receipt = engine.createAccount(sender=owner)
    return int(receipt.events.filter(engine.AccountCreated)[0].accountId)


def deploy_protocol(
    project: Any,
    deployer: Any,
    config: NetworkConfig,
    progress: Callable[[str], None] | None = None,
    token: Any = None,
) -> Protocol:
    """Deploys token (mock unless configured), pull oracle (MockPyth unless configured), oracle
    adapter, vault, engine, order book, liquidator, every market, and the timelock that then
    holds every risk role.

    Roles: the timelock holds `RISK_ROLE` and `DEFAULT_ADMIN_ROLE` on every module (parameter
    changes are scheduled, public for `timelock_delay`, then executed); the deployer keeps the
    operational roles (`PAUSER_ROLE`, `ORACLE_ROLE`) and proposes and executes on the timelock.
    """
    tx = {"sender": deployer}
    step = progress or (lambda _: None)
    collateral = config.collateral
    step("collateral token")
    if token is None and collateral.address:
        token = project.MockToken.at(collateral.address)
    elif token is None:
        token = project.MockToken.deploy(collateral.name, collateral.symbol, collateral.decimals, **tx)
    step("pull oracle")
    if config.pyth.address:
        pyth = project.LocalPyth.at(config.pyth.address)
    else:
        pyth = project.LocalPyth.deploy(config.pyth.valid_time_period, config.pyth.update_fee_wei, **tx)
    step("oracle adapter")
    oracle = project.OracleAdapter.deploy(pyth, deployer, **tx)
    step("vault, engine, order book, liquidator")
    vault, engine, book, liquidator = deploy_core(project, deployer, token, oracle, config)
    protocol = Protocol(token, pyth, oracle, vault, engine, book, liquidator, None, deployer)
    receipt = None
    for name, market in config.markets.items():
        step(f"market {name}")
        if market.feed:
            feed = project.MockPriceFeed.at(market.feed)
        else:
            feed = project.MockPriceFeed.deploy(market.feed_decimals, name, market.feed_answer(), deployer, **tx)
        market_id = len(protocol.markets)
        oracle.configure(market_id, config.oracle.config(feed.address, market.pyth_id()), **tx)
        # The engine numbers markets in creation order; it refuses one whose oracle is not configured.
        receipt = engine.createMarket(market_key(name), market.params(), **tx)
        protocol.feeds[name] = feed
        protocol.price_ids[name] = market.pyth_id()
        protocol.markets[name] = market_id
    if config.oracle.sequencer_feed:
        oracle.setSequencerFeed(config.oracle.sequencer_feed, config.oracle.sequencer_grace, **tx)
    step("timelock")
    protocol.timelock = project.LeverTimelock.deploy(config.governance.timelock_delay, [deployer], [deployer], **tx)
    for name in GOVERNED:
        module = getattr(protocol, name)
        module.grantRole(RISK_ROLE, protocol.timelock, **tx)
        module.grantRole(DEFAULT_ADMIN_ROLE, protocol.timelock, **tx)
        module.revokeRole(RISK_ROLE, deployer, **tx)
        receipt = module.renounceRole(DEFAULT_ADMIN_ROLE, deployer, **tx)
    protocol.deploy_block = receipt.block_number if receipt is not None else 0
    return protocol


def deployment_record(protocol: Protocol, chain_id: int, network: str, config: NetworkConfig) -> Deployment:
    """The `deployments/<chain-id>.json` record of a deployed protocol."""
    return Deployment(
        chain_id=chain_id,
        network=network,
        block=protocol.deploy_block,
        deployer=str(protocol.deployer.address),
        contracts=protocol.contracts(),
        feeds={name: feed.address for name, feed in protocol.feeds.items()},
        price_ids={name: "0x" + pid.hex() for name, pid in protocol.price_ids.items()},
        markets=dict(protocol.markets),
        parameters=config.model_dump(mode="json"),
    )


def to_token_units(amount: object, decimals: int) -> int:
    return to_scaled(str(amount), decimals)
