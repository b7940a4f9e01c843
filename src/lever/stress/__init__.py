"""`lever stress`: the stress lab.

A scenario library (`scenarios`, data in `data/scenarios/`), agents and protocol parameters
(`model`), two engines on one model — the exact engine on `lever.math` integers (`exact`) and the
vectorised one on numpy (`vector`, cross-checked against the exact one) — sweeps on local
processes or a Dask cluster (`sweep`), reports (`report`), recommendations (`recommend`), the
chain replay (`replay`) and the click group (`cli`).
"""
