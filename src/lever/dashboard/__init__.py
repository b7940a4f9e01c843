"""`lever dashboard`: a read-only web view of the index (markets, pool, accounts, liquidation map,
activity, keeper), live through server-sent events; `alongside` runs it with the indexer in
background threads (for `lever demo --dashboard`)."""

from lever.dashboard.serve import Running, alongside

__all__ = ["Running", "alongside"]
