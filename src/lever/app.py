"""The operator's shell over ape: connect to a network, find the recorded deployment, resolve a
signer, send a transaction — and turn every failure a user can cause into one `LeverError` line.

The `lever` commands, `ape run deploy`, the demo and the keeper's `--account` all go through here;
`send` is the one way to send a transaction outside the keeper's runner (which signs for bots).
"""

from __future__ import annotations

import contextlib
import getpass
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

from lever.config import NetworkConfig, load_network_config
from lever.deploy import Protocol, deploy_protocol, deployment_record
from lever.deployments import Deployment, load_deployment, record_path, save_deployment
from lever.errors import ConfigError, DeploymentError, LeverError, Reverted
from lever.paths import REPO
from lever.revert import describe

LOCAL_NETWORKS = ("local",)  # ape's name for Anvil, Hardhat and the in-process test chain


@contextlib.contextmanager
def connected(network: str) -> Iterator[Any]:
    """Connects through ape (`ecosystem:network:provider`, or a URL); yields the provider.
    A local Anvil or Hardhat is started by ape if none is running, and stopped on exit."""
    from ape import networks
    from ape.exceptions import ApeException

    try:
        context = networks.parse_network_choice(network)
    except ApeException as exc:
        raise ConfigError(f"unknown network {network!r}: {_first_line(exc)}") from None
    try:
        with context as provider:
            yield provider
    except ApeException as exc:
        if isinstance(exc, LeverError):
            raise
        raise LeverError(f"network {network!r}: {_first_line(exc)}") from None


def project() -> Any:
    """The compiled Lever project (contract types from `.build/`), wherever `lever` runs from."""
    if Path.cwd().resolve() == REPO:
        from ape import project as here

        return here
    from ape import Project

    return Project(REPO)


def is_local(provider: Any) -> bool:
    """Anvil, Hardhat or the in-process chain: by ape's network name, or (for a plain URL) by
    the development chain ids they use."""
    return str(provider.network.name) in LOCAL_NETWORKS or int(provider.chain_id) in (31337, 1337)


@dataclass(frozen=True)
class Signer:
    """Who signs, resolved once from `--account` for every command, the deploy script and the
    keeper: `account` signs through ape (the commands), `private_key()` gives a bot its key."""

    spec: str
    account: Any  # an ape account

    @property
    def address(self) -> str:
        return str(self.account.address)

    def private_key(self) -> str:
        """The raw key. A test account's is public; a keyfile account's is decrypted with the
        passphrase in `APE_ACCOUNTS_<alias>_PASSPHRASE` (ape's own convention), else asked for."""
        key = getattr(self.account, "private_key", None)
        if key is not None:
            return str(key)
        from eth_account import Account

        alias = str(self.account.alias)
        passphrase = os.environ.get(f"APE_ACCOUNTS_{alias}_PASSPHRASE") or getpass.getpass(f"passphrase of {alias}: ")
        try:
            return "0x" + bytes(Account.decrypt(self.account.keyfile, passphrase)).hex()
        except ValueError:
            raise ConfigError(f"wrong passphrase for the ape account {alias!r}") from None


ACCOUNT_HELP = "signer: test:N (ape's N-th test account, local chains) or an ape account alias"


def resolve_signer(spec: str | None, local: bool = True) -> Signer:
    """What `--account` means, everywhere: `test:N` is ape's N-th test account (local chains only);
    any other value is an ape account alias (`ape accounts import ...`). Without one, local chains
    use `test:0`; a live network needs an alias."""
    from ape import accounts
    from ape.exceptions import AccountsError

    if spec is None:
        if not local:
            raise ConfigError("pass --account ALIAS (an ape account) on a live network")
        spec = "test:0"
    if spec.startswith("test:"):
        if not spec[5:].isdigit():
            raise ConfigError(f"bad --account {spec!r}: use test:N")
        if not local:
            raise ConfigError("test accounts exist only on local chains")
        return Signer(spec, accounts.test_accounts[int(spec[5:])])
    try:
        return Signer(spec, accounts.load(spec))
    except (AccountsError, IndexError, KeyError):
        raise ConfigError(f"no ape account named {spec!r} (see `ape accounts list`)") from None


def signer(spec: str | None, provider: Any) -> Any:
    """The ape account that signs for `--account` on the connected chain."""
    return resolve_signer(spec, is_local(provider)).account


def private_key(spec: str) -> str:
    """A bot's key for `--account` (the keeper's flag means what every command's does)."""
    return resolve_signer(spec).private_key()


