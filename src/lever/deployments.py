"""Deployment records: `deployments/<chain-id>.json` (addresses, block, deployer, parameters).

Every command finds the contracts through this file.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from lever.errors import DeploymentError
from lever.paths import REPO

DEPLOYMENTS_DIR = REPO / "deployments"


def deployments_dir() -> Path:
    """`deployments/` in the repository, or `LEVER_DEPLOYMENTS_DIR` if set."""
    return Path(os.environ.get("LEVER_DEPLOYMENTS_DIR") or DEPLOYMENTS_DIR)


CONTRACTS = ("token", "pyth", "oracle", "vault", "engine", "order_book", "liquidator", "timelock")


@dataclass(frozen=True)
class Deployment:
    chain_id: int
    network: str
    block: int
    deployer: str
    contracts: dict[str, str]  # see CONTRACTS -> address
    feeds: dict[str, str]  # market name -> reference feed address
    markets: dict[str, int]  # market name -> market id
    price_ids: dict[str, str] = field(default_factory=dict)  # market name -> pull-oracle price id (hex)
    parameters: dict[str, Any] = field(default_factory=dict)


def record_path(chain_id: int, directory: Path | None = None) -> Path:
    return (directory or deployments_dir()) / f"{chain_id}.json"


def save_deployment(deployment: Deployment, directory: Path | None = None) -> Path:
    directory = directory or deployments_dir()
    directory.mkdir(parents=True, exist_ok=True)
    path = record_path(deployment.chain_id, directory)
    path.write_text(json.dumps(asdict(deployment), indent=2, default=str) + "\n")
    return path


def load_deployment(chain_id: int, directory: Path | None = None, path: Path | None = None) -> Deployment:
    """Reads a record; a missing or malformed one is one clear `DeploymentError` line."""
    path = path or record_path(chain_id, directory)
    if not path.is_file():
        raise DeploymentError(f"no deployment recorded for chain {chain_id} ({path}); run `lever deploy` first")
    try:
        raw = json.loads(path.read_text())
        deployment = Deployment(**raw)
        missing = [name for name in CONTRACTS if name not in deployment.contracts]
        if missing:
            raise ValueError(f"missing contracts: {', '.join(missing)}")
        if not deployment.markets or not set(deployment.markets) == set(deployment.feeds) == set(deployment.price_ids):
            raise ValueError("markets, feeds and price ids do not match")
    except (ValueError, TypeError) as exc:
        raise DeploymentError(f"malformed deployment record {path}: {exc}") from None
    if deployment.chain_id != chain_id:
        raise DeploymentError(f"{path} records chain {deployment.chain_id}, not chain {chain_id}")
    return deployment
