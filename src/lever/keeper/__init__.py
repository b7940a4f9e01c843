"""The Lever keeper: liquidates unhealthy accounts, settles orders and LP requests.

`core` is pure (index, evaluation, batching); the shell around it does the I/O.
"""

from lever.chain import AccountRecord
from lever.keeper.core import (
    Batch,
    Candidate,
    DecideParams,
    LiquidationIndex,
    decide,
    evaluate,
)

__all__ = ["AccountRecord", "Batch", "Candidate", "DecideParams", "LiquidationIndex", "decide", "evaluate"]
