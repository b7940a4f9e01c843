"""The Lever keeper as an ApeWorX silverback bot (liquidations, orders, LP requests): the same core
and shell, driven by silverback.

    silverback run keeper --network ethereum:local:foundry

Configuration is the keeper's (`LEVER_*` environment variables, e.g. LEVER_PRIVATE_KEY and
LEVER_DEPLOYMENT); silverback provides the network connection and the new-block events.
"""

from __future__ import annotations

from typing import Any

from ape import chain
from silverback import SilverbackBot

from lever.keeper.runner import Keeper
from lever.keeper.wiring import build_keeper

bot = SilverbackBot()
_state: dict[str, Keeper] = {}


@bot.on_startup()
def hydrate(_startup_state: Any) -> dict[str, int]:
    keeper = build_keeper(chain.provider.web3)
    keeper.hydrate()
    _state["keeper"] = keeper
    return {"accounts": len(keeper.state.records), "orders": len(keeper.state.orders)}


@bot.on_(chain.blocks)
def on_block(_block: Any) -> int:
    """One keeper step per new block: the accounts liquidated in it (a silverback metric)."""
    return _state["keeper"].step()
