#!/usr/bin/python
# Copyright: Parhelion developers
# BSD-3-Clause (see LICENSE in the repository)
"""A class roster CSV as a platform.yaml group, every bad row named (platform_tools.classes.roster)."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: class_roster
short_description: Read a class roster CSV into a Parhelion class group
version_added: "2026.11.0"
description:
  - Reads a roster CSV with a C(username) column (other columns such as C(email) and C(name)
    are allowed and ignored) and returns the class's group for platform.yaml - its members,
    profiles, quota template, and a per-student budget for the course window - without
    changing anything (pass the group to M(parhelion.platform.platform_config)).
  - Every bad row (duplicate, empty, capitals, invalid characters, extra fields) is reported at
    once, naming its row; the task fails and nothing is returned while any remain.
options:
  path:
    description: The roster CSV (UTF-8; a spreadsheet's BOM is fine).
    type: path
    required: true
  start:
    description: The first day of the course (YYYY-MM-DD, UTC).
    type: str
    required: true
  end:
    description: The last day of the course (YYYY-MM-DD, UTC).
    type: str
    required: true
  budget_usd:
    description: Dollars each student may spend over the course.
    type: float
    required: true
  group_usd:
    description: Dollars the whole class may spend together.
    type: float
  profiles:
    description: Profiles the students may use (absent - all).
    type: list
    elements: str
  quota:
    description: The quota template, as platform.yaml's C(quota) section.
    type: dict
  description:
    description: The group's description.
    type: str
    default: ""
  course:
    description:
      - The course settings that make the group a class (platform.yaml's C(course) section)
        - C(title), C(timezone), C(sessions) (HH:MM-HH:MM), C(image), C(homes)
        (keep, archive, delete), C(prewarm_minutes). Empty - a plain group with a course budget.
    type: dict
    default: {}
requirements:
  - platform_tools (Parhelion's venv)
extends_documentation_fragment:
  - parhelion.platform.common
attributes:
  diff_mode:
    support: none
"""

EXAMPLES = r"""
- name: The summer school's roster
  parhelion.platform.class_roster:
    path: rosters/heliophysics-2027.csv
    start: "2027-06-14"
    end: "2027-06-25"
    budget_usd: 15
    group_usd: 3000
    profiles: [small]
    quota: {max_servers: 1, max_dask_clusters: 1, max_dask_cores: 8, max_dask_memory_gib: 32}
  register: roster
"""

RETURN = r"""
group:
  description: The class group, as platform.yaml holds it.
  returned: success
  type: dict
students:
  description: How many students the roster lists.
  returned: success
  type: int
problems:
  description: Every problem found, each naming its row.
  returned: failure
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.parhelion.platform.plugins.module_utils.platform_tools_check import (
    require_platform_tools,
)


def main():
    module = AnsibleModule(
        argument_spec={
            "path": {"type": "path", "required": True},
            "start": {"type": "str", "required": True},
            "end": {"type": "str", "required": True},
            "budget_usd": {"type": "float", "required": True},
            "group_usd": {"type": "float"},
            "profiles": {"type": "list", "elements": "str"},
            "quota": {"type": "dict"},
            "description": {"type": "str", "default": ""},
            "course": {"type": "dict", "default": {}},
        },
        supports_check_mode=True,
    )
    require_platform_tools(module)
    from platform_tools.classes.roster import RosterError, class_group, read_roster

    p = module.params
    try:
        students = read_roster(p["path"])
        group = class_group(
            students,
            start=p["start"],
            end=p["end"],
            budget_usd=p["budget_usd"],
            group_usd=p["group_usd"],
            profiles=p["profiles"],
            quota=p["quota"],
            description=p["description"],
            course=p["course"] or None,
        )
    except RosterError as error:
        module.fail_json(msg=f"the roster cannot be used:\n{error}", problems=error.problems)
    module.exit_json(changed=False, group=group, students=len(students))


if __name__ == "__main__":
    main()
