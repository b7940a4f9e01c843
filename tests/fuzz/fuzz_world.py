"""The protocol deployed on a fuzz backend, its actors, and the ghost that starts beside it.

Deployment mirrors `lever.deploy.deploy_protocol` (same contracts, same `config/local.toml`
parameters) with raw transactions, so it runs unchanged on revm and on a node.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from eth_utils.crypto import keccak
from fuzz_chain import (
    Artifacts,
    Chain,
    RevmChain,
    calldata,
    constructor,
    next_address,
    selector,
    word,
    words,
)
from fuzz_model import Feed, Ghost, Market

from lever import math as m
from lever.config import load_network_config
from lever.deploy import market_key

USDC = 10**6
TRADER_FUNDS = 10**9 * USDC
LP_FUNDS = 10**8 * USDC
POOL_DEPOSITS = (1_000_000 * USDC, 250_000 * USDC)
ACCOUNTS_PER_TRADER = 2
ACCOUNT_MARGIN = 5_000 * USDC
# Liquidation parameters of the fuzz world: config/local.toml's, with a $20 keeper reward cap
# (0.5% of closed notional reaches it from $4,000) so the cap binds in most liquidations.
FUZZ_LIQUIDATION = m.LiquidationParams(11 * 10**17, 5 * 10**17, 5 * 10**15, 5 * 10**15, 10**18, 20 * 10**18, 100 * 10**18)
# Every run starts from a book of levered positions (account, market, leverage in tenths; a
# negative one is short), so price moves reach liquidation within a few steps.
OPENING_BOOK = ((1, 0, 180), (2, 1, -150), (3, 0, -100), (3, 1, 50), (4, 0, 50), (5, 1, 180))
MAX_UINT = 2**256 - 1

# Selectors, computed once.
S = {
    name: selector(sig)
    for name, sig in {
        "mint": "mint(address,uint256)",
        "approve": "approve(address,uint256)",
        "transfer": "transfer(address,uint256)",
        "setFeed": "setFeed(address,(uint32,uint64,uint64,uint64,uint64,uint64))",
        "createMarket": "createMarket(bytes32,(address,uint16,uint80,uint64,uint64,uint64,uint64,uint128,uint128,uint64,uint128))",
        "setMarketParams": "setMarketParams(uint256,(address,uint16,uint80,uint64,uint64,uint64,uint64,uint128,uint128,uint64,uint128))",
        "setParams": "setParams((uint64,uint64,uint64,uint64,uint80,uint80,uint96))",
        "createAccount": "createAccount()",
        "depositMargin": "depositMargin(uint256,uint256)",
        "withdrawMargin": "withdrawMargin(uint256,uint256,address)",
        "modifyPosition": "modifyPosition(uint256,uint256,int256,uint256)",
        "closePosition": "closePosition(uint256,uint256,uint256)",
        "deposit": "deposit(uint256,address)",
        "redeem": "redeem(uint256,address,address)",
        "maxRedeem": "maxRedeem(address)",
        "fundInsurance": "fundInsurance(uint256)",
        "claimProtocolFees": "claimProtocolFees(address,uint256)",
        "liquidate": "liquidate(uint256)",
        "liquidateBatch": "liquidateBatch(uint256[])",
        "setPrice": "setPrice(int256)",
        "setRoundData": "setRoundData(int256,uint256,uint256,uint80)",
        "confirmShock": "confirmShock(address)",
        "accrueFunding": "accrueFunding(uint256)",
        "pause": "pause()",
        "unpause": "unpause()",
        "accountState": "accountState(uint256)",
        "snapshot": "snapshot(address,address,uint256,uint256)",
    }.items()
}


@dataclass
class World:
    chain: Chain
    artifacts: Artifacts
    admin: str
    traders: list[str]
    lps: list[str]
    keepers: list[str]
    stranger: str
    token: str
    oracle: str
    vault: str
    engine: str
    liquidator: str
    lens: str
    feeds: list[str]
    ghost0: Ghost  # the ghost at the snapshot

    @property
    def n_accounts(self) -> int:
        return len(self.traders) * ACCOUNTS_PER_TRADER

    def owner_of(self, account: int) -> str:
        return self.traders[(account - 1) // ACCOUNTS_PER_TRADER]

    def fresh_ghost(self) -> Ghost:
        return copy.deepcopy(self.ghost0)

    def lens_words(self) -> list[int]:
        """What the ghost is compared with, through the public views (`InvariantLens`)."""
        data = calldata(S["snapshot"], self.vault, self.engine, self.n_accounts, len(self.feeds))
        return words(self.chain.call(self.lens, data))[2:]

    @property
    def in_process(self) -> bool:
        return isinstance(self.chain, RevmChain)

    def state_words(self) -> list[int]:
        """The same words as `lens_words`. On revm they are read from storage (0.3 us a slot
        instead of ~4 us a view call, the difference between ~2,000 and ~5,000 steps/s);
        `test_storage_reads_match_the_views` keeps the two equal."""
        if not self.in_process:
            return self.lens_words()
        return _unpack(self.storage_words(), len(self.feeds), self.n_accounts)

    def storage_words(self) -> list[int]:
        """The compared slots as stored (revm only): what `packed(ghost)` must equal."""
        read = self.chain.evm.storage  # type: ignore[attr-defined]
        return [read(address, slot) for address, slot in self._slots]

    @cached_property
    def _slots(self) -> list[tuple[str, int]]:
        return storage_slots(self.token, self.vault, self.engine, self.n_accounts, len(self.feeds))


def market_params_words(feed: str, p: m.MarketParams) -> tuple[Any, ...]:
    return (
        feed, p.max_leverage, p.min_margin, p.trading_fee, p.initial_margin_ratio, p.maintenance_margin_ratio,
        p.max_funding_rate_per_day, p.skew_scale, p.min_position_size, p.reserve_ratio, p.oi_cap_ratio,
    )


def build(chain: Chain, artifacts: Artifacts) -> World:
    """Deploys and seeds the protocol, snapshots the chain, and returns it with its ghost."""
    config = load_network_config("local")
    accounts = chain.accounts
    admin, traders, lps, keepers, stranger = accounts[0], accounts[1:4], accounts[4:6], accounts[6:8], accounts[8]
    chain.set_time(chain.now())
    t0 = chain.now()

    def send(sender: str, to: str, data: bytes) -> None:
        chain.transact(sender, to, data)

    token = chain.deploy(admin, constructor(artifacts, "MockToken", ["string", "string", "uint8"], ["Mock USD Coin", "mUSDC", 6]))
    oracle = chain.deploy(admin, constructor(artifacts, "OracleAdapter", ["address"], [admin]))
    engine_at, liquidator_at = next_address(chain, admin, 1), next_address(chain, admin, 2)
    share = int(config.vault.protocol_fee_share * 10**18)
    vault = chain.deploy(admin, constructor(artifacts, "LeverVault", ["address", "address", "uint256", "address"], [token, admin, share, engine_at]))
    engine = chain.deploy(admin, constructor(artifacts, "PerpEngine", ["address"] * 4, [vault, oracle, liquidator_at, admin]))
    liq_params = config.liquidation.params()
    liquidator = chain.deploy(admin, constructor(artifacts, "Liquidator", ["address", "address", "(uint64,uint64,uint64,uint64,uint80,uint80,uint96)"], [engine, admin, liq_params]))
    assert (engine.lower(), liquidator.lower()) == (engine_at.lower(), liquidator_at.lower())
    lens = chain.deploy(admin, artifacts.bytecode("InvariantLens"))

    feed_params = config.oracle.feed_params()
    fp = m.FeedParams(*feed_params)
    markets, feeds = [], []
    for name, market in config.markets.items():
        answer = market.feed_answer()
        feed = chain.deploy(admin, constructor(artifacts, "MockPriceFeed", ["uint8", "string", "int256", "address"], [market.feed_decimals, name, answer, admin]))
        send(admin, oracle, calldata(S["setFeed"], feed, *feed_params))
        params_tuple = market.params(feed)
        send(admin, engine, S["createMarket"] + market_key(name) + b"".join(word(v) for v in params_tuple))  # type: ignore[arg-type]
        params = m.MarketParams(*[int(v) for v in params_tuple[1:]])  # type: ignore[call-overload]
        ghost_feed = Feed(round_id=1, answer=answer, updated_at=t0, answered_in=1, adapter=m.FeedState(), decimals=market.feed_decimals)
        markets.append(Market(params, m.MarketState(last_funding_time=t0), ghost_feed, fp))
        feeds.append(feed)

    # A keeper reward cap that binds in most liquidations, so that the cap is exercised.
    fuzz_liq = FUZZ_LIQUIDATION
    send(admin, liquidator, calldata(S["setParams"], *(getattr(fuzz_liq, f) for f in fuzz_liq.__dataclass_fields__)))
    ghost = Ghost(now=t0, scale=10**12, fee_share=share, liq=fuzz_liq, markets=markets, owner={}, vault=vault)
    for who, funds in [(t, TRADER_FUNDS) for t in traders] + [(lp, LP_FUNDS) for lp in lps] + [(admin, LP_FUNDS), (stranger, LP_FUNDS)]:
        send(who, token, calldata(S["mint"], who, funds))
        send(who, token, calldata(S["approve"], vault, MAX_UINT))
        ghost.balance[who] = funds
    for account, trader in enumerate((t for t in traders for _ in range(ACCOUNTS_PER_TRADER)), start=1):
        send(trader, engine, S["createAccount"])
        ghost.owner[account] = trader
        send(trader, vault, calldata(S["depositMargin"], account, ACCOUNT_MARGIN))
        ghost.deposit_margin(trader, account, ACCOUNT_MARGIN)
    for lp, assets in zip(lps, POOL_DEPOSITS, strict=True):
        send(lp, vault, calldata(S["deposit"], assets, lp))
        ghost.lp_deposit(lp, assets)
    for account, market, leverage in OPENING_BOOK:
        trader = ghost.owner[account]
        price = markets[market].feed.answer * 10**10
        size = ACCOUNT_MARGIN * ghost.scale * leverage // 10 * 10**18 // price
        send(trader, engine, calldata(S["modifyPosition"], account, market, size, 0))
        ghost.modify(trader, account, market, size)
    chain.snapshot()
    return World(chain, artifacts, admin, traders, lps, keepers, stranger, token, oracle, vault, engine, liquidator, lens, feeds, ghost)


# --------------------------------------------------------------------------- storage layout
# Solidity's layout of the contracts (inheritance order, packing). OpenZeppelin 5's non-upgradeable
# contracts use plain slots: ERC20 _balances 0, _allowances 1, _totalSupply 2, _name 3, _symbol 4;
# AccessControl _roles next, Pausable _paused after it.
TOKEN_BALANCES = 0
VAULT_SUPPLY, VAULT_MARGIN, VAULT_MARGIN_POOL, VAULT_INSURANCE_FEES, VAULT_BAD_DEBT = 2, 6, 7, 8, 9
ENGINE_STATE, ENGINE_POSITIONS = 6, 8


def _mapping_slot(key: int | str, slot: int) -> int:
    return int.from_bytes(keccak(word(key) + word(slot)), "big")


def storage_slots(token: str, vault: str, engine: str, accounts: int, markets: int) -> list[tuple[str, int]]:
    slots = [(token, _mapping_slot(vault, TOKEN_BALANCES)), (vault, VAULT_MARGIN_POOL),
             (vault, VAULT_INSURANCE_FEES), (vault, VAULT_SUPPLY)]
    slots += [(vault, VAULT_BAD_DEBT + i) for i in range(4)]
    for mk in range(markets):
        base = _mapping_slot(mk, ENGINE_STATE)
        slots += [(engine, base), (engine, base + 1), (engine, base + 2)]
    for a in range(1, accounts + 1):
        slots.append((vault, _mapping_slot(a, VAULT_MARGIN)))
        inner = _mapping_slot(a, ENGINE_POSITIONS)
        slots += [(engine, _mapping_slot(mk, inner)) for mk in range(markets)]
    return slots


M40, M64, M96, M112, M128 = (1 << 40) - 1, (1 << 64) - 1, (1 << 96) - 1, (1 << 112) - 1, (1 << 128) - 1


def _word(value: int, bits: int) -> int:
    """A signed `bits`-wide field (as stored) to a two's complement word, as the lens returns it."""
    return value + (1 << 256) - (1 << bits) if value >> (bits - 1) else value


