"""The stress lab's user-facing errors (one line each)."""

from __future__ import annotations

from lever.errors import LeverError


class StressError(LeverError):
    """A stress-lab input the user can fix: an unknown scenario, a bad grid, a budget, a cell."""


class ReplayMismatch(LeverError):
    """The chain and the exact engine disagree on a replayed cell (the first difference, in words)."""
