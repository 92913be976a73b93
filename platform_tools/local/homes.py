"""Users' home directories: created on first spawn, with the platform's notebooks."""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

log = logging.getLogger(__name__)

NOTEBOOKS_FOLDER = "notebooks"


def provide_notebooks(home: Path, notebooks: Path, uid: int | None = None, gid: int | None = None) -> bool:
    """Copy the platform's notebooks into ``home/notebooks`` unless that folder exists.

    Never overwrites: a user's edits are theirs. A user who deletes the folder gets a
    fresh copy at the next start. Returns whether a copy was made.
    """
    target = home / NOTEBOOKS_FOLDER
    home.mkdir(parents=True, exist_ok=True)
    if target.exists() or not notebooks.is_dir():
        return False
    shutil.copytree(notebooks, target, ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
    if uid is not None:
        for path in [home, target, *target.rglob("*")]:
            os.chown(path, uid, gid if gid is not None else -1)
    log.info("copied notebooks into %s", target)
    return True
