"""The keeper's tests: pure ones (`pure`, no node) and ones on Anvil with a real price service.

`lever.priceservice` runs in this process (uvicorn in a thread, one for the session) and serves the
harness's own price book: every price a test publishes through the harness is what the keeper
reads from the service, as it reads Pyth's Hermes on a live network.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "pure: needs no node (python -m pytest tests/keeper -p no:ape_test -m pure)")


@pytest.fixture(scope="session")
def _price_server() -> Iterator[Any]:
    from lever.priceservice import PriceState, Server
    from lever.pyth import PriceBook

    state = PriceState(PriceBook(), {}, clock=lambda: 0)  # the book is the test's (see `price_service`)
    server = Server(state)
    url = server.start()
    yield state, url
    server.stop()


class PriceService:
    """The running price service and the book it serves."""

    def __init__(self, state: Any, url: str):
        self.state, self.url = state, url


@pytest.fixture
def price_service(h: Any, _price_server: Any) -> PriceService:
    """The price service, serving this test's price book (the harness restores its own after
    each test, so the service is pointed at it again for every test)."""
    state, url = _price_server
    state.book = h.book
    return PriceService(state, url)


@pytest.fixture(scope="session")
def bot(accounts: Any) -> Any:
    """The keeper's signer (the harness settles with `keeper`, accounts[8]; this one is apart)."""
    return accounts[7]


@pytest.fixture
def make_keeper(h: Any, price_service: PriceService, bot: Any) -> Callable[..., Any]:
    """Builds a keeper on the test's chain and price service; `KeeperConfig` fields by keyword."""
    from lever.chain import ProtocolReader
    from lever.hermes import HermesClient
    from lever.keeper.core import KeeperConfig
    from lever.keeper.runner import Keeper
    from lever.keeper.wiring import connect

    def build(signer: Any = None, rpc_url: str | None = None, prices_url: str | None = None, **config: Any) -> Any:
        if rpc_url is None:
            w3 = h.chain.provider.web3
        else:  # as `lever keeper run --rpc-url` connects
            w3 = connect(rpc_url, timeout=5.0)
        reader = ProtocolReader(w3, h.reader.addresses)
        config.setdefault("start_block", h.p.deploy_block)
        config.setdefault("stuck_after", 10.0)
        return Keeper(
            reader,
            HermesClient(prices_url or price_service.url, timeout=2.0),
            str((signer or bot).private_key),
            KeeperConfig(**config),
        )

    return build


@pytest.fixture
def node_uri(chain: Any) -> str:
    """The node's HTTP endpoint; the in-process EthTester chain has none, so tests using it skip there."""
    if chain.provider.name not in ("foundry", "hardhat"):
        pytest.skip("needs a node reachable over HTTP (Anvil or Hardhat)")
    return str(chain.provider.uri)
