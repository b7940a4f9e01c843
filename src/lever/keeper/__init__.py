"""The Lever keeper: finds unhealthy accounts and liquidates them.

`core` is pure (index, evaluation, batching); the shell around it does the I/O.
"""

from lever.keeper.core import (
    AccountRecord,
    Batch,
    Candidate,
    DecideParams,
    LiquidationIndex,
    decide,
    evaluate,
)

__all__ = ["AccountRecord", "Batch", "Candidate", "DecideParams", "LiquidationIndex", "decide", "evaluate"]
