# Copyright: Parhelion developers
# BSD-3-Clause (see LICENSE in the repository)
"""Parhelion's modules are thin: platform_tools decides. This says clearly when it is missing."""

from __future__ import annotations

import traceback

try:
    import platform_tools  # noqa: F401

    IMPORT_ERROR = None
except ImportError:
    IMPORT_ERROR = traceback.format_exc()


def require_platform_tools(module):
    if IMPORT_ERROR:
        module.fail_json(
            msg="platform_tools is not importable by this Python: run the play with Parhelion's venv "
            'interpreter (ansible_python_interpreter: "{{ ansible_playbook_python }}", '
            "as the inventories set)",
            exception=IMPORT_ERROR,
        )
