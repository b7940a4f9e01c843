"""The dashboard in Debian's Chromium (Playwright, headless), against the indexer following
Anvil: every page loads and shows the seeded state (a screenshot of each under build/dashboard/),
and the activity page updates by itself after a trade, an order and a liquidation."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from harness import Harness
from history import BTC, ETH, fund_insurance, place_limit

from lever.chain import Addresses, ProtocolReader
from lever.dashboard import Running, alongside
from lever.deployments import Deployment
from lever.hermes import HermesClient
from lever.keeper.core import KeeperConfig
from lever.keeper.runner import Keeper
from lever.keeper.service import KeeperService
from lever.paths import REPO

CHROMIUM = Path("/usr/bin/chromium")
SHOTS = REPO / "build" / "dashboard"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WAIT_MS = 20_000


@pytest.fixture(scope="module")
def browser_context() -> Iterator[Any]:
    if not CHROMIUM.is_file():
        pytest.skip("Debian's Chromium is not installed: run `make browser`")
    from playwright.sync_api import sync_playwright

    profile = tempfile.mkdtemp(prefix="lever-chromium-")
    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            profile, executable_path=str(CHROMIUM), args=ARGS, headless=True, viewport={"width": 1400, "height": 900}
        )
        try:
            yield context
        finally:
            context.close()
    shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture
def keeper_url(h: Harness, deployment: Deployment, chain: Any) -> Iterator[str]:
    """The real keeper's /health and /metrics (hydrated from the chain; not stepping)."""
    from nodes import free_port  # tests/nodes.py: `conftest` may name another directory's module

    reader = ProtocolReader(chain.provider.web3, Addresses.from_deployment(deployment))
    keeper = Keeper(reader, HermesClient("http://127.0.0.1:9"), None, KeeperConfig(start_block=0))
    keeper.hydrate()
    service = KeeperService(keeper, metrics_port=free_port())
    service.hydrated = True
    with service.status_served() as url:
        yield url


@pytest.fixture
def dashboard(h: Harness, chain: Any, deployment: Deployment, tmp_path: Path, keeper_url: str) -> Iterator[Running]:
    with alongside(
        chain.provider.uri,
        deployment,
        db_url=f"sqlite:///{tmp_path / 'index.sqlite'}",
        keeper_url=keeper_url,
        interval=0.2,
    ) as running:
        yield running


def head(chain: Any) -> int:
    return int(chain.blocks.head.number)


