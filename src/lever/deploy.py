"""Deploys and wires the whole protocol through ape. Used by `scripts/deploy.py` and the tests."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from lever.config import NetworkConfig
from lever.units import to_wad


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
    oracle: Any
    vault: Any
    engine: Any
    liquidator: Any
    deployer: Any
    feeds: dict[str, Any] = field(default_factory=dict)
    markets: dict[str, int] = field(default_factory=dict)
    deploy_block: int = 0


def create_account(engine: Any, owner: Any) -> int:
    """Creates an account for `owner` and returns its id (read from the event: a receipt's
    `return_value` is not reliable on every provider)."""
    receipt = engine.createAccount(sender=owner)
    return int(receipt.events.filter(engine.AccountCreated)[0].accountId)


def deploy_protocol(project: Any, deployer: Any, config: NetworkConfig) -> Protocol:
    """Deploys token (mock unless configured), oracle adapter, vault, engine and every market.

    Roles: the deployer holds admin, risk, pauser and oracle roles; the liquidator holds the
    engine's liquidator role; the engine is the vault's module.
    """
    tx = {"sender": deployer}
    collateral = config.collateral
    if collateral.address:
        token = project.MockToken.at(collateral.address)
    else:
        token = project.MockToken.deploy(collateral.name, collateral.symbol, collateral.decimals, **tx)
    oracle = project.OracleAdapter.deploy(deployer, **tx)
    vault = project.LeverVault.deploy(token, deployer, to_wad(config.vault.protocol_fee_share), **tx)
    engine = project.PerpEngine.deploy(vault, oracle, deployer, **tx)
    vault.setEngine(engine, **tx)
    liquidator = project.Liquidator.deploy(engine, deployer, config.liquidation.params(), **tx)
    engine.grantRole(engine.LIQUIDATOR_ROLE(), liquidator, **tx)
    protocol = Protocol(
        token=token, oracle=oracle, vault=vault, engine=engine, liquidator=liquidator, deployer=deployer
    )
    for name, market in config.markets.items():
        if market.feed:
            feed = project.MockPriceFeed.at(market.feed)
        else:
            feed = project.MockPriceFeed.deploy(market.feed_decimals, name, market.feed_answer(), deployer, **tx)
        oracle.setFeed(feed, config.oracle.feed_params(), **tx)
        receipt = engine.createMarket(market_key(name), market.params(feed.address), **tx)
        protocol.feeds[name] = feed
        protocol.markets[name] = int(receipt.events.filter(engine.MarketCreated)[0].marketId)
    protocol.deploy_block = receipt.block_number
    return protocol
