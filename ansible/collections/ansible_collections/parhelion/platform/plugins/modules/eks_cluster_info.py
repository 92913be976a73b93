#!/usr/bin/python
# Copyright: Parhelion developers
# BSD-3-Clause (see LICENSE in the repository)
"""What an EKS cluster is, or that it does not exist (community.aws has no info module for it)."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: eks_cluster_info
short_description: Describe an EKS cluster, if it exists
version_added: "2026.11.0"
description:
  - Returns the cluster as EKS describes it (endpoint, certificate authority, OIDC issuer,
    security group) and whether it exists, changing nothing. Parhelion's teardown finds the
    cluster's OIDC issuer with it, and the deployment its endpoint.
options:
  name:
    description: The cluster's name.
    type: str
    required: true
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
- name: The cluster, if it is there
  parhelion.platform.eks_cluster_info:
    name: parhelion
  register: cluster
"""

RETURN = r"""
exists:
  description: Whether the cluster exists.
  returned: always
  type: bool
cluster:
  description: The cluster, as DescribeCluster returns it (snake_case keys); empty if absent.
  returned: always
  type: dict
"""

from ansible.module_utils.common.dict_transformations import camel_dict_to_snake_dict
from ansible_collections.amazon.aws.plugins.module_utils.botocore import is_boto3_error_code
from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule

try:
    import botocore
except ImportError:
    pass  # AnsibleAWSModule reports a missing botocore


def main():
    module = AnsibleAWSModule(
        argument_spec={"name": {"type": "str", "required": True}}, supports_check_mode=True
    )
    client = module.client("eks")
    try:
        cluster = client.describe_cluster(name=module.params["name"])["cluster"]
    except is_boto3_error_code("ResourceNotFoundException"):
        module.exit_json(changed=False, exists=False, cluster={})
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as error:  # pylint: disable=duplicate-except
        module.fail_json_aws(error, msg=f"EKS cluster {module.params['name']}")
    module.exit_json(
        changed=False, exists=True, cluster=camel_dict_to_snake_dict(cluster, ignore_list=["tags"])
    )


if __name__ == "__main__":
    main()
