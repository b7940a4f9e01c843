"""The protocol deployed on a fuzz backend, its actors, their prices, and how the machine reads
the chain.

Deployment is `lever.deploy.deploy_protocol` itself (through `direct`, a few lines of ape's
contract interface over raw calldata), with `config/local.toml`'s parameters. The chain is read
straight from storage (`lever.artifacts.storage_layout`: slots from the compiler, not typed here),
0.7 us a slot in revm instead of 20-60 us a view call; `test_storage_reads_match_the_views`
keeps the two equal.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import cache, cached_property, lru_cache
from pathlib import Path
from typing import Any

from backends import Chain, RevmChain
from direct import DirectAccount, DirectProject
from eth_utils.address import to_checksum_address
from ghost import Account, Blob, Claim, Request, Settings, State

from lever import math as m
from lever.artifacts import (
    Artifacts,
    Field,
    StorageLayout,
    abi_type,
    mapping_slot,
    selector_of,
    storage_layout,
)
from lever.config import NetworkConfig, load_network_config
from lever.deploy import Protocol, deploy_protocol
from lever.math.oracle import OracleConfig, OracleState, ReferenceRound
from lever.math.orders import Order
from lever.paths import BUILD_MANIFEST
from lever.pyth import FeedHistory, Publication, encode_update

USDC = 10**6
WAD = 10**18
MAX_UINT = 2**256 - 1
TRADER_FUNDS = 10**8 * USDC
LP_FUNDS = 10**8 * USDC
ACCOUNT_MARGIN = 5_000 * USDC
ACCOUNTS_PER_TRADER = 2
N_TRADERS = 4
# The fuzz world's liquidation parameters: config/local.toml's with a $20 keeper reward cap, so
# the cap binds in most liquidations.
MAX_REWARD = 20 * WAD


def fuzz_config() -> NetworkConfig:
    config = load_network_config("local")
    return config.model_copy(update={"liquidation": config.liquidation.model_copy(update={"max_reward": 20})})


def artifacts() -> Artifacts:
    """The compiled contracts: the project's, or a mutant's (`LEVER_FUZZ_ARTIFACTS`)."""
    return Artifacts(Path(os.environ.get("LEVER_FUZZ_ARTIFACTS", BUILD_MANIFEST)))


# --------------------------------------------------------------------------- calldata


class Calls:
    """Calldata from the compiled ABIs: `calls.encode("LeverVault", "depositMargin", 1, 100)`."""

    def __init__(self, art: Artifacts):
        self.art = art
        self._shapes: dict[tuple[str, str, int], tuple[bytes, bool, Any]] = {}
        self._outputs: dict[tuple[str, str], Any] = {}

    def encode(self, contract: str, function: str, *args: Any) -> bytes:
        key = (contract, function, len(args))
        shape = self._shapes.get(key)
        if shape is None:
            [entry] = [
                e
                for e in self.art.abi(contract)
                if e.get("type") == "function" and e["name"] == function and len(e["inputs"]) == len(args)
            ]
            types = [abi_type(i) for i in entry["inputs"]]
            shape = self._shapes[key] = (selector_of(entry), all(t in _STATIC for t in types), _tuple_encoder(types))
        selector, static, encoder = shape
        if static:  # one 32-byte word an argument: no need for eth-abi's general encoder
            return selector + b"".join([_word(a) for a in args])
        return selector + encoder(args)

    def decode(self, contract: str, function: str, out: bytes) -> Any:
        """A view's return value as eth-abi decodes it (one value: itself; several: a tuple)."""
        key = (contract, function)
        decoder = self._outputs.get(key)
        if decoder is None:
            types = [abi_type(o) for o in self.art.item(contract, function)["outputs"]]
            decoder = self._outputs[key] = _output_decoder(types)
        decoded = decoder(out)
        return decoded[0] if len(decoded) == 1 else decoded


_STATIC = {"uint256", "int256", "address", "bool", "uint8", "uint64", "uint80", "bytes32"}


def _word(value: Any) -> bytes:
    if type(value) is int:
        return (value % 2**256).to_bytes(32, "big")
    if isinstance(value, str):
        return bytes(12) + bytes.fromhex(value[2:])
    if isinstance(value, bytes):
        return value.ljust(32, b"\0")
    return (int(value) % 2**256).to_bytes(32, "big")


def _split_tuple(kind: str) -> list[str]:
    """`(a,(b,c)[],d)` -> [`a`, `(b,c)[]`, `d`]."""
    parts, depth, start = [], 0, 1
    for i, ch in enumerate(kind[1:-1], start=1):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(kind[start:i])
            start = i + 1
    parts.append(kind[start:-1])
    return parts


