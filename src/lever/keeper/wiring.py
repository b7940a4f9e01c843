"""Builds a keeper from settings and a deployment record (shared by the CLI, the silverback bot
and the demo)."""

from __future__ import annotations

import requests
from web3 import Web3
from web3.types import RPCEndpoint

from lever.chain import Addresses, ProtocolReader
from lever.deployments import Deployment, load_deployment
from lever.hermes import HermesClient
from lever.keeper.core import KeeperConfig
from lever.keeper.runner import Keeper
from lever.keeper.settings import KeeperSettings, load_settings
from lever.units import to_scaled, to_wad


def connect(rpc_url: str, timeout: float = 10.0, session: requests.Session | None = None) -> Web3:
    """A connection for a keeper: web3's own retries off (the reader and the service retry, with
    their own backoff and breaker), and the chain id cached. Without the cache, web3 asks the node
    for the chain id twice per `eth_call`: three requests per read instead of one, and three
    chances for a flaky connection to fail it. `session`: a `requests.Session` of the caller's
    (the benchmark counts requests through one)."""
    provider = Web3.HTTPProvider(
        rpc_url,
        request_kwargs={"timeout": timeout},
        session=session,
        exception_retry_configuration=None,
        cache_allowed_requests=True,
        cacheable_requests={RPCEndpoint("eth_chainId")},
    )
    return Web3(provider)


def build_keeper(
    w3: Web3,
    settings: KeeperSettings | None = None,
    private_key: str | None = None,
    deployment: Deployment | None = None,
) -> Keeper:
    settings = settings or load_settings()
    deployment = deployment or load_deployment(int(w3.eth.chain_id), path=settings.deployment)
    key = private_key or (settings.private_key.get_secret_value() if settings.private_key else None)
    config = KeeperConfig(
        max_batch=settings.max_batch,
        max_tx_gas=settings.max_tx_gas,
        gas_market=settings.gas_market,
        band_wad=to_wad(settings.band),
        reindex_every_blocks=settings.reindex_every_blocks,
        clear_bad_debt=settings.clear_bad_debt,
        settle_orders=settings.settle_orders,
        settle_lp=settings.settle_lp,
        dry_run=settings.dry_run or key is None,
        tip_wei=to_scaled(settings.tip_gwei, 9),
        start_block=deployment.block,
    )
    reader = ProtocolReader(w3, Addresses.from_deployment(deployment))
    return Keeper(reader, HermesClient(settings.price_service), key, config)
