#!/usr/bin/python
# Copyright: Parhelion developers
# BSD-3-Clause (see LICENSE in the repository)
"""Set groups, user overrides and hub logins in a platform.yaml, validated by platform_tools."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: platform_config
short_description: Change groups, quotas, budgets and logins in a Parhelion platform.yaml
version_added: "2026.11.0"
description:
  - Sets named groups (members, profiles, quota, budget) and per-user overrides, adds hub
    logins, and removes groups, in a platform.yaml. Each named entry is replaced whole; every
    other section, comment and key order is kept.
  - The whole file is validated with Parhelion's configuration model before it is written; an
    invalid change fails naming the field (for example C(groups.school.profiles)) and writes
    nothing. The file is replaced atomically, so the hub, gateway and accounting service,
    which follow it live, never read half of it.
options:
  path:
    description: The platform.yaml to change.
    type: path
    required: true
  groups:
    description: Groups to set, by name, as platform.yaml holds them.
    type: dict
    default: {}
  users:
    description: Per-user overrides to set, by username.
    type: dict
    default: {}
  hub_users:
    description: Logins to add to C(hub.users) (existing ones are kept).
    type: list
    elements: str
    default: []
  remove_groups:
    description: Groups to remove (absent ones are ignored).
    type: list
    elements: str
    default: []
requirements:
  - platform_tools (Parhelion's venv)
extends_documentation_fragment:
  - parhelion.platform.common
attributes:
  diff_mode:
    support: full
"""

EXAMPLES = r"""
- name: Quotas and budgets from the inventory
  parhelion.platform.platform_config:
    path: /srv/parhelion/.parhelion/platform.yaml
    groups:
      researchers:
        members: [ana, ben]
        quota: {max_servers: 1, max_dask_clusters: 2, max_dask_cores: 64}
        budget: {usd: 200, period: month}
"""

RETURN = r"""
content:
  description: The platform.yaml text after the change (as it would be, in check mode).
  returned: success
  type: str
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.parhelion.platform.plugins.module_utils.platform_tools_check import (
    require_platform_tools,
)


def main():
    module = AnsibleModule(
        argument_spec={
            "path": {"type": "path", "required": True},
            "groups": {"type": "dict", "default": {}},
            "users": {"type": "dict", "default": {}},
            "hub_users": {"type": "list", "elements": "str", "default": []},
            "remove_groups": {"type": "list", "elements": "str", "default": []},
        },
        supports_check_mode=True,
    )
    require_platform_tools(module)
    from platform_tools.config import ConfigError
    from platform_tools.config.edit import PlatformChange, change_file

    p = module.params
    change = PlatformChange(
        groups=p["groups"], users=p["users"], hub_users=p["hub_users"], remove_groups=p["remove_groups"]
    )
    try:
        before, after = change_file(p["path"], change, write=not module.check_mode)
    except ConfigError as error:
        module.fail_json(
            msg=f"platform.yaml would not be valid:\n{error}", issues=[str(i) for i in error.issues]
        )
    module.exit_json(
        changed=before != after,
        content=after,
        diff={"before": before, "after": after, "before_header": p["path"], "after_header": p["path"]},
    )


if __name__ == "__main__":
    main()
