"""Sweeps (in process and on a Dask cluster), the report, recommendations and the command line."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from lever.stress import report
from lever.stress.cli import parse_cell, stress
from lever.stress.errors import StressError
from lever.stress.recommend import parse_budget, recommend
from lever.stress.sweep import SweepSpec, parse_grid, run_sweep

SMALL = SweepSpec(
    name="t",
    scenarios=("march-2020", "cascade"),
    seeds=2,
    accounts=60,
    steps=60,
    grid=(("maintenance_margin_ratio", ("0.01", "0.03")), ("penalty_ratio", ("0.0025", "0.01"))),
)


@pytest.fixture(scope="module")
def in_process() -> Any:
    return run_sweep(SMALL, workers=0)


def test_a_sweep_runs_every_parameter_set_scenario_and_seed(in_process: Any) -> None:
    assert len(in_process.runs) == 4 * 2 * 2
    assert {r.scenario for r in in_process.runs} == {"march-2020", "cascade"}
    assert len(in_process.cells()) == 8
    assert all(c.runs == 2 for c in in_process.cells())


def test_a_sweep_on_a_dask_cluster_gives_the_in_process_results(in_process: Any) -> None:
    from dask.distributed import Client, LocalCluster

    with (
        LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster,
        Client(cluster) as client,
    ):
        on_dask = run_sweep(SMALL, client=client)
    assert on_dask.workers == 2
    timing = {"seconds": 0, "cpu_seconds": 0}
    assert [r.summary() | timing for r in on_dask.runs] == [r.summary() | timing for r in in_process.runs]


def test_a_random_search_draws_points_between_the_grid_ends() -> None:
    spec = replace(SMALL, random=5)
    sets = spec.knob_sets()
    assert len(sets) == 5
    for knobs in sets:
        mm = float(dict(knobs)["maintenance_margin_ratio"])
        assert 0.01 <= mm <= 0.03


def test_the_report_is_self_contained_html_with_its_pictures_and_json(in_process: Any, tmp_path: Path) -> None:
    json_path, html_path = report.write(in_process, tmp_path / "t")
    data = json.loads(json_path.read_text())
    assert data["cells"] == 16 and len(data["figures"]) == 8
    page = html_path.read_text()
    assert page.count("data:image/png;base64,") == 3  # heatmap, drawdowns, timelines
    assert not re.search(r"(src|href)=['\"]https?://", page)  # nothing fetched from the network


def test_recommend_picks_the_lowest_margin_that_meets_the_budget(in_process: Any) -> None:
    data = in_process.to_json()
    loose = recommend(data, parse_budget("es99<=insurance"))
    assert loose is not None and loose.maintenance_margin_ratio == Decimal("0.01")
    worst_low = max(f["bad_debt_es99"] for f in data["figures"] if f["knobs"]["maintenance_margin_ratio"] == "0.01")
    tight = recommend(data, parse_budget(f"es99<={worst_low * 0.999:.6f}"))
    assert tight is None or float(tight.maintenance_margin_ratio) > 0.01
    assert recommend(data, parse_budget("es99<=0,dry<=0")) is None or all(
        f["bad_debt_es99"] == 0 for f in data["figures"]
    )


@pytest.mark.parametrize(
    ("budget", "message"),
    [
        ("es99 < 5", "expected metric<=value"),
        ("loss<=5", "unknown metric 'loss'"),
    ],
)
def test_a_malformed_budget_is_one_clear_error(budget: str, message: str) -> None:
    with pytest.raises(StressError, match=message):
        parse_budget(budget)


def test_a_malformed_grid_or_cell_is_one_clear_error() -> None:
    with pytest.raises(StressError, match="expected name=value1"):
        parse_grid(["maintenance_margin_ratio"])
    with pytest.raises(StressError, match="unknown parameter"):
        parse_grid(["margin=0.1"])
    with pytest.raises(StressError, match="the seed must be a whole number"):
        parse_cell("march-2020/x")
    assert parse_cell("replay-crash/8/penalty_ratio=0.01") == ("replay-crash", 8, {"penalty_ratio": "0.01"})


def test_the_cli_runs_a_sweep_then_recommends_from_its_report(tmp_path: Path) -> None:
    runner = CliRunner()
    out = runner.invoke(
        stress,
        [
            "run",
            "--name",
            "cli",
            "--scenario",
            "flash-crash",
            "--seeds",
            "1",
            "--accounts",
            "30",
            "--steps",
            "40",
            "--grid",
            "maintenance_margin_ratio=0.01,0.02",
            "--grid",
            "penalty_ratio=0.005,0.01",
            "--workers",
            "0",
            "--out",
            str(tmp_path),
        ],
    )
    assert out.exit_code == 0, out.output
    assert (tmp_path / "cli" / "report.html").is_file()
    rec = runner.invoke(
        stress, ["recommend", "--report", str(tmp_path / "cli" / "report.json"), "--budget", "es99<=1000000,dry<=1"]
    )
    assert rec.exit_code == 0, rec.output
    assert "recommended" in rec.output


def test_the_cli_reports_a_user_mistake_as_one_line() -> None:
    runner = CliRunner()
    out = runner.invoke(stress, ["run", "--scenario", "nope", "--workers", "0"])
    assert out.exit_code == 1
    assert out.output.strip().splitlines() == ["error: unknown scenario 'nope' (see `lever stress run --list`)"]
    missing = runner.invoke(stress, ["recommend", "--report", "/nonexistent/report.json"])
    assert missing.exit_code == 1 and missing.output.startswith("error: no report at")


def test_recommend_without_a_match_says_so_and_fails_only_when_required(in_process: Any, tmp_path: Path) -> None:
    path = tmp_path / "report.json"
    path.write_text(json.dumps(in_process.to_json()))
    runner = CliRunner()
    soft = runner.invoke(stress, ["recommend", "--report", str(path), "--budget", "es99<=0,mean<=-1"])
    assert soft.exit_code == 0 and "no parameter set" in soft.output
    hard = runner.invoke(stress, ["recommend", "--report", str(path), "--budget", "es99<=0,mean<=-1", "--require"])
    assert hard.exit_code == 3


def test_the_cli_lists_the_scenario_library() -> None:
    out = CliRunner().invoke(stress, ["run", "--list"])
    assert out.exit_code == 0
    assert "march-2020" in out.output and "oracle-freeze-jump" in out.output
