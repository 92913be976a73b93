#!/usr/bin/python
# Copyright: Parhelion developers
# BSD-3-Clause (see LICENSE in the repository)
"""EKS managed add-ons for Ansible: neither amazon.aws nor community.aws manages them."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: eks_addon
short_description: Manage an Amazon EKS add-on (vpc-cni, aws-ebs-csi-driver, ...)
version_added: "2026.11.0"
description:
  - Creates, updates in place (UpdateAddon) or deletes an EKS managed add-on of a cluster - its
    version, configuration values, the IAM role of its service account and its tags.
  - Configuration values are compared as data, not as text (EKS keeps the JSON or YAML text it
    was given), so an add-on already configured as asked is left alone. Check and diff modes.
  - With O(wait=true) it waits, at most O(wait_timeout) seconds, for the add-on to be ACTIVE
    (after an update, first for the update to end, as DescribeUpdate reports it); a failed
    status stops at once, and a timeout fails naming the add-on, its status and its health
    issues. DEGRADED is waited through, since a driver whose pods are still being scheduled
    reports it before turning ACTIVE.
  - Parhelion uses it for the add-ons its chart needs - vpc-cni with network policy enforced,
    the EBS CSI driver (gp3 volumes), the EFS CSI driver (shared scratch).
options:
  cluster_name:
    description: The EKS cluster.
    type: str
    required: true
  name:
    description: The add-on's name, as DescribeAddonVersions lists it (for example C(vpc-cni)).
    type: str
    required: true
  state:
    description: Whether the add-on should be installed.
    type: str
    choices: [present, absent]
    default: present
  addon_version:
    description:
      - The add-on's version (for example C(v1.20.0-eksbuild.1)). Omitted, a new add-on gets
        EKS's default version for the cluster's Kubernetes version and an installed one keeps
        its version.
    type: str
  configuration_values:
    description:
      - The add-on's configuration values (its schema is DescribeAddonConfiguration's). Omitted,
        they are left as they are; C({}) means none.
    type: dict
  service_account_role_arn:
    description:
      - The IAM role of the add-on's service account (IAM roles for service accounts; the
        cluster needs an IAM OIDC provider). Omitted, the role is left as it is (a new add-on
        then runs with the node role).
    type: str
  resolve_conflicts:
    description:
      - What EKS does with fields of the add-on's Kubernetes objects changed from its defaults
        (for example by a self-managed install EKS made with the cluster); C(OVERWRITE) puts
        EKS's values back, C(NONE) and C(PRESERVE) keep the changed ones (the create or update
        may then fail).
    type: str
    choices: [OVERWRITE, NONE, PRESERVE]
    default: OVERWRITE
  preserve:
    description: With O(state=absent), leave the add-on's software running on the cluster.
    type: bool
    default: false
  tags:
    description: Tags of the add-on. Omitted, they are left as they are.
    type: dict
  purge_tags:
    description: Remove tags that O(tags) does not list.
    type: bool
    default: true
  wait:
    description: Wait for the add-on to be ACTIVE (or, with O(state=absent), gone).
    type: bool
    default: true
  wait_timeout:
    description: Seconds to wait, at most.
    type: int
    default: 900
extends_documentation_fragment:
  - parhelion.platform.common
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
attributes:
  diff_mode:
    support: full
"""

EXAMPLES = r"""
- name: VPC CNI, with network policies enforced
  parhelion.platform.eks_addon:
    cluster_name: parhelion
    name: vpc-cni
    configuration_values:
      enableNetworkPolicy: "true"

- name: The EBS CSI driver with its IRSA role, gp3 the default StorageClass
  parhelion.platform.eks_addon:
    cluster_name: parhelion
    name: aws-ebs-csi-driver
    service_account_role_arn: arn:aws:iam::123456789012:role/parhelion-ebs-csi
    configuration_values:
      defaultStorageClass:
        enabled: true

- name: No EFS CSI driver any more
  parhelion.platform.eks_addon:
    cluster_name: parhelion
    name: aws-efs-csi-driver
    state: absent
"""

RETURN = r"""
addon:
  description:
    - The add-on as DescribeAddon returns it (snake_case keys), its configuration values as
      data; in check mode, the add-on as it is, or the CreateAddon request if it would be
      created; empty when absent.
  returned: always
  type: dict
update:
  description: The UpdateAddon update (id, status, params), when the add-on was updated.
  returned: when updated
  type: dict
"""

from ansible_collections.amazon.aws.plugins.module_utils.botocore import is_boto3_error_code
from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible_collections.parhelion.platform.plugins.module_utils.eks_addons import (
    BUSY,
    AddonError,
    Addons,
    configuration_of,
    configuration_text,
    described,
)

try:
    import botocore
except ImportError:
    pass  # AnsibleAWSModule reports a missing botocore


def comparable(addon):
    """What this module manages of an add-on, as data (for the comparison and the diff)."""
    return {
        "addon_version": addon.get("addonVersion"),
        "configuration_values": configuration_of(addon.get("configurationValues")),
        "service_account_role_arn": addon.get("serviceAccountRoleArn"),
        "tags": dict(addon.get("tags") or {}),
    }


def wanted(params, before):
    """The add-on as asked: what the task leaves out stays as it is."""
    after = dict(before)
    for key in ("addon_version", "configuration_values", "service_account_role_arn"):
        if params[key] is not None:
            after[key] = params[key]
    if params["tags"] is not None:
        after["tags"] = dict(params["tags"]) if params["purge_tags"] else {**before["tags"], **params["tags"]}
    return after


