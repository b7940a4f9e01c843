"""Shared fixtures: one protocol deployed per session; ape snapshots the chain around each test."""

from __future__ import annotations

from typing import Any

import pytest
from harness import Harness

from lever.config import load_network_config
from lever.deploy import Protocol, deploy_protocol

POOL_USDC = 1_000_000 * 10**6


def _hardhat_reads_custom_errors() -> None:
    """ape-hardhat 0.8.5 (the latest) with web3 7 cannot decode a custom error from a reverted
    transaction: web3 7's `Web3RPCError` carries the node's error as a string, from which the
    plugin cuts the revert data with everything after it (`binascii.Error: Non-hexadecimal
    digit`), so `ape.reverts(SomeError)` fails on Hardhat. Give the plugin the error object it
    expects (the node's JSON-RPC error, a dict); nothing else changes."""
    try:
        from ape_hardhat.provider import HardhatProvider
    except ImportError:
        return
    original = HardhatProvider.get_virtual_machine_error

    def get_virtual_machine_error(self: Any, exception: Exception, **kwargs: Any) -> Any:
        response = getattr(exception, "rpc_response", None)
        if isinstance(response, dict) and isinstance(response.get("error"), dict):
            exception = Exception(response["error"])
        return original(self, exception, **kwargs)

    HardhatProvider.get_virtual_machine_error = get_virtual_machine_error  # type: ignore[method-assign]


_hardhat_reads_custom_errors()


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


_ATTACKS: dict[str, dict[str, Any]] = {}


@pytest.fixture
def attack_log() -> Any:
    """Records an attack's outcome in USDC; `make bench-attacks` writes them all to JSON."""

    def record(name: str, attacker_net: int, honest_loss: int, params: dict[str, Any]) -> None:
        _ATTACKS[name] = {
            "attacker_net_usd": round(attacker_net / 10**6, 6),
            "honest_loss_usd": round(max(0, honest_loss) / 10**6, 6),
            "defended": attacker_net <= 0 and honest_loss <= 10**6,  # within a dollar of rounding
            "params": {k: str(v) for k, v in params.items()},
        }

    return record


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    import json
    import os
    from pathlib import Path

    target = os.environ.get("LEVER_ATTACKS_JSON")
    if target and _ATTACKS:
        path = Path(target)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(
            json.dumps(
                {
                    "attacks": _ATTACKS,
                    "count": len(_ATTACKS),
                    "all_defended": all(a["defended"] for a in _ATTACKS.values()),
                },
                indent=2,
            )
            + "\n"
        )
