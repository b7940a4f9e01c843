"""Where the repository's files are: one place for the root every module needs."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BUILD_MANIFEST = REPO / ".build" / "__local__.json"
FORGE_OUT = REPO / "build" / "forge" / "out"  # forge build (foundry.toml): storage layouts