def update_request(before, after):
    """UpdateAddon's arguments for what differs (empty: nothing to update but tags)."""
    request = {}
    if after["addon_version"] != before["addon_version"]:
        request["addonVersion"] = after["addon_version"]
    if after["service_account_role_arn"] != before["service_account_role_arn"]:
        request["serviceAccountRoleArn"] = after["service_account_role_arn"]
    if after["configuration_values"] != before["configuration_values"]:
        request["configurationValues"] = configuration_text(after["configuration_values"])
    return request


def sync_tags(client, arn, before, after):
    gone = [key for key in before if key not in after]
    changed = {key: value for key, value in after.items() if before.get(key) != value}
    if gone:
        client.untag_resource(resourceArn=arn, tagKeys=gone)
    if changed:
        client.tag_resource(resourceArn=arn, tags=changed)


def create(module, addons, client):
    params = module.params
    request = {"clusterName": params["cluster_name"], "addonName": params["name"]}
    request["resolveConflicts"] = params["resolve_conflicts"]
    if params["addon_version"]:
        request["addonVersion"] = params["addon_version"]
    if params["service_account_role_arn"]:
        request["serviceAccountRoleArn"] = params["service_account_role_arn"]
    if params["configuration_values"]:
        request["configurationValues"] = configuration_text(params["configuration_values"])
    if params["tags"]:
        request["tags"] = params["tags"]
    after = wanted(params, comparable({}))
    if module.check_mode:
        module.exit_json(changed=True, addon=request, diff={"before": {}, "after": after})
    addon = client.create_addon(**request)["addon"]
    if params["wait"]:
        addon = addons.wait_active(params["name"], params["wait_timeout"])
    module.exit_json(changed=True, addon=described(addon), diff={"before": {}, "after": comparable(addon)})


def present(module, addons, client):
    params = module.params
    current = addons.describe(params["name"])
    if current is not None and current.get("status") == "DELETING" and not module.check_mode:
        addons.wait_gone(params["name"], params["wait_timeout"])
        current = None
    if current is None or current.get("status") == "DELETING":
        create(module, addons, client)
        return
    before = comparable(current)
    after = wanted(params, before)
    diff = {"before": before, "after": after}
    if before == after or module.check_mode:
        if before == after and params["wait"] and not module.check_mode:
            current = addons.wait_active(params["name"], params["wait_timeout"])
        module.exit_json(changed=before != after, addon=described(current), diff=diff)
    result = {}
    request = update_request(before, after)
    if request:
        if current.get("status") in BUSY:  # EKS refuses an update while one is under way
            addons.wait_active(params["name"], params["wait_timeout"])
        update = client.update_addon(
            clusterName=params["cluster_name"],
            addonName=params["name"],
            resolveConflicts=params["resolve_conflicts"],
            **request,
        )["update"]
        result["update"] = update
        if params["wait"]:
            result["update"] = addons.wait_update(params["name"], update["id"], params["wait_timeout"])
    if after["tags"] != before["tags"]:
        sync_tags(client, current["addonArn"], before["tags"], after["tags"])
    if params["wait"]:
        current = addons.wait_active(params["name"], params["wait_timeout"])
    else:
        current = addons.describe(params["name"])
    module.exit_json(changed=True, addon=described(current), diff=diff, **result)


def absent(module, addons, client):
    params = module.params
    current = addons.describe(params["name"])
    if current is None:
        module.exit_json(changed=False, addon={}, diff={"before": {}, "after": {}})
    before = comparable(current)
    deleting = current.get("status") == "DELETING"
    if not module.check_mode and not deleting:
        client.delete_addon(
            clusterName=params["cluster_name"], addonName=params["name"], preserve=params["preserve"]
        )
    if not module.check_mode and params["wait"]:
        addons.wait_gone(params["name"], params["wait_timeout"])
    module.exit_json(changed=not deleting, addon={}, diff={"before": before, "after": {}})


def main():
    argument_spec = {
        "cluster_name": {"type": "str", "required": True},
        "name": {"type": "str", "required": True},
        "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
        "addon_version": {"type": "str"},
        "configuration_values": {"type": "dict"},
        "service_account_role_arn": {"type": "str"},
        "resolve_conflicts": {
            "type": "str",
            "choices": ["OVERWRITE", "NONE", "PRESERVE"],
            "default": "OVERWRITE",
        },
        "preserve": {"type": "bool", "default": False},
        "tags": {"type": "dict"},
        "purge_tags": {"type": "bool", "default": True},
        "wait": {"type": "bool", "default": True},
        "wait_timeout": {"type": "int", "default": 900},
    }
    module = AnsibleAWSModule(argument_spec=argument_spec, supports_check_mode=True)
    params = module.params
    if params["service_account_role_arn"] == "":
        module.fail_json(
            msg="service_account_role_arn is empty: give a role's ARN, or leave the option out "
            "(UpdateAddon's serviceAccountRoleArn cannot be empty)"
        )
    client = module.client("eks")
    addons = Addons(client, params["cluster_name"])
    where = f"EKS add-on {params['name']} of cluster {params['cluster_name']}"
    try:
        if params["state"] == "absent":
            absent(module, addons, client)
        else:
            present(module, addons, client)
    except AddonError as error:
        module.fail_json(msg=str(error))
    except is_boto3_error_code("ResourceNotFoundException") as error:
        module.fail_json_aws(
            error, msg=f"{where} (is the cluster made? provision.yml's eks_cluster role makes it)"
        )
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as error:  # pylint: disable=duplicate-except
        module.fail_json_aws(error, msg=where)


if __name__ == "__main__":
    main()
