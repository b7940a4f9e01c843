"""The stress lab's pure tests run without a chain (`python -m pytest tests/stress -p no:ape_test`);
the replay needs ape's test plugin and Anvil (`ape test tests/stress`), and is skipped without them."""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.pluginmanager.has_plugin("ape_test"):
        return
    skip = pytest.mark.skip(reason="the chain replay runs under `ape test` (ape's fixtures and Anvil)")
    for item in items:
        if item.path.name == "test_replay.py":
            item.add_marker(skip)