def _dynamic(kind: str) -> bool:
    if kind.endswith("[]") or kind in ("bytes", "string"):
        return True
    return kind.startswith("(") and any(_dynamic(k) for k in _split_tuple(kind))


def encode_args(types: list[str], values: list[Any]) -> bytes:
    """ABI encoding of a tuple of values (the head/tail layout), for the shapes the machine sends:
    value types, bytes, arrays and tuples. eth-abi validates every value first, five times slower;
    `test_calldata_matches_eth_abi` keeps the two equal."""
    return _tuple_encoder(types)(values)


def _tuple_encoder(types: list[str]) -> Any:
    """The head/tail encoder of a tuple of `types`, built once per shape (`_encoder`)."""
    return _encoder("(" + ",".join(types) + ")")[1] if types else (lambda values: b"")


@cache
def _encoder(kind: str) -> tuple[bool, Any]:
    """(dynamic, encode(value) -> bytes) of one ABI type; tuples and arrays compose their parts'."""
    if kind.endswith("[]"):
        inner_dynamic, inner = _encoder(kind[:-2])

        def array(value: Any) -> bytes:
            return _word(len(value)) + _head_tail([(inner_dynamic, inner)] * len(value), value)

        return True, array
    if kind == "bytes":
        return True, lambda value: _word(len(value)) + value + bytes(-len(value) % 32)
    if kind.startswith("("):
        parts = [_encoder(k) for k in _split_tuple(kind)]
        return any(d for d, _ in parts), lambda value: _head_tail(parts, value)
    return False, _word


def _head_tail(parts: list[tuple[bool, Any]], values: Any) -> bytes:
    heads, tails = [], []
    offset = 32 * len(parts)
    for (dynamic, encode), value in zip(parts, values, strict=True):
        if dynamic:
            heads.append(_word(offset))
            tail = encode(value)
            tails.append(tail)
            offset += len(tail)
        else:
            heads.append(encode(value))
    return b"".join(heads) + b"".join(tails)


def _output_decoder(types: list[str]) -> Any:
    """decode(out) -> tuple, as `eth_abi.decode(types, out)`: word by word when every output is a
    signed or unsigned integer, a bool, or a tuple of those (each word checked as eth-abi checks
    it: no bits beyond the type's width); otherwise eth-abi itself."""
    from eth_abi import decode as abi_decode

    def flat(kind: str) -> list[tuple[bool, int, bool]] | None:
        """(signed, bits, bool) per word of `kind`; None if not such a static shape."""
        if kind.startswith("(") and not kind.endswith("]"):
            out: list[tuple[bool, int, bool]] = []
            for part in _split_tuple(kind):
                inner = None if part.startswith("(") else flat(part)  # nested tuples: eth-abi
                if inner is None:
                    return None
                out += inner
            return out
        for prefix, signed in (("uint", False), ("int", True)):
            if kind.startswith(prefix) and kind[len(prefix) :].isdigit():
                return [(signed, int(kind[len(prefix) :]), False)]
        return [(False, 1, True)] if kind == "bool" else None

    shapes = [flat(t) for t in types]
    if any(s is None for s in shapes):
        return lambda out: abi_decode(types, out)
    words = sum(len(s) for s in shapes if s is not None)

    def decode(out: bytes) -> tuple[Any, ...]:
        if len(out) < 32 * words:
            return tuple(abi_decode(types, out))  # eth-abi's own error
        values, i = [], 0
        for kind, shape in zip(types, shapes, strict=True):
            assert shape is not None
            got = []
            for signed, bits, is_bool in shape:
                word = int.from_bytes(out[32 * i : 32 * i + 32], "big")
                i += 1
                value = word - (1 << 256) if signed and word >> 255 else word
                if not (-(1 << (bits - 1)) <= value < 1 << (bits - 1) if signed else value >> bits == 0):
                    return tuple(abi_decode(types, out))  # eth-abi's own error
                got.append(bool(value) if is_bool else value)
            values.append(tuple(got) if kind.startswith("(") else got[0])
        return tuple(values)

    return decode


# --------------------------------------------------------------------------- prices


@lru_cache(maxsize=8192)
def _blob(price_id: bytes, market: int, pub: Publication, prev: int) -> Blob:
    """A publication's blob (it never changes once the next publication exists)."""
    data = encode_update(price_id, pub, prev)
    return Blob(market, pub.publish_time, pub.price, pub.conf, pub.expo, prev, data)


