"""Deployment parameters: `config/<network>.toml`, validated and converted to chain units."""

from __future__ import annotations

import tomllib
from decimal import Decimal
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from lever.errors import ConfigError
from lever.units import to_scaled, to_wad

CONFIG_DIR = Path(__file__).resolve().parents[2] / "config"

HumanDecimal = Annotated[Decimal, Field(ge=0)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CollateralConfig(_Strict):
    symbol: str = "mUSDC"
    name: str = "Mock USD Coin"
    decimals: int = Field(default=6, ge=0, le=18)
    address: str | None = None  # an existing token; None deploys the mock


class VaultConfig(_Strict):
    protocol_fee_share: HumanDecimal = Decimal("0.1")


class OracleConfig(_Strict):
    max_age_seconds: int = Field(default=3600, gt=0, le=86_400)
    max_deviation: HumanDecimal = Decimal("0.05")
    ewma_lambda: HumanDecimal = Decimal("0.94")
    ref_volatility: HumanDecimal = Decimal("0.01")
    max_vol_factor: HumanDecimal = Decimal(3)
    factor_rise_per_day: HumanDecimal = Decimal(1)

    def feed_params(self) -> tuple[int, ...]:
        """The `IOracleAdapter.FeedParams` tuple."""
        return (
            self.max_age_seconds,
            to_wad(self.max_deviation),
            to_wad(self.ewma_lambda),
            to_wad(self.ref_volatility),
            to_wad(self.max_vol_factor),
            to_wad(self.factor_rise_per_day),
        )


class LiquidationConfig(_Strict):
    target_health: HumanDecimal = Decimal("1.1")
    max_partial_share: HumanDecimal = Decimal("0.5")
    penalty_ratio: HumanDecimal = Decimal("0.005")
    reward_ratio: HumanDecimal = Decimal("0.0025")
    min_reward: HumanDecimal = Decimal(1)
    max_reward: HumanDecimal = Decimal(250)
    min_leftover_notional: HumanDecimal = Decimal(100)

    def params(self) -> tuple[int, ...]:
        """The `LiquidationMath.Params` tuple."""
        return tuple(
            to_wad(v)
            for v in (
                self.target_health,
                self.max_partial_share,
                self.penalty_ratio,
                self.reward_ratio,
                self.min_reward,
                self.max_reward,
                self.min_leftover_notional,
            )
        )


class MarketConfig(_Strict):
    initial_price: HumanDecimal
    feed_decimals: int = Field(default=8, ge=0, le=18)
    feed: str | None = None  # an existing Chainlink-shaped feed; None deploys the mock
    max_leverage: int = Field(gt=0, le=100)
    trading_fee: HumanDecimal
    initial_margin_ratio: HumanDecimal
    maintenance_margin_ratio: HumanDecimal
    max_funding_rate_per_day: HumanDecimal
    reserve_ratio: HumanDecimal
    skew_scale: HumanDecimal
    min_position_size: HumanDecimal
    min_margin: HumanDecimal
    oi_cap_ratio: HumanDecimal

    def feed_answer(self) -> int:
        return to_scaled(self.initial_price, self.feed_decimals)

    def params(self, feed: str) -> tuple[object, ...]:
        """The `IPerpEngine.MarketParams` tuple, in struct order."""
        return (
            feed,
            self.max_leverage,
            to_wad(self.min_margin),
            to_wad(self.trading_fee),
            to_wad(self.initial_margin_ratio),
            to_wad(self.maintenance_margin_ratio),
            to_wad(self.max_funding_rate_per_day),
            to_wad(self.skew_scale),
            to_wad(self.min_position_size),
            to_wad(self.reserve_ratio),
            to_wad(self.oi_cap_ratio),
        )


class NetworkConfig(_Strict):
    collateral: CollateralConfig = CollateralConfig()
    vault: VaultConfig = VaultConfig()
    oracle: OracleConfig = OracleConfig()
    liquidation: LiquidationConfig = LiquidationConfig()
    markets: dict[str, MarketConfig]

    @field_validator("markets")
    @classmethod
    def _at_least_one(cls, markets: dict[str, MarketConfig]) -> dict[str, MarketConfig]:
        if not markets:
            raise ValueError("at least one market is required")
        return markets


def load_network_config(network: str = "local", directory: Path = CONFIG_DIR) -> NetworkConfig:
    """Reads `<directory>/<network>.toml`; every problem becomes one `ConfigError` line."""
    path = directory / f"{network}.toml"
    if not path.is_file():
        raise ConfigError(f"no parameter file for network '{network}' (expected {path})")
    try:
        raw = tomllib.loads(path.read_text())
        return NetworkConfig.model_validate(raw)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise ConfigError(f"{path}: {where}: {first['msg']}") from exc
