"""The keeper's status: its `/health` JSON and `/metrics` (Prometheus text, parsed with
prometheus_client's parser)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families


@dataclass(frozen=True)
class KeeperStatus:
    configured: bool
    reachable: bool = False
    healthy: bool = False
    health: dict[str, Any] = field(default_factory=dict)
    metrics: list[tuple[str, str, float]] = field(default_factory=list)  # (name, help, value)
    error: str = ""


def parse_metrics(text: str) -> list[tuple[str, str, float]]:
    """Samples of the `lever_keeper_*` families, histograms as their count and sum."""
    out = []
    for family in text_string_to_metric_families(text):
        if not family.name.startswith("lever_keeper"):
            continue
        for sample in family.samples:
            if sample.name.endswith(("_bucket", "_created")):
                continue
            out.append((sample.name, family.documentation, float(sample.value)))
    return out


def fetch(url: str | None, timeout: float = 0.5) -> KeeperStatus:
    if not url:
        return KeeperStatus(configured=False)
    base = url.rstrip("/")
    try:
        with httpx.Client(timeout=timeout) as client:
            health = client.get(f"{base}/health")
            metrics = client.get(f"{base}/metrics")
    except httpx.HTTPError as exc:
        return KeeperStatus(configured=True, error=f"{type(exc).__name__}: {exc}")
    try:
        body = health.json()
    except ValueError:
        body = {}
    return KeeperStatus(
        True,
        True,
        health.status_code == 200,
        body if isinstance(body, dict) else {},
        parse_metrics(metrics.text) if metrics.status_code == 200 else [],
    )
