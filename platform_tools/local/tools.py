"""Finding the programs Parhelion runs: those installed with it (the venv's bin) first."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

VENV_BIN = Path(sys.executable).parent


def find_tool(name: str) -> str | None:
    """``name`` from the venv Parhelion runs in (uv, hadolint, helm ...), else from PATH."""
    return shutil.which(name, path=str(VENV_BIN)) or shutil.which(name)