@dataclass
class Prices:
    """Every market's publications on the pull oracle (what Hermes would serve), as blobs."""

    price_ids: list[bytes]
    feeds: list[FeedHistory] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.feeds:
            self.feeds = [FeedHistory(pid) for pid in self.price_ids]

    def copy(self) -> Prices:
        return Prices(self.price_ids, [FeedHistory(f.price_id, list(f.publications)) for f in self.feeds])

    def publish(self, market: int, price: int, t: int, conf: int = 0) -> Blob:
        """Publishes `price` (Pyth units, expo -8) at `t`, later than every earlier publication."""
        feed = self.feeds[market]
        last = feed.latest()
        assert last is None or last.publish_time < t, "publications move forward in time"
        feed.publish(Publication(t, price, conf))
        return self.blob(market, feed.publications[-1], last.publish_time if last else 0)

    def blob(self, market: int, pub: Publication, prev: int) -> Blob:
        return _blob(self.price_ids[market], market, pub, prev)

    def at_or_after(self, market: int, t: int) -> Blob | None:
        found = self.feeds[market].at_or_after(t)
        return None if found is None else self.blob(market, *found)

    def latest(self, market: int) -> Blob | None:
        pubs = self.feeds[market].publications
        if not pubs:
            return None
        return self.blob(market, pubs[-1], pubs[-2].publish_time if len(pubs) > 1 else 0)

    def published(self, market: int) -> list[Publication]:
        return self.feeds[market].publications

    def nth_after(self, market: int, t: int, n: int) -> Blob | None:
        """The n-th publication at or after `t` (0: the earliest), for keepers that try others."""
        pubs = self.feeds[market].publications
        later = [i for i, p in enumerate(pubs) if p.publish_time >= t]
        if n >= len(later):
            return None
        i = later[n]
        return self.blob(market, pubs[i], pubs[i - 1].publish_time if i > 0 else 0)

    def before(self, market: int, t: int) -> Blob | None:
        """The last publication before `t` (an earlier price a keeper might try)."""
        pubs = [i for i, p in enumerate(self.feeds[market].publications) if p.publish_time < t]
        if not pubs:
            return None
        i = pubs[-1]
        all_ = self.feeds[market].publications
        return self.blob(market, all_[i], all_[i - 1].publish_time if i > 0 else 0)


# --------------------------------------------------------------------------- reading the chain


