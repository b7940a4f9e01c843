"""A sweep's report: `report.json` (every cell's figures and every run's summary) and a
self-contained `report.html` (inline PNG pictures, no external resources): bad-debt heatmaps
over two parameters, LP drawdown distributions, liquidation timelines, and the figures table."""

from __future__ import annotations

import base64
import html
import io
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from lever.stress.metrics import CellFigures, RunResult
from lever.stress.sweep import SweepResult


def _knob_label(knobs: dict[str, str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(knobs.items())) or "shipped parameters"


def heatmap_axes(result: SweepResult) -> tuple[str, str] | None:
    names = [k for k, _ in result.spec.grid]
    return (names[0], names[1]) if len(names) >= 2 and not result.spec.random else None


def pictures(result: SweepResult) -> dict[str, bytes]:
    """The report's pictures as PNG bytes: heatmap (if the sweep has a 2-parameter grid),
    drawdowns, timelines."""
    import matplotlib

    matplotlib.use("Agg")
    out = {}
    axes = heatmap_axes(result)
    if axes:
        out["bad_debt_heatmap"] = _heatmap(result, axes)
    out["lp_drawdown"] = _drawdowns(result)
    out["liquidation_timelines"] = _timelines(result)
    return out


def _png(fig: Any) -> bytes:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def _heatmap(result: SweepResult, axes: tuple[str, str]) -> bytes:
    import matplotlib.pyplot as plt
    import numpy as np

    x_name, y_name = axes
    grid = dict(result.spec.grid)
    xs, ys = list(grid[x_name]), list(grid[y_name])
    cells = result.cells()
    scenarios = list(result.spec.scenarios)
    cols = min(3, len(scenarios))
    rows = -(-len(scenarios) // cols)
    fig, axs = plt.subplots(rows, cols, figsize=(4.6 * cols, 3.8 * rows), squeeze=False)
    for n, scenario in enumerate(scenarios):
        ax = axs[n // cols][n % cols]
        z = np.full((len(ys), len(xs)), np.nan)
        for c in cells:
            if c.scenario != scenario:
                continue
            try:
                i, j = ys.index(c.knobs[y_name]), xs.index(c.knobs[x_name])
            except (KeyError, ValueError):
                continue
            z[i, j] = c.bad_debt_es99 if np.isnan(z[i, j]) else max(z[i, j], c.bad_debt_es99)
        im = ax.imshow(z, origin="lower", cmap="Reds", aspect="auto")
        ax.set_xticks(range(len(xs)), xs)
        ax.set_yticks(range(len(ys)), ys)
        ax.set_xlabel(x_name)
        ax.set_ylabel(y_name)
        ax.set_title(f"{scenario}: bad debt ES99 (USD)", fontsize=9)
        insurance = cells[0].insurance_start if cells else 0.0
        lo, hi = (float(np.nanmin(z)), float(np.nanmax(z))) if not np.all(np.isnan(z)) else (0.0, 0.0)
        for i in range(len(ys)):
            for j in range(len(xs)):
                if not np.isnan(z[i, j]):
                    over = z[i, j] > insurance
                    dark = hi > lo and (z[i, j] - lo) / (hi - lo) > 0.6
                    ax.text(
                        j,
                        i,
                        f"{z[i, j]:,.0f}" + (" !" if over else ""),
                        ha="center",
                        va="center",
                        fontsize=8,
                        color="white" if dark else "black",
                    )
        fig.colorbar(im, ax=ax, shrink=0.8)
    for n in range(len(scenarios), rows * cols):
        axs[n // cols][n % cols].axis("off")
    fig.suptitle("Bad debt, expected shortfall at 99% over seeds ('!': above the insurance fund)", fontsize=10)
    fig.tight_layout()
    return _png(fig)


def _drawdowns(result: SweepResult) -> bytes:
    import matplotlib.pyplot as plt

    scenarios = list(result.spec.scenarios)
    data = [[r.lp_drawdown * 100 for r in result.runs if r.scenario == s] for s in scenarios]
    fig, ax = plt.subplots(figsize=(max(6.0, 1.4 * len(scenarios)), 3.8))
    ax.boxplot(data, whis=(1, 99), showfliers=True)
    ax.set_xticks(range(1, len(scenarios) + 1), scenarios, rotation=20, fontsize=8)
    ax.set_ylabel("LP share price max drawdown (%)")
    ax.set_title("LP drawdown per scenario, every parameter set and seed (whiskers: 1st-99th percentile)", fontsize=9)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return _png(fig)


def _timelines(result: SweepResult) -> bytes:
    import matplotlib.pyplot as plt

    worst: dict[str, RunResult] = {}
    for r in result.runs:
        if r.liquidations_per_step and (r.scenario not in worst or r.bad_debt > worst[r.scenario].bad_debt):
            worst[r.scenario] = r
    runs = [worst[s] for s in result.spec.scenarios if s in worst]
    fig, axs = plt.subplots(len(runs), 1, figsize=(9, 2.2 * max(1, len(runs))), squeeze=False, sharex=True)
    for ax, r in zip(axs[:, 0], runs, strict=False):
        steps = range(len(r.liquidations_per_step))
        ax.bar(steps, r.liquidations_per_step, color="#d62728", width=1.0, label="liquidations")
        ax.set_ylabel("liquidations", fontsize=8)
        twin = ax.twinx()
        twin.plot(steps, r.price, color="#3c6ee0", lw=1.2, label="ETH price")
        if r.insurance:
            top = max(r.insurance) or 1.0
            twin2 = ax.twinx()
            twin2.plot(steps, r.insurance, color="#9467bd", lw=1, ls="--", label="insurance fund")
            twin2.set_ylim(0, top * 1.1)
            twin2.set_yticks([])
        twin.set_ylabel("price", fontsize=8)
        handles = ax.get_legend_handles_labels()[0] + twin.get_legend_handles_labels()[0]
        if r.insurance:
            handles += twin2.get_legend_handles_labels()[0]
        ax.legend(handles=handles, loc="upper right", fontsize=7)
        ax.set_title(
            f"{r.cell}: {r.liquidations} liquidations, bad debt ${r.bad_debt:,.0f}, cascade depth {r.cascade_depth}",
            fontsize=8,
        )
    axs[-1, 0].set_xlabel("block (12 s)")
    fig.tight_layout()
    return _png(fig)


def write(result: SweepResult, out: Path) -> tuple[Path, Path]:
    """Writes `report.json` and `report.html` under `out`; returns their paths."""
    out.mkdir(parents=True, exist_ok=True)
    data = result.to_json()
    json_path = out / "report.json"
    json_path.write_text(json.dumps(data, indent=1) + "\n")
    pics = pictures(result)
    html_path = out / "report.html"
    html_path.write_text(render_html(result, pics))
    return json_path, html_path


def save_pictures(result: SweepResult, directory: Path, prefix: str = "stress_") -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, png in pictures(result).items():
        path = directory / f"{prefix}{name}.png"
        path.write_bytes(png)
        paths.append(path)
    return paths


def _table(cells: list[CellFigures]) -> str:
    cols = [
        ("scenario", "scenario"),
        ("parameters", None),
        ("bad debt mean", "bad_debt_mean"),
        ("VaR99", "bad_debt_var99"),
        ("ES99", "bad_debt_es99"),
        ("P(insurance dry)", "insurance_dry_probability"),
        ("LP dd max", "lp_drawdown_max"),
        ("LP dd p99", "lp_drawdown_p99"),
        ("liquidations", "liquidations_mean"),
        ("cascade", "cascade_depth_max"),
        ("saturated", "saturated_blocks_mean"),
        ("cap hits", "profit_cap_hits_mean"),
        ("unpaid profit", "unpaid_profit_mean"),
        ("keeper profit", "keeper_profit_mean"),
    ]
    head = "".join(f"<th>{html.escape(c)}</th>" for c, _ in cols)
    rows = []
    for c in sorted(cells, key=lambda c: (c.scenario, sorted(c.knobs.items()))):
        d = asdict(c)
        tds = []
        for label, key in cols:
            if key is None:
                tds.append(f"<td>{html.escape(_knob_label(c.knobs))}</td>")
                continue
            v = d[key]
            if key in ("insurance_dry_probability", "lp_drawdown_max", "lp_drawdown_p99"):
                text = f"{v * 100:.2f}%"
            elif isinstance(v, float):
                text = f"{v:,.1f}"
            else:
                text = html.escape(str(v))
            alert = key == "bad_debt_es99" and v > c.insurance_start
            tds.append(f"<td class='{'alert' if alert else ''}'>{text}</td>")
        rows.append("<tr>" + "".join(tds) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def render_html(result: SweepResult, pics: dict[str, bytes]) -> str:
    spec = result.spec
    imgs = "".join(
        f"<h2>{html.escape(name.replace('_', ' '))}</h2><img alt='{name}' src='data:image/png;base64,"
        f"{base64.b64encode(png).decode()}'>"
        for name, png in pics.items()
    )
    grid = "; ".join(f"{k} in {{{', '.join(v)}}}" for k, v in spec.grid)
    insurance = spec.agents.insurance_per_account_usd * spec.accounts
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>Lever stress report: {html.escape(spec.name)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; font-size: 12px; }}
th, td {{ border: 1px solid #ccc; padding: 3px 6px; text-align: right; }}
th {{ background: #f3f3f3; }} td:first-child, td:nth-child(2) {{ text-align: left; }}
td.alert {{ background: #fdd; font-weight: bold; }}
img {{ max-width: 100%; border: 1px solid #eee; }}
</style></head><body>
<h1>Lever stress report: {html.escape(spec.name)}</h1>
<p>{len(result.runs)} cells ({len(spec.knob_sets())} parameter sets x {len(spec.scenarios)} scenarios x
{spec.seeds} seeds), {spec.accounts} accounts x {spec.steps} blocks each, engine: {html.escape(spec.engine)},
{result.workers} worker(s) on {html.escape(result.scheduler)}, {result.seconds:.1f} s.
Parameters swept: {html.escape(grid)} (everything else as in config/local.toml).
Insurance fund at the start: ${insurance:,}; pool: ${spec.agents.pool_per_account_usd * spec.accounts:,}.</p>
<p>How to read this report and act on it: docs/stress.md.</p>
{imgs}
<h2>Figures per cell (over seeds)</h2>
{_table(result.cells())}
</body></html>
"""
