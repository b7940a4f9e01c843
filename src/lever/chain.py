"""Reading the protocol through web3: batched view calls pinned to one block, event scans, and the
conversion of what the contracts return into the mirror's types (`lever.math`).

One reader for every client: the keeper, the command line, the demo and the tests. Thin on
purpose: every method is one kind of RPC work, so callers can count, retry and time it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from eth_abi.abi import decode as abi_decode
from eth_abi.abi import encode as abi_encode
from requests.exceptions import ConnectionError as RequestsConnectionError
from requests.exceptions import HTTPError, Timeout
from web3 import Web3
from web3.exceptions import ContractLogicError, Web3RPCError

from lever import math as m
from lever.artifacts import Artifacts, artifacts
from lever.deployments import Deployment
from lever.math.orders import Order

# Errors of the transport, worth retrying; a revert is not one of them.
TRANSPORT_ERRORS: tuple[type[BaseException], ...] = (
    RequestsConnectionError,
    HTTPError,
    Timeout,
    ConnectionError,
    TimeoutError,
)
Block = int | str
View = tuple[str, str, str, tuple[Any, ...]]  # (contract name, address, function, arguments)


def is_out_of_gas(exc: BaseException) -> bool:
    """Did a call fail for lack of gas? Either the node says so (Anvil: "EVM error OutOfGas";
    Hardhat: "ran out of gas"), or the call reverted with no data: the protocol's contracts
    revert only with custom errors, so an empty revert is a sub-call that ran out of gas and
    left its caller the 1/64 it keeps back (EIP-150)."""
    if isinstance(exc, ContractLogicError):
        return exc.data in (None, "", "0x")
    text = str(exc).lower()
    return "outofgas" in text or "out of gas" in text


@dataclass(frozen=True)
class Addresses:
    token: str
    oracle: str
    vault: str
    engine: str
    order_book: str
    liquidator: str
    timelock: str
    pyth: str
    markets: dict[str, int]  # name -> market id
    feeds: dict[int, str]  # market id -> reference feed
    price_ids: dict[int, bytes]  # market id -> pull-oracle price id

    @classmethod
    def from_deployment(cls, d: Deployment) -> Addresses:
        c = d.contracts
        return cls(
            token=c["token"],
            oracle=c["oracle"],
            vault=c["vault"],
            engine=c["engine"],
            order_book=c["order_book"],
            liquidator=c["liquidator"],
            timelock=c["timelock"],
            pyth=c["pyth"],
            markets=dict(d.markets),
            feeds={d.markets[name]: feed for name, feed in d.feeds.items()},
            price_ids={d.markets[name]: bytes.fromhex(pid.removeprefix("0x")) for name, pid in d.price_ids.items()},
        )

    @property
    def names(self) -> dict[int, str]:
        return {market: name for name, market in self.markets.items()}


@dataclass(frozen=True)
class MarketSnapshot:
    """Everything needed to see a market at any moment and any pull price."""

    market_id: int
    params: m.MarketParams
    prev: m.MarketParams
    state: m.MarketState
    oracle: m.OracleConfig
    oracle_state: m.OracleState
    # the reference feed's latest (round id, answer, updatedAt, answeredIn)
    reference: tuple[int, int, int, int]
    reference_decimals: int

    @property
    def round(self) -> m.oracle.ReferenceRound:
        return m.oracle.ReferenceRound(*self.reference, decimals=self.reference_decimals)

    def reference_price(self, now: int) -> int:
        """The reference feed's price as the adapter reads it at `now` (0 if unusable)."""
        return m.oracle.reference_price(self.market_id, self.round, self.oracle.reference_max_age, now, strict=False)

    def recorded(self, now: int) -> m.OracleState:
        """The oracle state once the reference feed's latest round is recorded (if usable), as a
        transaction at `now` would record it."""
        return m.oracle.record_round(self.oracle, self.oracle_state, self.market_id, self.round, now, strict=False)[0]

    def price_data(self, now: int, price: int | None = None, publish_time: int | None = None) -> m.PriceData:
        """The oracle's `PriceData` at `now` for a pull price (default: the stored latest one)."""
        if price is None:
            return m.oracle.latest(self.oracle, self.oracle_state, self.round, now)
        s, reference = m.oracle.record_round(
            self.oracle, self.oracle_state, self.market_id, self.round, now, strict=False
        )
        return m.oracle.price_data(self.oracle, s, price, publish_time or 0, now, reference)

    def view(self, now: int, pool_wad: int, price: int | None = None, publish_time: int | None = None) -> m.MarketView:
        """The market as an entry point at `now` sees it, at `price` (default: the stored latest)."""
        return m.market_view(
            self.market_id,
            self.params,
            self.state,
            self.price_data(now, price, publish_time),
            pool_wad,
            now,
            prev=self.prev,
        )