class Observer:
    """The chain's state in the ghost's shapes, read from storage.

    Every struct is read by a reader generated once from its layout (`_reader`): one storage read
    per slot the wanted fields live in, then shifts and masks; mapping slots are computed once per
    key. The machine's comparisons use the raw tuples (`*_tuple`), in the ghost's field order."""

    def __init__(self, chain: Chain, p: Protocol):
        self.chain = chain
        self.token, self.vault, self.engine = p.token.address, p.vault.address, p.engine.address
        self.book, self.oracle, self.liquidator = p.order_book.address, p.oracle.address, p.liquidator.address
        self.n_markets = len(p.markets)
        v, e, b, o, lq = (
            storage_layout(c) for c in ("LeverVault", "PerpEngine", "OrderBook", "OracleAdapter", "Liquidator")
        )
        self.v, self.e, self.b, self.o, self.lq = v, e, b, o, lq
        self._token_balances = storage_layout("MockToken").var("_balances").slot
        self._shares = v.var("_balances").slot
        # The vault's margin ledger holds every margin plus the order escrow (`totalMargin()` is
        # the difference); the escrow shares a slot with the LP parameters, and the engine's total
        # reserve, open-markets mask and pause flag share one slot.
        self._scalars = (
            {
                (self.vault, name): v.var(label)
                for name, label in (
                    ("margin_and_escrow", "_marginAndEscrow"),
                    ("pool", "_poolAssets"),
                    ("insurance", "_insuranceFund"),
                    ("fees", "_protocolFees"),
                    ("lp_escrow", "_lpEscrow"),
                    ("supply", "_totalSupply"),
                    ("bad_debt", "badDebtTotal"),
                    ("bad_by_insurance", "badDebtCoveredByInsurance"),
                    ("bad_by_pool", "badDebtCoveredByPool"),
                )
            }
            | {
                (self.vault, "order_escrow"): v.member("_e", "orderEscrow"),
                (self.engine, "account_count"): e.var("accountCount"),
            }
            | {
                (self.engine, name): e.member("_g", label)
                for name, label in (
                    ("total_reserve", "totalReserveWad"),
                    ("open_mask", "openMask"),
                    ("paused", "paused"),
                )
            }
        )
        evm = getattr(chain, "evm", None)
        self.storage = evm.storage if evm is not None else chain.storage  # revm's own method: no wrapper
        storage = self.storage
        self.scalar_names = [name for (_, name) in self._scalars]
        self.scalars_tuple = _reader(storage, list(self._scalars.values()), [a for a, _ in self._scalars])

        def struct(layout: StorageLayout, address: str, label: str, pick: list[str] | None = None) -> Any:
            fields = layout.members(layout.value_type(label))
            if pick is not None:
                by_label = {f.label: f for f in fields}
                fields = [by_label[x] for x in pick]
            return _reader(storage, fields, address)

        def mapping(layout: StorageLayout, address: str, label: str) -> tuple[Any, int]:
            """A mapping of structs: the reader of one entry, and the mapping's base slot."""
            return struct(layout, address, label), layout.var(label).slot

        self._margin, self._margin_base = mapping(v, self.vault, "_margin")
        self._account, self._account_base = mapping(e, self.engine, "_accounts")
        self._position, self._position_base = mapping(e, self.engine, "_positions")
        self._market, self._market_base = mapping(e, self.engine, "_state")
        self._params, self._params_base = mapping(e, self.engine, "_params")
        self._prev_params, self._prev_params_base = mapping(e, self.engine, "_prevParams")
        self._oracle = struct(
            o,
            self.oracle,
            "_markets",
            [
                "lastReferenceWad",
                "lastRoundId",
                "varianceWad",
                "mmFactorCheckpointWad",
                "checkpointTime",
                "shocked",
                "latestPriceWad",
                "latestPublishTime",
            ],
        )
        self._oracle_base = o.var("_markets").slot
        order_fields = b.members(b.value_type("_orders"))
        self._order_size = b.struct_slots(b.value_type("_orders"))
        self._order_base = b.var("_orders").slot
        self._order = _reader(storage, order_fields, self.book)
        [updated] = [f for f in order_fields if f.label == "updatedAt"]
        self._order_updated = _reader(storage, [updated], self.book)
        self._request = {True: struct(v, self.vault, "_pendingDeposit"), False: struct(v, self.vault, "_pendingRedeem")}
        self._request_base = {True: v.var("_pendingDeposit").slot, False: v.var("_pendingRedeem").slot}
        self._claim = {
            True: struct(v, self.vault, "_claimableDeposit"),
            False: struct(v, self.vault, "_claimableRedeem"),
        }
        self._claim_base = {True: v.var("_claimableDeposit").slot, False: v.var("_claimableRedeem").slot}
        liq = lq.var("_params")
        self._liquidation = _reader(storage, lq.members(liq.type), self.liquidator)
        self._liquidation_base = liq.slot
        self._slots: dict[tuple[Any, int], int] = {}
        self._owners: dict[int, str] = {}

    def slot(self, key: Any, base: int) -> int:
        """`mapping_slot(key, base)`, computed once per key."""
        found = self._slots.get((key, base))
        if found is None:
            found = self._slots[(key, base)] = mapping_slot(key, base)
        return found

    # ------------------------------------------------------------------ raw tuples (field order of the ghost's types)

    def margin_tuple(self, account: int) -> tuple[int, ...]:
        """The vault's `MarginSlot`: the margin (signed) and the pending-order count."""
        return self._margin(self.slot(account, self._margin_base))

    def account_tuple(self, account: int) -> tuple[int, ...]:
        return self._account(self.slot(account, self._account_base))

    def position_tuple(self, account: int, market: int) -> tuple[int, ...]:
        return self._position(self.slot(market, self.slot(account, self._position_base)))

    def market_tuple(self, market: int) -> tuple[int, ...]:
        return self._market(self.slot(market, self._market_base))

    def params_tuple(self, market: int, previous: bool = False) -> tuple[int, ...]:
        if previous:
            return self._prev_params(self.slot(market, self._prev_params_base))
        return self._params(self.slot(market, self._params_base))

    def oracle_tuple(self, market: int) -> tuple[int, ...]:
        return self._oracle(self.slot(market, self._oracle_base))

    def request_tuple(self, controller: str, deposit: bool) -> tuple[int, ...]:
        return self._request[deposit](self.slot(controller, self._request_base[deposit]))

    def claim_tuple(self, controller: str, deposit: bool) -> tuple[int, ...]:
        return self._claim[deposit](self.slot(controller, self._claim_base[deposit]))

    def liquidation_tuple(self) -> tuple[int, ...]:
        return self._liquidation(self._liquidation_base)

    # ------------------------------------------------------------------ the ghost's shapes

    def scalars(self) -> dict[str, int]:
        return dict(zip(self.scalar_names, self.scalars_tuple(0), strict=True))

    def balance(self, who: str) -> int:
        return self.storage(self.token, self.slot(who, self._token_balances))

    def shares(self, who: str) -> int:
        return self.storage(self.vault, self.slot(who, self._shares))

    def margin(self, account: int) -> int:
        return self.margin_tuple(account)[0]

    def pending_orders(self, account: int) -> int:
        """How many of the account's orders the vault counts as holding an escrowed fee."""
        return self.margin_tuple(account)[1]

    def owner_address(self, owner: int) -> str:
        found = self._owners.get(owner)
        if found is None:
            found = self._owners[owner] = to_checksum_address(owner.to_bytes(20, "big"))
        return found

    def account(self, account: int) -> Account | None:
        owner, mask, last = self.account_tuple(account)
        if owner == 0:
            return None
        return Account(self.owner_address(owner), mask, last)

    def position(self, account: int, market: int) -> m.Position:
        return m.Position(*self.position_tuple(account, market))

    def market(self, market: int) -> m.MarketState:
        return m.MarketState(*self.market_tuple(market))

    def params(self, market: int, previous: bool = False) -> m.MarketParams:
        return m.MarketParams(*self.params_tuple(market, previous))

    def oracle_state(self, market: int) -> OracleState:
        a, b, c, d, e, f, g, h = self.oracle_tuple(market)
        return OracleState(a, b, c, d, e, bool(f), g, h)

    def order(self, account: int, slot: int) -> Order | None:
        """The order in `slot` of the account's book, None if the slot is empty (`updatedAt` 0)."""
        at = self.slot(account, self._order_base) + slot * self._order_size
        if self._order_updated(at)[0] == 0:
            return None
        return Order.from_chain(account, m.orders.order_id(account, slot), self._order(at))

    def orders(self, account: int) -> dict[int, Order]:
        """The account's orders: every slot whose `updatedAt` is set (the others are empty; only
        their `updatedAt` word is read)."""
        size, base = self._order_size, self.slot(account, self._order_base)
        out = {}
        for slot in range(m.orders.MAX_ORDERS_PER_ACCOUNT):
            at = base + slot * size
            if self._order_updated(at)[0] != 0:
                out[slot] = Order.from_chain(account, m.orders.order_id(account, slot), self._order(at))
        return out

    def request(self, controller: str, deposit: bool) -> Request | None:
        amount, time, fee = self.request_tuple(controller, deposit)
        return Request(amount, time, fee) if amount else None

    def claim(self, controller: str, deposit: bool) -> Claim:
        return Claim(*self.claim_tuple(controller, deposit))

    def liquidation_params(self) -> m.LiquidationParams:
        return m.LiquidationParams(*self.liquidation_tuple())


