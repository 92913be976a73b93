"""JupyterLab: Parhelion inside each user's JupyterLab (a server extension and a prebuilt
JupyterLab extension, shipped together in the platform_tools wheel).

Users live in JupyterLab, and a budget warning only on the hub's spend page reaches them
too late. The frontend (``js/``, built into ``labextension/``) shows this period's spend in
the status bar, notifies at thresholds and before a cap stops their work, and lists what
runs now. It asks this server's ``parhelion/spend`` route (``handlers``), which asks the
accounting service as the server's own user, with the server's own token: a page never
holds a token and never names a user.

The wheel installs ``labextension/`` as ``share/jupyter/labextensions/@parhelion/lab`` and
``jupyter-config/parhelion-lab.json`` into ``etc/jupyter/jupyter_server_config.d/`` (the
base image, pyproject.toml's data-files); ``make install`` links them into the dev venv.
Importing this package loads no Jupyter code: the hub image has platform_tools too.
"""

from __future__ import annotations

from typing import Any

#: The frontend's npm name: its directory under share/jupyter/labextensions.
LABEXTENSION = "@parhelion/lab"


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    return [{"src": "labextension", "dest": LABEXTENSION}]


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    return [{"module": "platform_tools.lab"}]


def _load_jupyter_server_extension(serverapp: Any) -> None:
    from platform_tools.lab.handlers import add_handlers

    add_handlers(serverapp.web_app)
    serverapp.log.info("Parhelion's spend route is at %sparhelion/spend", serverapp.base_url)
