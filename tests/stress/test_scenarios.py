"""The scenario library: versioned data, seedable generators, the conditions each family sets."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from lever.stress.errors import StressError
from lever.stress.scenarios import WARMUP, generate, load_library, spec


def test_loading_the_library_finds_at_least_twenty_scenarios_with_descriptions() -> None:
    lib = load_library()
    assert len(lib) >= 20
    assert all(s.description for s in lib.values())
    historical = {n for n, s in lib.items() if s.family == "historical" and not n.startswith("replay")}
    assert {"march-2020", "may-2021", "luna-2022", "ftx-2022", "aug-2024"} <= historical
    assert all(lib[n].source for n in historical)


def test_generating_twice_with_one_seed_gives_the_same_path_and_another_seed_a_different_one() -> None:
    s = spec("gbm-volatile")
    a, b, c = generate(s, 200, 5), generate(s, 200, 5), generate(s, 200, 6)
    assert np.array_equal(a.mult, b.mult)
    assert not np.array_equal(a.mult, c.mult)


@pytest.mark.parametrize("name", ["march-2020", "may-2021", "luna-2022", "ftx-2022", "aug-2024"])
def test_a_historical_crash_reaches_its_published_drawdown(name: str) -> None:
    s = spec(name)
    path = generate(s, 500, 1).mult[:, 0]
    drawdown = float(np.max(1 - path / np.maximum.accumulate(path)))  # peak to trough
    assert math.isclose(drawdown, s.params["drawdown"], rel_tol=1e-9)


def test_every_path_starts_flat_for_the_warmup() -> None:
    for s in load_library().values():
        sc = generate(s, 120, 2)
        assert np.all(sc.mult[: WARMUP + 1] == 1.0), s.name
        assert np.all(sc.mult > 0), s.name


def test_each_condition_family_sets_its_condition() -> None:
    assert generate(spec("oracle-freeze-jump"), 200, 1).frozen.sum() == 40
    assert generate(spec("keeper-outage"), 200, 1).keeper_down.sum() == 40
    assert generate(spec("gas-spike"), 200, 1).gas_gwei.max() == 1500
    assert generate(spec("lp-run"), 200, 1).lp_run.max() == 0.5
    assert generate(spec("skew-squeeze"), 200, 1).squeeze.max() == 0.4
    assert generate(spec("cascade"), 200, 1).impact_multiplier == 5


def test_correlation_sets_how_closely_the_second_market_follows() -> None:
    def corr(name: str) -> float:
        r = np.diff(np.log(generate(spec(name), 500, 3).mult), axis=0)[WARMUP:]
        return float(np.corrcoef(r[:, 0], r[:, 1])[0, 1])

    assert corr("corr-shock-high") > 0.9
    assert corr("corr-shock-low") < 0.5


def test_an_unknown_scenario_or_a_too_short_run_is_one_clear_error() -> None:
    with pytest.raises(StressError, match="unknown scenario 'nope'"):
        spec("nope")
    with pytest.raises(StressError, match="at least"):
        generate(spec("gbm-calm"), 5, 1)


def test_a_data_file_of_another_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "v2.toml"
    path.write_text("version = 2\n")
    with pytest.raises(StressError, match="unsupported scenario data version"):
        load_library(path)