def packed(g: Ghost, accounts: int) -> list[int]:
    """The ghost in the storage layout of `storage_slots` (the inverse of `_unpack`)."""
    out = [g.balance.get(g.vault, 0), sum(g.margin.values()) | g.pool << 128, g.insurance | g.fees << 96 | g.fee_share << 192, g.supply,
           g.bad_debt, g.bad_by_insurance, g.bad_by_pool, g.unpaid]
    for mk in g.markets:
        s = mk.state
        out += [s.long_oi | s.short_oi << 128, s.long_index & M128 | (s.short_index & M128) << 128,
                s.net_cost & M112 | s.last_funding_time << 112 | s.mmr_ramp_start << 152 | s.mmr_ramp_from << 192]
    margin, positions, none, markets = g.margin, g.positions, m.Position(), range(len(g.markets))
    for a in range(1, accounts + 1):
        out.append(margin.get(a, 0))
        for mk in markets:
            p = positions.get((a, mk), none)
            out.append(p.size & M128 | (p.cost & M128) << 128)
    return out


def _unpack(raw: list[int], markets: int, accounts: int) -> list[int]:
    """Storage words to the lens's layout (signed values as two's complement words)."""
    balance, margin_pool, insurance_fees, supply, *rest = raw
    out = [balance, margin_pool & M128, margin_pool >> 128, insurance_fees & M96, (insurance_fees >> 96) & M96,
           supply, *rest[:4]]
    i = 4
    for _ in range(markets):
        oi, index, packed = rest[i : i + 3]
        i += 3
        out += [oi & M128, oi >> 128, _word(index & M128, 128), _word(index >> 128, 128),
                _word(packed & M112, 112), (packed >> 112) & M40, (packed >> 152) & M40, (packed >> 192) & M64]
    for _ in range(accounts):
        out.append(rest[i])
        i += 1
        for _ in range(markets):
            position = rest[i]
            out += [_word(position & M128, 128), _word(position >> 128, 128)]
            i += 1
    return out
