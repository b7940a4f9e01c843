"""Builds a keeper from settings and a deployment record (shared by the CLI and the silverback bot)."""

from __future__ import annotations

from web3 import Web3

from lever.deployments import load_deployment
from lever.keeper.chain import Addresses, ChainClient
from lever.keeper.runner import Keeper, KeeperConfig
from lever.keeper.settings import KeeperSettings, load_settings
from lever.units import to_scaled, to_wad


def addresses_for(w3: Web3, settings: KeeperSettings) -> Addresses:
    deployment = load_deployment(int(w3.eth.chain_id), path=settings.deployment)
    return Addresses(
        vault=deployment.contracts["vault"],
        engine=deployment.contracts["engine"],
        liquidator=deployment.contracts["liquidator"],
        oracle=deployment.contracts["oracle"],
        feeds={deployment.markets[name]: feed for name, feed in deployment.feeds.items()},
    )


def build_keeper(w3: Web3, settings: KeeperSettings | None = None, private_key: str | None = None) -> Keeper:
    settings = settings or load_settings()
    key = private_key or (settings.private_key.get_secret_value() if settings.private_key else None)
    config = KeeperConfig(
        max_batch=settings.max_batch,
        gas_market=settings.gas_market,
        band_wad=to_wad(settings.band),
        reindex_every_blocks=settings.reindex_every_blocks,
        clear_bad_debt=settings.clear_bad_debt,
        dry_run=settings.dry_run or key is None,
        tip_wei=to_scaled(settings.tip_gwei, 9),
    )
    return Keeper(ChainClient(w3, addresses_for(w3, settings)), key, config)
