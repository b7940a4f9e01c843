"""Shared fixtures: one protocol deployed per session; ape snapshots the chain around each test."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from lever.config import load_network_config
from lever.deploy import Protocol, create_account, deploy_protocol
from lever.units import to_scaled, to_wad

USDC = 10**6
POOL_USDC = 1_000_000 * USDC


@pytest.fixture(scope="session")
def deployer(accounts: Any) -> Any:
    return accounts[0]


@pytest.fixture(scope="session")
def alice(accounts: Any) -> Any:
    return accounts[1]


@pytest.fixture(scope="session")
def bob(accounts: Any) -> Any:
    return accounts[2]


@pytest.fixture(scope="session")
def lp(accounts: Any) -> Any:
    return accounts[3]


@pytest.fixture(scope="session")
def stranger(accounts: Any) -> Any:
    return accounts[9]


@pytest.fixture(scope="session")
def config() -> Any:
    return load_network_config("local")


@pytest.fixture(scope="session")
def protocol(project: Any, deployer: Any, config: Any, lp: Any) -> Protocol:
    p = deploy_protocol(project, deployer, config)
    p.token.mint(lp, POOL_USDC, sender=lp)
    p.token.approve(p.vault, POOL_USDC, sender=lp)
    p.vault.deposit(POOL_USDC, lp, sender=lp)
    return p


@pytest.fixture(scope="session")
def engine(protocol: Protocol) -> Any:
    return protocol.engine


@pytest.fixture(scope="session")
def vault(protocol: Protocol) -> Any:
    return protocol.vault


@pytest.fixture(scope="session")
def token(protocol: Protocol) -> Any:
    return protocol.token


@pytest.fixture(scope="session")
def eth(protocol: Protocol) -> int:
    return protocol.markets["ETH-USD"]


@pytest.fixture(scope="session")
def btc(protocol: Protocol) -> int:
    return protocol.markets["BTC-USD"]


@pytest.fixture(scope="session")
def eth_feed(protocol: Protocol) -> Any:
    return protocol.feeds["ETH-USD"]


def usdc(amount: str | int) -> int:
    return to_scaled(str(amount), 6)


def wad(amount: str | int | Decimal) -> int:
    return to_wad(amount)


@pytest.fixture(scope="session")
def open_account(protocol: Protocol) -> Any:
    """Creates an account for `owner` funded with `margin` USDC; returns its id."""

    def _open(owner: Any, margin: str | int = 10_000) -> int:
        account_id = create_account(protocol.engine, owner)
        amount = usdc(margin)
        if amount:
            protocol.token.mint(owner, amount, sender=owner)
            protocol.token.approve(protocol.vault, amount, sender=owner)
            protocol.vault.depositMargin(account_id, amount, sender=owner)
        return account_id

    return _open


@pytest.fixture(scope="session")
def set_price(protocol: Protocol, deployer: Any) -> Any:
    """Publishes a new human price on a market's mock feed."""

    def _set(market: str, price: str | int) -> None:
        feed = protocol.feeds[market]
        protocol.feeds[market].setPrice(to_scaled(str(price), int(feed.decimals())), sender=deployer)

    return _set


@pytest.fixture(scope="session")
def feed_params(config: Any) -> Any:
    """The configured oracle FeedParams tuple, with fields replaced by keyword."""
    names = ["maxAge", "maxDeviationWad", "ewmaLambdaWad", "refVolatilityWad", "maxVolFactorWad", "factorRisePerDayWad"]

    def _params(**changes: int) -> tuple[int, ...]:
        values = dict(zip(names, config.oracle.feed_params()))
        values.update(changes)
        return tuple(values[n] for n in names)

    return _params


@pytest.fixture(scope="session")
def liquidator(protocol: Protocol) -> Any:
    return protocol.liquidator


@pytest.fixture
def node_uri(chain: Any) -> str:
    """The node's HTTP endpoint; the in-process EthTester chain has none, so tests using it skip there."""
    if chain.provider.name not in ("foundry", "hardhat"):
        pytest.skip("needs a node reachable over HTTP (Anvil or Hardhat)")
    return str(chain.provider.uri)
