"""The mirror's way of predicting a revert: the contract's custom error, by name."""

from __future__ import annotations

from typing import Any


class Refused(Exception):
    """The contracts must revert with the custom error `error` (arguments, where known, in `args`)."""

    def __init__(self, error: str, **args: Any):
        super().__init__(error)
        self.error = error
        self.args_ = args
