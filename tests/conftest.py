"""Shared fixtures: one protocol deployed per session; ape snapshots the chain around each test."""

from __future__ import annotations

from typing import Any

import pytest
from harness import Harness

from lever.config import load_network_config
from lever.deploy import Protocol, deploy_protocol

POOL_USDC = 1_000_000 * 10**6


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
def keeper(accounts: Any) -> Any:
    return accounts[8]


@pytest.fixture(scope="session")
def stranger(accounts: Any) -> Any:
    return accounts[9]


@pytest.fixture(scope="session")
def config() -> Any:
    return load_network_config("local")


@pytest.fixture(scope="session")
def protocol(project: Any, deployer: Any, config: Any) -> Protocol:
    return deploy_protocol(project, deployer, config)


@pytest.fixture(scope="session")
def h(protocol: Protocol, chain: Any, keeper: Any, lp: Any, config: Any) -> Harness:
    """The test harness, with a $1M pool funded by `lp` through the asynchronous flow."""
    harness = Harness(protocol, chain, keeper, config)
    harness.publish_all()
    harness.lp_deposit(lp, POOL_USDC)
    return harness


@pytest.fixture(autouse=True)
def _harness_isolation(request: pytest.FixtureRequest) -> Any:
    """ape restores the chain after each test; the harness's own state (the pull oracle's
    publications, current prices) is restored with it."""
    if "h" not in request.fixturenames:
        yield
        return
    h = request.getfixturevalue("h")
    saved = h.snapshot()
    yield
    h.restore(saved)