def send(action: str, fn: Callable[..., Any], *args: Any, decimals: int = 6, **kwargs: Any) -> Any:
    """Sends one transaction (or makes one call): the one way to send outside the keeper's runner.
    A revert (ape finds it while estimating gas, before anything is sent) becomes `Reverted`:
    `<action>: <the contract's error>: <its meaning>`."""
    from ape.exceptions import ApeException, ContractLogicError

    try:
        with _quiet_traces():
            if "sender" in kwargs and "gas" not in kwargs and hasattr(fn, "estimate_gas_cost"):
                # 25% headroom: the transaction lands in a later block than the estimate, where
                # funding accrual or a newly recorded oracle round can cost a little more.
                kwargs["gas"] = int(fn.estimate_gas_cost(*args, **kwargs)) * 5 // 4
            return fn(*args, **kwargs)
    except ContractLogicError as exc:
        name, error_args, meaning = describe(exc, decimals)
        raise Reverted(action, name, meaning, error_args) from None
    except ApeException as exc:
        raise LeverError(f"{action}: {_first_line(exc)}") from None


# --------------------------------------------------------------------------- deployment


def has_code(provider: Any, address: str) -> bool:
    return len(provider.web3.eth.get_code(address)) > 0


def deploy(
    provider: Any,
    deployer: Any,
    config: NetworkConfig,
    fresh: bool = False,
    directory: Path | None = None,
    progress: Callable[[str], None] | None = None,
) -> tuple[Protocol, Path, str | None]:
    """Deploys and records the protocol. Refuses to replace a recorded deployment whose
    contracts are live on this chain unless `fresh`; a record whose contracts are gone (the
    local chain was restarted) is replaced, and the returned note says so."""
    chain_id = int(provider.chain_id)
    path = record_path(chain_id, directory)
    note = None
    if path.exists() and not fresh:
        try:
            existing = load_deployment(chain_id, directory)
        except DeploymentError as exc:
            raise DeploymentError(f"{exc}; pass --fresh to replace it") from None
        if has_code(provider, existing.contracts["engine"]):
            raise DeploymentError(
                f"chain {chain_id} already has a Lever deployment recorded in {path} (engine "
                f"{existing.contracts['engine']}); pass --fresh to deploy a new one and replace the record"
            )
        note = f"replaced {path}: its contracts are not on this chain any more (the chain was reset)"
    protocol = deploy_protocol(project(), deployer, config, progress=progress)
    record = deployment_record(protocol, chain_id, str(provider.network_choice), config)
    return protocol, save_deployment(record, directory), note


def config_for(provider: Any, params: Path | None = None) -> NetworkConfig:
    """The network's parameter file (`config/<network>.toml`; `local` for any development
    chain, also one reached by URL) unless another is given."""
    if params is not None:
        if not params.is_file():
            raise ConfigError(f"no parameter file {params}")
        return load_network_config(params.stem, params.parent)
    return load_network_config("local" if is_local(provider) else str(provider.network.name))


def protocol_from_record(provider: Any, path: Path | None = None) -> tuple[Protocol, Deployment]:
    """Contract handles for the deployment recorded for the connected chain."""
    chain_id = int(provider.chain_id)
    deployment = load_deployment(chain_id, path=path)
    if not has_code(provider, deployment.contracts["engine"]):
        raise DeploymentError(
            f"the deployment recorded for chain {chain_id} is not on this chain (was it restarted?);"
            " run `lever deploy` again"
        )
    p = project()
    c = deployment.contracts
    protocol = Protocol(
        token=p.MockToken.at(c["token"]),
        pyth=p.LocalPyth.at(c["pyth"]),
        oracle=p.OracleAdapter.at(c["oracle"]),
        vault=p.LeverVault.at(c["vault"]),
        engine=p.PerpEngine.at(c["engine"]),
        order_book=p.OrderBook.at(c["order_book"]),
        liquidator=p.Liquidator.at(c["liquidator"]),
        timelock=p.LeverTimelock.at(c["timelock"]),
        deployer=deployment.deployer,
        feeds={name: p.MockPriceFeed.at(address) for name, address in deployment.feeds.items()},
        price_ids={name: bytes.fromhex(pid.removeprefix("0x")) for name, pid in deployment.price_ids.items()},
        markets=dict(deployment.markets),
        deploy_block=deployment.block,
    )
    return protocol, deployment


def market_id(protocol: Protocol, name: str) -> int:
    if name not in protocol.markets:
        known = ", ".join(sorted(protocol.markets))
        raise ConfigError(f"unknown market {name!r} (markets: {known})")
    return protocol.markets[name]


def accounts_of(protocol: Protocol, owner: str) -> list[int]:
    """The Lever accounts `owner` created (from `AccountCreated`, owner is indexed)."""
    from ape import chain

    head = int(chain.blocks.head.number)
    logs = protocol.engine.AccountCreated.range(protocol.deploy_block, head + 1, search_topics={"owner": owner})
    return [int(log.accountId) for log in logs]


@contextlib.contextmanager
def _quiet_traces() -> Iterator[None]:
    """ape's local providers print the whole call trace of a failing call (to the stdout bound
    when ape was imported); the user gets the one-line reason instead."""
    from ape_ethereum.trace import Trace

    with mock.patch.object(Trace, "show", lambda *args, **kwargs: None):
        yield


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