def _reader(storage: Any, fields: list[Field], address: str | list[str]) -> Any:
    """A function `read(base) -> tuple` of `fields` (slots relative to `base`) at `address` (or,
    field by field, at each of `addresses`): each slot read once, each field shifted, masked and
    sign-extended (two's complement). Generated code: the fuzz machine reads a few hundred
    structs a step, and a generic loop over the fields costs more than the reads themselves."""
    addresses = address if isinstance(address, list) else [address] * len(fields)
    words: dict[tuple[str, int], str] = {}
    lines = []
    for a, f in zip(addresses, fields, strict=True):
        if (a, f.slot) not in words:
            words[(a, f.slot)] = f"w{len(words)}"
            lines.append(f"    {words[(a, f.slot)]} = storage({a!r}, base + {f.slot})")
    exprs = []
    for a, f in zip(addresses, fields, strict=True):
        bits = 8 * f.size
        value = f"({words[(a, f.slot)]} >> {8 * f.offset})" if f.offset else words[(a, f.slot)]
        value = f"{value} & {(1 << bits) - 1:#x}" if bits < 256 else value
        if f.signed:
            value = f"((({value}) ^ {1 << (bits - 1):#x}) - {1 << (bits - 1):#x})"
        exprs.append(f"({value})")
    source = "def read(base):\n" + "\n".join(lines) + f"\n    return ({', '.join(exprs)},)\n"
    scope: dict[str, Any] = {"storage": storage}
    exec(compile(source, "<storage reader>", "exec"), scope)  # noqa: S102 (our own layout, not input)
    return scope["read"]


