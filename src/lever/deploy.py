"""Deploys and wires the whole protocol through ape. Used by `scripts/deploy.py` and the tests."""

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


def create_address(deployer: str, nonce: int) -> str:
    """The address a CREATE from `deployer` at `nonce` deploys to."""
    return to_checksum_address(keccak(rlp.encode([bytes.fromhex(deployer[2:]), nonce]))[12:])


def deploy_core(project: Any, deployer: Any, token: Any, oracle: Any, fee_share_wad: int, liquidation: tuple[int, ...]) -> tuple[Any, Any, Any]:
    """Vault, engine and liquidator, wired through immutables: each is deployed knowing the
    address the next one will get (three consecutive nonces of the deployer)."""
    nonce = deployer.nonce
    engine_address = create_address(deployer.address, nonce + 1)
    liquidator_address = create_address(deployer.address, nonce + 2)
    vault = project.LeverVault.deploy(token, deployer, fee_share_wad, engine_address, sender=deployer)
    engine = project.PerpEngine.deploy(vault, oracle, liquidator_address, deployer, sender=deployer)
    liquidator = project.Liquidator.deploy(engine, deployer, liquidation, sender=deployer)
    if (engine.address, liquidator.address) != (engine_address, liquidator_address):
        raise DeploymentError("the deployer sent another transaction during deployment; deploy again")
    return vault, engine, liquidator


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
    """Deploys token (mock unless configured, or `token` if given), oracle adapter, vault,
    engine and every market.

    Roles: the deployer holds admin, risk, pauser and oracle roles. The vault trusts the engine
    and the engine trusts the liquidator through immutables set at deployment.
    """
    tx = {"sender": deployer}
    step = progress or (lambda _: None)
    collateral = config.collateral
    step("collateral token")
    if token is None and collateral.address:
        token = project.MockToken.at(collateral.address)
    elif token is None:
        token = project.MockToken.deploy(collateral.name, collateral.symbol, collateral.decimals, **tx)
    step("oracle adapter")
    oracle = project.OracleAdapter.deploy(deployer, **tx)
    step("vault, engine, liquidator")
    vault, engine, liquidator = deploy_core(
        project, deployer, token, oracle, to_wad(config.vault.protocol_fee_share), config.liquidation.params()
    )
    protocol = Protocol(
        token=token, oracle=oracle, vault=vault, engine=engine, liquidator=liquidator, deployer=deployer
    )
    for name, market in config.markets.items():
        step(f"market {name}")
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


def deployment_record(protocol: Protocol, chain_id: int, network: str, config: NetworkConfig) -> Deployment:
    """The `deployments/<chain-id>.json` record of a deployed protocol."""
    return Deployment(
        chain_id=chain_id,
        network=network,
        block=protocol.deploy_block,
        deployer=str(protocol.deployer.address),
        contracts={
            "token": protocol.token.address,
            "oracle": protocol.oracle.address,
            "vault": protocol.vault.address,
            "engine": protocol.engine.address,
            "liquidator": protocol.liquidator.address,
        },
        feeds={name: feed.address for name, feed in protocol.feeds.items()},
        markets=dict(protocol.markets),
        parameters=config.model_dump(mode="json"),
    )
