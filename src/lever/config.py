"""Deployment parameters: `config/<network>.toml`, validated and converted to chain units."""

from __future__ import annotations

import tomllib
from decimal import Decimal
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from lever.errors import ConfigError
from lever.paths import REPO
from lever.pyth import price_id_from_hex
from lever.units import to_scaled, to_wad

CONFIG_DIR = REPO / "config"

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


class LpConfig(_Strict):
    settlement_delay: int = Field(default=2, ge=0, le=3600)
    settlement_window: int = Field(default=120, ge=10, le=86_400)
    liquidation_grace: int = Field(default=2, ge=0, le=3600)
    executor_fee: HumanDecimal = Decimal("0.5")

    def params(self, decimals: int) -> tuple[int, ...]:
        """The `ILeverVault.LpParams` tuple."""
        return (
            self.settlement_delay,
            self.settlement_window,
            self.liquidation_grace,
            to_scaled(self.executor_fee, decimals),
        )


class OrdersConfig(_Strict):
    settlement_delay: int = Field(default=2, ge=0, le=3600)
    settlement_window: int = Field(default=60, ge=10, le=86_400)
    min_executor_fee: HumanDecimal = Decimal("0.05")
    max_executor_fee: HumanDecimal = Decimal(20)

    def settings(self, decimals: int) -> tuple[int, ...]:
        """The `IOrderBook.Settings` tuple."""
        return (
            self.settlement_delay,
            self.settlement_window,
            to_scaled(self.min_executor_fee, decimals),
            to_scaled(self.max_executor_fee, decimals),
        )


class GovernanceConfig(_Strict):
    timelock_delay: int = Field(default=0, ge=0, le=30 * 86_400)


class PythConfig(_Strict):
    address: str = ""  # empty: deploy MockPyth
    update_fee_wei: int = Field(default=1, ge=0)
    valid_time_period: int = Field(default=60, gt=0)


class OracleConfig(_Strict):
    reference_max_age: int = Field(default=3600, gt=0, le=86_400)
    max_deviation: HumanDecimal = Decimal("0.05")
    ewma_lambda: HumanDecimal = Decimal("0.94")
    ref_volatility: HumanDecimal = Decimal("0.01")
    max_vol_factor: HumanDecimal = Decimal(3)
    factor_rise_per_day: HumanDecimal = Decimal(1)
    max_price_age: int = Field(default=3600, gt=0, le=86_400)
    max_execution_age: int = Field(default=30, gt=0, le=86_400)
    max_conf_ratio: HumanDecimal = Decimal("0.02")
    max_reference_deviation: HumanDecimal = Decimal("0.05")
    sequencer_feed: str = ""
    sequencer_grace: int = Field(default=3600, ge=0, le=86_400)

    def config(self, reference_feed: str, price_id: bytes) -> tuple[object, ...]:
        """The `IOracleAdapter.Config` tuple of one market."""
        return (
            reference_feed,
            self.reference_max_age,
            to_wad(self.max_deviation),
            to_wad(self.ewma_lambda),
            to_wad(self.ref_volatility),
            to_wad(self.max_vol_factor),
            to_wad(self.factor_rise_per_day),
            price_id,
            self.max_price_age,
            to_wad(self.max_conf_ratio),
            to_wad(self.max_reference_deviation),
            self.max_execution_age,
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
    feed: str | None = None  # an existing Chainlink-shaped reference feed; None deploys the mock
    price_id: str
    max_leverage: int = Field(gt=0, le=100)
    taker_fee: HumanDecimal
    maker_fee: HumanDecimal
    initial_margin_ratio: HumanDecimal
    maintenance_margin_ratio: HumanDecimal
    max_funding_rate_per_day: HumanDecimal
    borrow_rate_per_day: HumanDecimal
    max_profit_ratio: HumanDecimal
    skew_scale: HumanDecimal
    funding_scale: HumanDecimal
    min_position_size: HumanDecimal
    min_margin: HumanDecimal
    oi_cap_ratio: HumanDecimal

    @field_validator("price_id")
    @classmethod
    def _price_id(cls, value: str) -> str:
        price_id_from_hex(value)
        return value

    def feed_answer(self) -> int:
        return to_scaled(self.initial_price, self.feed_decimals)

    def pyth_id(self) -> bytes:
        return price_id_from_hex(self.price_id)

    def params(self) -> tuple[int, ...]:
        """The `IPerpEngine.MarketParams` tuple, in struct order."""
        return (
            self.max_leverage,
            to_wad(self.min_margin),
            to_wad(self.taker_fee),
            to_wad(self.maker_fee),
            to_wad(self.initial_margin_ratio),
            to_wad(self.maintenance_margin_ratio),
            to_wad(self.max_funding_rate_per_day),
            to_wad(self.borrow_rate_per_day),
            to_wad(self.max_profit_ratio),
            to_wad(self.oi_cap_ratio),
            to_wad(self.skew_scale),
            to_wad(self.min_position_size),
            to_wad(self.funding_scale),
        )


class NetworkConfig(_Strict):
    collateral: CollateralConfig = CollateralConfig()
    vault: VaultConfig = VaultConfig()
    lp: LpConfig = LpConfig()
    orders: OrdersConfig = OrdersConfig()
    governance: GovernanceConfig = GovernanceConfig()
    pyth: PythConfig = PythConfig()
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
