"""One root for every error the Lever tooling raises on purpose.

Each is a problem the user can act on; the command line prints it as one `error: ...` line and
exits non-zero (`lever.cli`), never with a traceback. Anything else is a bug and keeps its
traceback.
"""

from __future__ import annotations

from typing import Any


class LeverError(Exception):
    """A problem the user can act on: one line, non-zero exit."""


class ConfigError(LeverError):
    """A setting, a parameter file or an argument is missing or invalid (an unknown market, a bad
    address, a malformed number, ...)."""


class DeploymentError(LeverError):
    """No deployment, a conflicting deployment, or a malformed deployment record."""


class InsufficientFunds(LeverError):
    """A wallet or an account holds less than the action needs; nothing was sent."""


class Reverted(LeverError):
    """A contract refused a call (or would refuse it: ape finds a revert while estimating gas,
    before anything is sent). `error` is the custom error's name (None if the revert carried no
    known error), `meaning` what it means in words."""

    def __init__(self, action: str, error: str | None, meaning: str, args: dict[str, Any] | None = None):
        self.action, self.error, self.meaning, self.error_args = action, error, meaning, dict(args or {})
        super().__init__(f"{action}: {error}: {meaning}" if error else f"{action}: {meaning}")


class Refusal(LeverError):
    """An order the protocol would refuse (predicted by the mirror before anything is sent) or
    did refuse at settlement (the order was cancelled): the custom error's name and meaning."""

    def __init__(self, what: str, error: str, meaning: str):
        self.error, self.meaning = error, meaning
        super().__init__(f"{what}: {error}: {meaning}")
