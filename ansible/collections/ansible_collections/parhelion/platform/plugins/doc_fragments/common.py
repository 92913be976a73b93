# Copyright: Parhelion developers
# BSD-3-Clause (see LICENSE in the repository)
"""What every parhelion.platform module's documentation says the same way."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
author:
  - Parhelion developers
attributes:
  check_mode:
    description: Can run in check mode and return changed status prediction without modifying target.
    support: full
"""
