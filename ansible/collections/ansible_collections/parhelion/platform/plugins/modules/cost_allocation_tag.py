#!/usr/bin/python
# Copyright: Parhelion developers
# BSD-3-Clause (see LICENSE in the repository)
"""Cost-allocation tags for Ansible: neither amazon.aws nor community.aws activates them."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: cost_allocation_tag
short_description: Activate a user-defined tag for cost allocation (Cost Explorer, Budgets)
version_added: "2026.11.0"
description:
  - Makes a tag key Active for cost allocation (ce:ListCostAllocationTags,
    ce:UpdateCostAllocationTagsStatus), so that Cost Explorer and AWS Budgets can filter and
    group costs by it. Costs are tagged from activation on (AWS takes up to 24 hours), never
    before.
  - AWS lists a tag key only once billing has seen resources carrying it (up to 24 hours after
    they are tagged); until then this module warns, changes nothing and does not fail, and a
    later run activates it.
  - Only the organization's management (payer) account may activate tags; a member account is
    denied, and the module warns with what to ask for instead of failing the play.
  - Idempotent; supports check mode. Parhelion activates C(parhelion.dev/cluster), which its
    budgets and C(parhelion cost reconcile) filter by.
options:
  tag_key:
    description: The tag key, as on the resources (without C(user:)).
    type: str
    required: true
  status:
    description: The status wanted.
    type: str
    choices: [Active, Inactive]
    default: Active
extends_documentation_fragment:
  - parhelion.platform.common
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: The cluster's cost-allocation tag, active
  parhelion.platform.cost_allocation_tag:
    tag_key: parhelion.dev/cluster
"""

RETURN = r"""
status:
  description: The tag's status after the task (C(NotYetSeen) while billing has not seen it;
    C(Unknown) when the account may not read or change it).
  returned: always
  type: str
"""

from ansible_collections.amazon.aws.plugins.module_utils.botocore import is_boto3_error_code
from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule

try:
    import botocore
except ImportError:
    pass  # AnsibleAWSModule reports a missing botocore

MANAGEMENT_ACCOUNT = (
    "only the organization's management account may activate cost-allocation tags: ask its "
    "administrators to activate {key} (Billing > Cost allocation tags), or run this there"
)


def main():
    module = AnsibleAWSModule(
        argument_spec={
            "tag_key": {"type": "str", "required": True, "no_log": False},
            "status": {"type": "str", "choices": ["Active", "Inactive"], "default": "Active"},
        },
        supports_check_mode=True,
    )
    key, wanted = module.params["tag_key"], module.params["status"]
    # Cost Explorer has one endpoint, in us-east-1, whatever the play's region.
    client = module.client("ce", region="us-east-1")
    try:
        listed = client.list_cost_allocation_tags(TagKeys=[key], Type="UserDefined").get(
            "CostAllocationTags", []
        )
    except is_boto3_error_code("AccessDeniedException"):
        module.warn(MANAGEMENT_ACCOUNT.format(key=key))
        module.exit_json(changed=False, status="Unknown")
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as error:  # pylint: disable=duplicate-except
        module.fail_json_aws(error, msg=f"Could not read the cost-allocation tag {key}")
    current = next((tag["Status"] for tag in listed if tag["TagKey"] == key), None)
    if current is None:
        module.warn(
            f"billing has not seen the tag {key} yet (it lists a tag up to 24 hours after resources "
            "carry it): run the play again later to activate it, or activate it in Billing > Cost "
            "allocation tags"
        )
        module.exit_json(changed=False, status="NotYetSeen")
    if current == wanted:
        module.exit_json(changed=False, status=current)
    if not module.check_mode:
        try:
            answer = client.update_cost_allocation_tags_status(
                CostAllocationTagsStatus=[{"TagKey": key, "Status": wanted}]
            )
        except is_boto3_error_code("AccessDeniedException"):
            module.warn(MANAGEMENT_ACCOUNT.format(key=key))
            module.exit_json(changed=False, status=current)
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as error:  # pylint: disable=duplicate-except
            module.fail_json_aws(error, msg=f"Could not set the cost-allocation tag {key} {wanted}")
        errors = answer.get("Errors") or []
        if errors:
            module.fail_json(
                msg=f"Could not set the cost-allocation tag {key} {wanted}: {errors[0].get('Message')}"
            )
    module.exit_json(
        changed=True, status=wanted, diff={"before": {"status": current}, "after": {"status": wanted}}
    )


if __name__ == "__main__":
    main()
