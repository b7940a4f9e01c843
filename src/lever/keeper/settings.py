"""Keeper configuration: one validated object, built once.

Precedence: command-line flag > `LEVER_*` environment variable > TOML config file > default.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr, ValidationError
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from lever.errors import ConfigError

DEFAULT_NETWORK = "ethereum:local:foundry"
DEFAULT_PRICE_SERVICE = "http://127.0.0.1:8547"


class KeeperSettings(BaseSettings):
    """Every keeper setting and its default, in one place (the CLI and the bot read these)."""

    model_config = SettingsConfigDict(env_prefix="LEVER_", extra="forbid", frozen=True)

    network: str = DEFAULT_NETWORK  # an ape network choice
    rpc_url: str | None = None  # connect straight to this RPC instead of through ape
    price_service: str = DEFAULT_PRICE_SERVICE  # a Hermes-shaped price service (Pyth's Hermes, or `lever price serve`)
    deployment: Path | None = None  # default: deployments/<chain id>.json
    private_key: SecretStr | None = None  # the signer; without one (or with dry_run) nothing is sent
    dry_run: bool = False
    poll_interval: float = Field(default=1.0, gt=0, le=60)
    max_batch: int = Field(default=500, ge=1, le=2000)  # the block gas limit usually binds first
    max_tx_gas: int = Field(default=2**24, ge=0)  # EIP-7825 (Ethereum since Osaka); 0: a chain without a cap
    gas_market: int | None = Field(default=0, ge=0)  # market pricing the gas token; unset: no profit gate
    band: Decimal = Field(default=Decimal("0.005"), ge=0, le=Decimal("0.5"))
    reindex_every_blocks: int = Field(default=50, ge=1)
    clear_bad_debt: bool = True
    settle_orders: bool = True  # settle due market orders and triggered conditional orders
    settle_lp: bool = True  # settle due LP requests
    tip_gwei: Decimal = Field(default=Decimal(1), ge=0, le=1000)
    metrics_port: int = Field(default=9108, ge=0, le=65535)  # 0: no metrics or /health server
    max_consecutive_errors: int = Field(default=5, ge=1)  # then the circuit breaker opens
    breaker_cooldown: float = Field(default=30.0, gt=0)
    log_json: bool = True

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: tuple[PydanticBaseSettingsSource, ...] = (init_settings, env_settings)
        if _CONFIG_FILE is not None:
            sources += (TomlConfigSettingsSource(settings_cls, toml_file=_CONFIG_FILE),)
        return sources


_CONFIG_FILE: Path | None = None


def load_settings(flags: dict[str, Any] | None = None, config_file: Path | None = None) -> KeeperSettings:
    """Builds the settings; any problem becomes one `ConfigError` line naming the field."""
    global _CONFIG_FILE
    if config_file is not None and not config_file.is_file():
        raise ConfigError(f"keeper config file not found: {config_file}")
    _CONFIG_FILE = config_file
    try:
        return KeeperSettings(**{k: v for k, v in (flags or {}).items() if v is not None})
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "settings"
        raise ConfigError(f"invalid keeper setting {where}: {first['msg']}") from None
    except ValueError as exc:  # a malformed TOML file
        raise ConfigError(f"invalid keeper config file {config_file}: {exc}") from None
    finally:
        _CONFIG_FILE = None
