#!/usr/bin/python
# Copyright: Parhelion developers
# BSD-3-Clause (see LICENSE in the repository)
"""A cluster's EKS add-ons, and what is missing of those a deployment needs, in words."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: eks_addon_info
short_description: Describe a cluster's EKS add-ons, and check them against requirements
version_added: "2026.11.0"
description:
  - Returns every add-on of the cluster (or those named) as DescribeAddon returns it, changing
    nothing.
  - With O(require), also returns a list of problems, one sentence each, naming the add-on and
    what is wrong - not installed, not ACTIVE (with its health issues), a configuration value
    not as required, no IAM role - followed by the requirement's reason. Parhelion's deploy.yml
    stops on them before anything is applied.
options:
  cluster_name:
    description: The EKS cluster.
    type: str
    required: true
  names:
    description: Only these add-ons (by default, every add-on of the cluster).
    type: list
    elements: str
  require:
    description: Add-ons that must be installed and ACTIVE (UPDATING passes too).
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: The add-on's name.
        type: str
        required: true
      configuration:
        description:
          - Configuration values the add-on must have (a subset of its values; nested mappings
            are compared key by key, other values exactly).
        type: dict
        default: {}
      role:
        description:
          - The add-on must have an IAM role (IRSA's serviceAccountRoleArn, or a Pod Identity
            association).
        type: bool
        default: false
      reason:
        description: Why it is needed, said after each of its problems.
        type: str
        default: ""
extends_documentation_fragment:
  - parhelion.platform.common
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
attributes:
  diff_mode:
    support: none
"""

EXAMPLES = r"""
- name: The add-ons the chart needs
  parhelion.platform.eks_addon_info:
    cluster_name: parhelion
    require:
      - name: vpc-cni
        configuration: {enableNetworkPolicy: "true"}
        reason: without it EKS does not enforce NetworkPolicies
      - name: aws-ebs-csi-driver
        role: true
  register: addons

- name: Stop, naming everything that is missing
  ansible.builtin.assert:
    that: addons.problems | length == 0
    fail_msg: "{{ addons.problems | join('; ') }}"
"""

RETURN = r"""
cluster_exists:
  description: Whether the cluster exists.
  returned: always
  type: bool
addons:
  description:
    - The add-ons by name, as DescribeAddon returns them (snake_case keys), configuration
      values as data.
  returned: always
  type: dict
problems:
  description: What is missing or wrong of O(require), one sentence each; empty when all is well.
  returned: always
  type: list
  elements: str
"""

import json

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible_collections.parhelion.platform.plugins.module_utils.eks_addons import (
    Addons,
    described,
    health_of,
)

try:
    import botocore
except ImportError:
    pass  # AnsibleAWSModule reports a missing botocore

REQUIRE_OPTIONS = {
    "name": {"type": "str", "required": True},
    "configuration": {"type": "dict", "default": {}},
    "role": {"type": "bool", "default": False},
    "reason": {"type": "str", "default": ""},
}
GOOD = ("ACTIVE", "UPDATING")  # an update keeps the add-on running


def mismatches(required, actual, path=""):
    """Each required configuration value the add-on lacks: (dotted key, wanted, found or None)."""
    found = []
    for key, value in required.items():
        where = f"{path}.{key}" if path else key
        have = actual.get(key) if isinstance(actual, dict) else None
        if isinstance(value, dict) and isinstance(have, dict):
            found += mismatches(value, have, where)
        elif have != value:
            found.append((where, value, have))
    return found


def problems_of(addons, requirements):
    """One sentence per problem, naming the add-on; the requirement's reason ends it."""
    said = []
    for item in requirements:
        name, reason = item["name"], item["reason"].strip()
        because = f" ({reason})" if reason else ""
        addon = addons.get(name)
        if addon is None:
            said.append(f"the {name} add-on is not installed{because}")
            continue
        if addon["status"] not in GOOD:
            health = health_of(addon)
            said.append(
                f"the {name} add-on is {addon['status']}" + (f" ({health})" if health else "") + because
            )
        configuration = described(addon)["configuration_values"]
        for key, value, have in mismatches(item["configuration"], configuration):
            found = "unset" if have is None else json.dumps(have)
            said.append(
                f"the {name} add-on's configuration value {key} is {found}, not {json.dumps(value)}{because}"
            )
        if item["role"] and not (addon.get("serviceAccountRoleArn") or addon.get("podIdentityAssociations")):
            said.append(
                f"the {name} add-on has no IAM role (no serviceAccountRoleArn, no Pod Identity "
                f"association), so it runs with the node role{because}"
            )
    return said


def main():
    module = AnsibleAWSModule(
        argument_spec={
            "cluster_name": {"type": "str", "required": True},
            "names": {"type": "list", "elements": "str"},
            "require": {"type": "list", "elements": "dict", "default": [], "options": REQUIRE_OPTIONS},
        },
        supports_check_mode=True,
    )
    params = module.params
    cluster = params["cluster_name"]
    addons = Addons(module.client("eks"), cluster)
    try:
        names = addons.names()
        if names is None:
            module.exit_json(
                changed=False,
                cluster_exists=False,
                addons={},
                problems=[f"EKS cluster {cluster} does not exist"] if params["require"] else [],
            )
        wanted = set(params["names"] or names) | {item["name"] for item in params["require"]}
        found = {name: addons.describe(name) for name in sorted(wanted & set(names))}
        found = {name: addon for name, addon in found.items() if addon is not None}
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as error:
        module.fail_json_aws(error, msg=f"EKS add-ons of cluster {cluster}")
    module.exit_json(
        changed=False,
        cluster_exists=True,
        addons={
            name: described(addon) for name, addon in found.items() if name in (params["names"] or names)
        },
        problems=problems_of(found, params["require"]),
    )


if __name__ == "__main__":
    main()