def test_pages_after_seeding_show_the_state_and_save_screenshots(
    h: Harness, chain: Any, alice: Any, bob: Any, dashboard: Running, browser_context: Any
) -> None:
    fund_insurance(h, bob, 50)
    steady = h.open_account(alice, 10_000)
    h.trade(alice, steady, ETH, "2")
    h.trade(alice, steady, BTC, "-0.1")
    order = place_limit(h, alice, steady, "0.3", "2500")
    risky = h.open_account(bob, 2_000)
    h.trade(bob, risky, ETH, "12")
    near = h.open_account(bob, 1_500)
    h.trade(bob, near, ETH, "-9")
    h.set_price(ETH, 2_890)
    h.liquidate([risky])
    dashboard.wait_indexed(head(chain))
    SHOTS.mkdir(parents=True, exist_ok=True)
    page = browser_context.new_page()

    page.goto(dashboard.url + "/")
    page.wait_for_selector("#markets-table tr[data-market='ETH-USD']")
    assert "$2,890.00" in page.inner_text("#markets-table tr[data-market='ETH-USD'] .price")
    assert page.inner_text("#with-positions") == "3"
    assert page.inner_text("#pending-orders") == "1"
    page.screenshot(path=str(SHOTS / "overview.png"), full_page=True)

    page.goto(dashboard.url + "/markets")
    assert page.locator("figure.chart svg polyline").count() == 2
    page.screenshot(path=str(SHOTS / "markets.png"), full_page=True)

    page.goto(dashboard.url + "/pool")
    assert page.inner_text("#insurance").startswith("$")
    assert page.locator("figure.chart").count() == 6
    page.screenshot(path=str(SHOTS / "pool.png"), full_page=True)

    page.goto(dashboard.url + "/accounts")
    rows = page.locator("#accounts-table tbody tr[data-account]")
    assert rows.count() == 3
    healths = [float(t) for t in page.locator("#accounts-table td.health").all_inner_texts()]
    assert healths == sorted(healths)  # health ascending by default
    page.click("a[data-sort='health']")  # the second click on the sorted column reverses it
    page.wait_for_url("**dir=desc**")
    descending = [float(t) for t in page.locator("#accounts-table td.health").all_inner_texts()]
    assert descending == sorted(healths, reverse=True)
    assert "$" in page.inner_text(f"#accounts-table tr[data-account='{near}'] .liq")
    page.screenshot(path=str(SHOTS / "accounts.png"), full_page=True)

    page.goto(dashboard.url + "/liquidation-map?market=0")
    assert page.locator("#liq-map rect").count() > 0
    # The leveraged long and short have one; the steady account's margin covers any ETH price.
    assert page.locator("#nearest-table tr[data-account]").count() == 2
    assert page.locator(f"#nearest-table tr[data-account='{near}']").count() == 1
    page.screenshot(path=str(SHOTS / "liquidation-map.png"), full_page=True)

    page.goto(dashboard.url + "/activity")
    assert page.locator(f"#orders-table tr[data-order='{order}'][data-status='pending']").count() == 1
    assert page.locator(f".liquidations-table tr[data-account='{risky}']").count() == 1
    page.screenshot(path=str(SHOTS / "activity.png"), full_page=True)

    page.goto(dashboard.url + "/keeper")
    assert page.inner_text("#keeper-state") == "ok"
    assert "lever_keeper_accounts_tracked" in page.inner_text("#metrics-table")
    page.screenshot(path=str(SHOTS / "keeper.png"), full_page=True)


def _activity(dashboard: Running, chain: Any, browser_context: Any) -> Any:
    dashboard.wait_indexed(head(chain))
    page = browser_context.new_page()
    page.goto(dashboard.url + "/activity")
    page.wait_for_selector("#live-status.on")  # the event stream is open
    return page


def test_activity_page_after_a_trade_shows_it_without_reloading(
    h: Harness, chain: Any, alice: Any, dashboard: Running, browser_context: Any
) -> None:
    account = h.open_account(alice, 5_000)
    page = _activity(dashboard, chain, browser_context)
    assert page.locator(f".trades-table tr[data-account='{account}']").count() == 0
    h.trade(alice, account, ETH, "1")
    page.wait_for_selector(f".trades-table tr[data-account='{account}']", timeout=WAIT_MS)
    assert page.evaluate("performance.getEntriesByType('navigation').length") == 1  # no reload


def test_activity_page_after_an_order_shows_it_without_reloading(
    h: Harness, chain: Any, alice: Any, dashboard: Running, browser_context: Any
) -> None:
    account = h.open_account(alice, 5_000)
    page = _activity(dashboard, chain, browser_context)
    order = place_limit(h, alice, account, "0.5", "2000")
    page.wait_for_selector(f"#orders-table tr[data-order='{order}'][data-status='pending']", timeout=WAIT_MS)
    h.p.order_book.cancelOrder(order, sender=alice)
    page.wait_for_selector(f"#orders-table tr[data-order='{order}'][data-status='cancelled']", timeout=WAIT_MS)


def test_activity_page_after_a_liquidation_shows_it_without_reloading(
    h: Harness, chain: Any, alice: Any, dashboard: Running, browser_context: Any
) -> None:
    account = h.open_account(alice, 2_000)
    h.trade(alice, account, ETH, "12")
    page = _activity(dashboard, chain, browser_context)
    h.set_price(ETH, 2_890)
    h.liquidate([account])
    page.wait_for_selector(f".liquidations-table tr[data-account='{account}']", timeout=WAIT_MS)
