"""moto's server, plus what it does not emulate of the AWS APIs Parhelion's playbooks use.

* Budgets: moto 5 keeps budgets and their notifications but has no UpdateBudget and no
  subscriber calls (DescribeSubscribersForNotification, CreateSubscriber, DeleteSubscriber),
  which the parhelion.platform.aws_budget module uses as it would against AWS. These
  stand-ins work on moto's own stored budgets, as the Budgets API documents them:
  UpdateBudget replaces the budget's definition (its time period is kept unless given),
  subscribers are per notification.
* EKS: moto drops a node group's updateConfig on CreateNodegroup, while EKS always returns
  one (maxUnavailable 1 by default); community.aws.eks_nodegroup reads it on every run after
  the first. The node group keeps the one asked for, or EKS's default. moto also lists, sets
  and removes tags of clusters only; node groups' tags (which EKS keeps too) work here.
* EC2: DescribeTags calls a NAT gateway's resource type "nat-gateway"; AWS (and the
  resource-type filter amazon.aws.ec2_vpc_nat_gateway sends) says "natgateway".

Run as a script with moto_server's arguments.
"""

from __future__ import annotations

import json
import sys


def _plain(notification: dict) -> tuple:
    return (
        notification["NotificationType"],
        notification["ComparisonOperator"],
        float(notification["Threshold"]),
        notification.get("ThresholdType", "PERCENTAGE"),
    )


def install() -> None:
    from moto.budgets.exceptions import NotFoundException
    from moto.budgets.responses import BudgetsResponse

    def _budget(self, account: str, name: str):
        try:
            return self.backend.budgets[account][name]
        except KeyError:
            raise NotFoundException(f"Unable to get budget: {name} - the budget doesn't exist.") from None

    def _notification(self):
        budget = _budget(self, self._get_param("AccountId"), self._get_param("BudgetName"))
        wanted = _plain(self._get_param("Notification"))
        for notification in budget.notifications:
            if _plain(notification.details) == wanted:
                return notification
        raise NotFoundException("Unable to find the notification - it doesn't exist.")

    def update_budget(self) -> str:
        new = self._get_param("NewBudget")
        budget = _budget(self, self._get_param("AccountId"), new["BudgetName"])
        new.setdefault("TimePeriod", budget.budget.get("TimePeriod"))
        new["LastUpdatedTime"] = budget.budget.get("LastUpdatedTime")
        budget.budget = new
        return json.dumps({})

    def describe_subscribers_for_notification(self) -> str:
        return json.dumps({"Subscribers": list(_notification(self).subscribers)})

    def create_subscriber(self) -> str:
        _notification(self).subscribers.append(self._get_param("Subscriber"))
        return json.dumps({})

    def delete_subscriber(self) -> str:
        notification = _notification(self)
        gone = self._get_param("Subscriber")
        notification.subscribers = [s for s in notification.subscribers if s != gone]
        return json.dumps({})

    for operation in (
        update_budget,
        describe_subscribers_for_notification,
        create_subscriber,
        delete_subscriber,
    ):
        setattr(BudgetsResponse, operation.__name__, operation)
    _keep_nodegroup_update_config()
    _nat_gateway_resource_type()


def _nat_gateway_resource_type() -> None:
    from moto.ec2 import utils

    utils.EC2_PREFIX_TO_RESOURCE[utils.EC2_RESOURCE_TO_PREFIX["nat-gateway"]] = "natgateway"


def _keep_nodegroup_update_config() -> None:
    from moto.eks.responses import EKSResponse

    create = EKSResponse.create_nodegroup

    def create_nodegroup(self):
        result = create(self)
        nodegroup = self.eks_backend.describe_nodegroup(
            cluster_name=self._get_param("name"), nodegroup_name=self._get_param("nodegroupName")
        )
        nodegroup.update_config = self._get_param("updateConfig") or {"maxUnavailable": 1}
        return result

    EKSResponse.create_nodegroup = create_nodegroup
    _tag_nodegroups_too()


def _tag_nodegroups_too() -> None:
    from moto.eks.models import EKSBackend

    def nodegroup_of(backend, arn: str):
        for cluster in backend.clusters.values():
            for nodegroup in cluster.nodegroups.values():
                if nodegroup.arn == arn:
                    return nodegroup
        return None

    list_tags, tag, untag = (
        EKSBackend.list_tags_for_resource,
        EKSBackend.tag_resource,
        EKSBackend.untag_resource,
    )

    def list_tags_for_resource(self, resource_arn):
        nodegroup = nodegroup_of(self, resource_arn)
        return dict(nodegroup.tags) if nodegroup else list_tags(self, resource_arn)

    def tag_resource(self, resource_arn, tags):
        nodegroup = nodegroup_of(self, resource_arn)
        if nodegroup is None:
            return tag(self, resource_arn, tags)
        nodegroup.tags.update(tags)

    def untag_resource(self, resource_arn, tag_keys):
        nodegroup = nodegroup_of(self, resource_arn)
        if nodegroup is None:
            return untag(self, resource_arn, tag_keys)
        for key in [tag_keys] if isinstance(tag_keys, str) else tag_keys:
            nodegroup.tags.pop(key, None)

    EKSBackend.list_tags_for_resource = list_tags_for_resource
    EKSBackend.tag_resource = tag_resource
    EKSBackend.untag_resource = untag_resource


if __name__ == "__main__":
    install()
    from moto.server import main

    main(sys.argv[1:])
