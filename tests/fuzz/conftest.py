"""The fuzz suite imports its modules by name (tests/fuzz is on the path), and puts its two
in-process lanes on the two workers of `pytest -n 2`."""

import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The lanes first, so that the scheduler below starts one on each worker."""
    items.sort(key=lambda item: item.originalname != "test_invariants_in_process")


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """Tests handed out one at a time, in order, as workers become free. xdist's default sends
    consecutive tests in chunks, which can put both lanes on one worker: the first would claim
    every shard while the other worker idles."""
    from xdist.scheduler import LoadGroupScheduling

    return LoadGroupScheduling(config, log)