@dataclass
class AccountRecord:
    """What a client knows of one account: margin (token units), positions, last trade time."""

    margin_token: int
    positions: dict[int, m.Position] = field(default_factory=dict)
    last_trade_time: int = 0


@dataclass(frozen=True)
class Ledgers:
    pool: int
    insurance: int
    protocol_fees: int
    protocol_fee_share: int
    total_reserve_wad: int

    def coverage(self, token_scale: int) -> m.Coverage:
        return m.Coverage(self.pool * token_scale, self.total_reserve_wad)


class ProtocolReader:
    """Reads through one web3 connection; `calls` counts every RPC request."""

    def __init__(
        self,
        web3: Web3,
        addresses: Addresses,
        arts: Artifacts | None = None,
        retries: int = 4,
        backoff: float = 0.05,
    ):
        self.arts = arts or artifacts()
        self.w3 = web3
        self.addresses = addresses
        self.retries, self.backoff = retries, backoff

        def contract(name: str, address: str) -> Any:
            return web3.eth.contract(address=Web3.to_checksum_address(address), abi=self.arts.abi(name))

        a = addresses
        self.token = contract("MockToken", a.token)
        self.oracle = contract("OracleAdapter", a.oracle)
        self.vault = contract("LeverVault", a.vault)
        self.engine = contract("PerpEngine", a.engine)
        self.order_book = contract("OrderBook", a.order_book)
        self.liquidator = contract("Liquidator", a.liquidator)
        self.timelock = contract("LeverTimelock", a.timelock)
        self.feeds = {mk: contract("MockPriceFeed", feed) for mk, feed in a.feeds.items()}
        self.calls = 0
        self._calls_lock = threading.Lock()  # the keeper simulates from two threads
        self.head_hash = self.head_parent = b""
        self.head_gas_limit = 30_000_000
        self.head_base_fee = 0
        self._scale = 0
        self._reference_decimals: dict[int, int] = {}

    # ------------------------------------------------------------------ plumbing

    def count_call(self) -> None:
        """One more RPC request in `calls` (requests are sent from more than one thread)."""
        with self._calls_lock:
            self.calls += 1

    def retry(self, request: Callable[[], Any]) -> Any:
        """One request, retried with exponential backoff on transport errors (each try counted)."""
        for attempt in range(self.retries + 1):
            self.count_call()
            try:
                return request()
            except TRANSPORT_ERRORS:
                if attempt == self.retries:
                    raise
                time.sleep(self.backoff * 2**attempt)
        raise AssertionError("unreachable")

    def call(self, fn: Any, block: Block = "latest") -> Any:
        return self.retry(lambda: fn.call(block_identifier=block))

    # ------------------------------------------------------------------ blocks

    def head(self) -> tuple[int, int]:
        """(number, timestamp) of the latest block; remembers its hash, parent, gas limit, base fee."""
        block = self.retry(lambda: self.w3.eth.get_block("latest"))
        self.head_hash, self.head_parent = bytes(block["hash"]), bytes(block["parentHash"])
        self.head_gas_limit = int(block["gasLimit"])
        self.head_base_fee = int(block.get("baseFeePerGas", 0))
        return int(block["number"]), int(block["timestamp"])

    def block_hash(self, number: int) -> bytes:
        return bytes(self.retry(lambda: self.w3.eth.get_block(number))["hash"])

    # ------------------------------------------------------------------ protocol state

    def token_scale(self) -> int:
        if not self._scale:
            self._scale = int(self.call(self.vault.functions.tokenScale()))
        return self._scale

    def liquidation_params(self, block: Block = "latest") -> m.LiquidationParams:
        return m.LiquidationParams.from_chain(self.call(self.liquidator.functions.params(), block))

    def market_count(self, block: Block = "latest") -> int:
        return int(self.call(self.engine.functions.marketCount(), block))

    def market(self, market: int, block: Block = "latest") -> MarketSnapshot:
        e, o = self.engine.functions, self.oracle.functions
        config = m.OracleConfig.from_chain(self.call(o.config(market), block))
        if market not in self._reference_decimals:
            self._reference_decimals[market] = int(self.call(self.feeds[market].functions.decimals(), block))
        ref = self.call(self.feeds[market].functions.latestRoundData(), block)
        return MarketSnapshot(
            market_id=market,
            params=m.MarketParams.from_chain(self.call(e.marketParams(market), block)),
            prev=m.MarketParams.from_chain(self.call(e.previousMarketParams(market), block)),
            state=m.MarketState.from_chain(self.call(e.marketState(market), block)),
            oracle=config,
            oracle_state=m.OracleState.from_chain(self.call(o.state(market), block)),
            reference=(int(ref[0]), int(ref[1]), int(ref[3]), int(ref[4])),
            reference_decimals=self._reference_decimals[market],
        )

    def ledgers(self, block: Block = "latest") -> Ledgers:
        v = self.vault.functions
        return Ledgers(
            pool=int(self.call(v.poolAssets(), block)),
            insurance=int(self.call(v.insuranceFund(), block)),
            protocol_fees=int(self.call(v.protocolFees(), block)),
            protocol_fee_share=int(self.call(v.protocolFeeShareWad(), block)),
            total_reserve_wad=int(self.call(self.engine.functions.totalReserveWad(), block)),
        )

    def account_count(self, block: Block = "latest") -> int:
        return int(self.call(self.engine.functions.accountCount(), block))

    def accounts_with_positions(self, from_id: int, count: int, block: Block = "latest") -> list[int]:
        return [int(a) for a in self.call(self.liquidator.functions.accountsWithPositions(from_id, count), block)]

    def account(self, account: int, block: Block = "latest") -> AccountRecord:
        e = self.engine.functions
        markets = self.call(e.accountMarkets(account), block)
        positions = {int(mk): m.Position.from_chain(self.call(e.position(account, mk), block)) for mk in markets}
        margin = int(self.call(self.vault.functions.marginOf(account), block))
        last = int(self.call(e.accountLastTradeTime(account), block))
        return AccountRecord(margin, positions, last)

    def accounts(self, ids: Sequence[int], block: Block = "latest", chunk: int = 200) -> dict[int, AccountRecord]:
        """`account` of many accounts: `Liquidator.accountsOf`, `chunk` accounts a call (well
        under the node's `eth_call` gas cap), the calls in batched requests. One call for 200
        accounts costs about what one `position` read does."""
        parts = [list(ids[i : i + chunk]) for i in range(0, len(ids), chunk)]
        rows = self.views([("Liquidator", self.liquidator.address, "accountsOf", (part,)) for part in parts], block)
        records: dict[int, AccountRecord] = {}
        for (part,) in rows:
            for account, margin, last, markets, positions in part:
                records[int(account)] = AccountRecord(
                    int(margin),
                    {int(mk): m.Position.from_chain(raw) for mk, raw in zip(markets, positions, strict=True)},
                    int(last),
                )
        return records

    def orders_of_accounts(self, ids: Sequence[int], block: Block = "latest") -> dict[int, dict[int, Order]]:
        """`orders_of` of many accounts, in batched requests."""
        rows = self.views([("OrderBook", self.order_book.address, "ordersOf", (a,)) for a in ids], block)
        return {
            a: {int(i): Order.from_chain(a, int(i), o) for i, o in zip(*row, strict=True)}
            for a, row in zip(ids, rows, strict=True)
        }

    def orders_of(self, account: int, block: Block = "latest") -> dict[int, Order]:
        ids, orders = self.call(self.order_book.functions.ordersOf(account), block)
        return {int(i): Order.from_chain(account, int(i), o) for i, o in zip(ids, orders, strict=True)}

    def order_settings(self, block: Block = "latest") -> tuple[int, int, int, int]:
        return tuple(int(v) for v in self.call(self.order_book.functions.settings(), block))  # type: ignore[return-value]

    def lp_params(self, block: Block = "latest") -> tuple[int, int, int, int]:
        return tuple(int(v) for v in self.call(self.vault.functions.lpParams(), block))  # type: ignore[return-value]

    def pending_lp(self, controller: str, is_deposit: bool, block: Block = "latest") -> tuple[int, int, int]:
        """(amount, request time, fee) of a controller's pending request."""
        amount, t, fee = self.call(self.vault.functions.pendingRequest(controller, is_deposit), block)
        return int(amount), int(t), int(fee)

    def open_markets(self, block: Block = "latest") -> list[int]:
        mask = int(self.call(self.engine.functions.openMarketsMask(), block))
        return [mk for mk in range(32) if mask >> mk & 1]

    def update_fee(self) -> int:
        return int(self.call(self.oracle.functions.updateFee()))

    def health(self, accounts: list[int], block: Block = "latest", chunk: int = 400) -> dict[int, bool]:
        """Batched view calls (`chunk` accounts each, to stay under the node's eth_call gas cap):
        which accounts the contract considers liquidatable at its stored prices."""
        from eth_abi.abi import decode as abi_decode

        types = self.arts.output_types("Liquidator", "healthOf")
        result: dict[int, bool] = {}
        for i in range(0, len(accounts), chunk):
            # Raw eth_call + eth_abi: web3's result formatters cost ~0.5 ms a row.
            data = self.liquidator.encode_abi("healthOf", args=[accounts[i : i + chunk]])
            tx = {"to": self.liquidator.address, "data": data}
            raw = self.retry(lambda: self.w3.eth.call(tx, block))  # type: ignore[arg-type]  # noqa: B023
            (rows,) = abi_decode(types, bytes(raw))
            result.update({int(row[0]): bool(row[5]) for row in rows})
        return result

    def views(self, calls: Sequence[View], block: Block = "latest", chunk: int = 500) -> list[tuple[Any, ...]]:
        """Many view calls, each decoded: `chunk` calls per JSON-RPC batch (one HTTP request, each
        retried whole), encoded with eth_abi from the compiled ABIs (web3's contract objects cost
        ~10 ms a call to encode and decode; a batch of 500 reads costs about one request). A
        provider without batches (the in-process test chain) gets one request a call."""
        tag = hex(block) if isinstance(block, int) else block
        requests = []
        for contract, address, fn, args in calls:
            data = self.arts.selector(contract, fn) + abi_encode(self.arts.input_types(contract, fn), list(args))
            requests.append(("eth_call", [{"to": address, "data": "0x" + data.hex()}, tag]))
        batch = getattr(self.w3.provider, "make_batch_request", None)
        responses: list[Any] = []
        for i in range(0, len(requests), chunk):
            part = requests[i : i + chunk]
            if batch is None:
                one = self.w3.provider.make_request
                responses += [self.retry(lambda r=r, one=one: one(*r)) for r in part]  # type: ignore[misc]
                continue
            answer = self.retry(lambda part=part: batch(part))  # type: ignore[misc]
            if not isinstance(answer, list):  # the node refused the whole batch
                raise ContractLogicError(f"batched eth_call: {answer.get('error')}")
            responses += answer
        out = []
        for (contract, _, fn, _), response in zip(calls, responses, strict=True):
            if "error" in response:
                raise ContractLogicError(f"{contract}.{fn}: {response['error']}")
            result = response["result"]
            raw = bytes(result) if not isinstance(result, str) else bytes.fromhex(result.removeprefix("0x"))
            out.append(tuple(abi_decode(self.arts.output_types(contract, fn), raw)))
        return out

    # ------------------------------------------------------------------ events

    def logs(self, from_block: int, to_block: int) -> list[dict[str, Any]]:
        """Every log of the protocol's contracts and reference feeds in [from_block, to_block], in
        one `eth_getLogs` request: each its `address` (lower case), `topics` and `data` (bytes) and
        `blockNumber`. Decoded by hand: web3's log formatters cost about a millisecond a log, a
        second for a block of a thousand settlements."""
        addresses = [c.address for c in (self.engine, self.vault, self.liquidator, self.oracle, self.order_book)]
        addresses += [f.address for f in self.feeds.values()]
        query = {"fromBlock": hex(from_block), "toBlock": hex(to_block), "address": addresses}
        response = self.retry(lambda: self.w3.provider.make_request("eth_getLogs", [query]))  # type: ignore[arg-type]
        if "error" in response:
            raise Web3RPCError(f"eth_getLogs: {response['error']}")
        return [
            {
                "address": raw["address"].lower(),
                "topics": [bytes.fromhex(t.removeprefix("0x")) for t in raw["topics"]],
                "data": bytes.fromhex(raw["data"].removeprefix("0x")),
                "blockNumber": int(raw["blockNumber"], 16),
            }
            for raw in response["result"]
        ]