# --------------------------------------------------------------------------- the world


@dataclass
class World:
    """A deployed protocol with its actors; `ghost0` / `prices0` are the ghost and publications at
    the chain's snapshot."""

    chain: Chain
    art: Artifacts
    protocol: Protocol
    config: NetworkConfig
    admin: str
    traders: list[str]
    lps: list[str]
    keepers: list[str]
    stranger: str
    settings: Settings
    state0: State
    prices0: Prices
    time0: int
    calls: Calls = field(init=False)
    observer: Observer = field(init=False)

    def __post_init__(self) -> None:
        self.calls = Calls(self.art)
        self.observer = Observer(self.chain, self.protocol)
        p = self.protocol
        self.token, self.vault, self.engine = p.token.address, p.vault.address, p.engine.address
        self.book, self.oracle, self.liquidator = p.order_book.address, p.oracle.address, p.liquidator.address
        self.timelock = p.timelock.address
        self.feeds = [p.feeds[name].address for name in sorted(p.markets, key=p.markets.__getitem__)]
        self.n_markets = len(p.markets)

    @property
    def in_process(self) -> bool:
        return isinstance(self.chain, RevmChain)

    @cached_property
    def accounts(self) -> list[int]:
        return list(range(1, N_TRADERS * ACCOUNTS_PER_TRADER + 1))

    def owner_of(self, account: int) -> str:
        return self.traders[(account - 1) // ACCOUNTS_PER_TRADER]

    @property
    def actors(self) -> list[str]:
        return [self.admin, *self.traders, *self.lps, *self.keepers, self.stranger]


def deploy(chain: Chain) -> World:
    """Deploys the protocol with `lever.deploy` and builds the ghost beside it (nothing seeded)."""
    art = artifacts()
    config = fuzz_config()
    accounts = chain.accounts
    admin = to_checksum_address(accounts[0])
    chain.set_time(chain.now())
    protocol = deploy_protocol(DirectProject(chain, art), DirectAccount(chain, admin), config)
    t0 = chain.now()
    decimals = config.collateral.decimals
    oracles, rounds = [], []
    names = sorted(protocol.markets, key=protocol.markets.__getitem__)
    for name in names:
        market = config.markets[name]
        oracles.append(OracleConfig(*config.oracle.config(protocol.feeds[name].address, market.pyth_id())))
        round_id, answer, _, updated_at, answered_in = protocol.feeds[name].latestRoundData()
        rounds.append(ReferenceRound(round_id, answer, updated_at, answered_in, market.feed_decimals))
    lp = config.lp.params(decimals)
    orders = config.orders.settings(decimals)
    settings = Settings(
        vault=protocol.vault.address,
        token_scale=10 ** (18 - decimals),
        fee_share=int(config.vault.protocol_fee_share * WAD),
        oracle=oracles,
        lp_delay=lp[0],
        lp_window=lp[1],
        lp_grace=lp[2],
        lp_fee=lp[3],
        order_delay=orders[0],
        order_window=orders[1],
        min_executor_fee=orders[2],
        max_executor_fee=orders[3],
        pyth_fee=config.pyth.update_fee_wei,
    )
    observer = Observer(chain, protocol)
    params = [m.MarketParams(*config.markets[name].params()) for name in names]
    state = State(
        balances={},
        margin={},
        accounts={},
        positions={},
        orders={},
        params=params,
        prev=[None] * len(names),
        markets=[observer.market(i) for i in range(len(names))],  # created at the deployment's block times
        oracle=[observer.oracle_state(i) for i in range(len(names))],
        rounds=rounds,
        pending_deposit={},
        pending_redeem={},
        claim_deposit={},
        claim_redeem={},
        shares={},
        liquidation=m.LiquidationParams(*config.liquidation.params()),
    )
    n = len(accounts)
    traders = [to_checksum_address(a) for a in accounts[1 : 1 + N_TRADERS]]
    lps = [to_checksum_address(a) for a in accounts[1 + N_TRADERS : 4 + N_TRADERS]]
    keepers = [to_checksum_address(a) for a in accounts[4 + N_TRADERS : 6 + N_TRADERS]]
    stranger = to_checksum_address(accounts[min(6 + N_TRADERS, n - 1)])
    prices = Prices([config.markets[name].pyth_id() for name in names])
    return World(chain, art, protocol, config, admin, traders, lps, keepers, stranger, settings, state, prices, t0)
