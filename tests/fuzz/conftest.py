"""The fuzz suite imports its modules by name (tests/fuzz is on the path)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
