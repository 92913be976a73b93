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
* EKS add-ons: moto has none of the add-on calls. Stand-ins for CreateAddon, DescribeAddon,
  UpdateAddon, DeleteAddon, ListAddons and DescribeUpdate (of an add-on's update) answer as
  the EKS API reference documents them: the same paths, request and response shapes, a
  ResourceNotFoundException for a missing cluster or add-on, a ResourceInUseException when
  the add-on exists already or is busy, an InvalidParameterException for an unknown add-on
  or configuration values that are not a JSON or YAML object. An add-on is CREATING, UPDATING
  or DELETING for PARHELION_STAND_IN_ADDON_SECONDS (default 1 s) after a change, then ACTIVE
  (or gone); the add-ons listed in PARHELION_STAND_IN_DEGRADED_ADDONS (by name, or as
  cluster/name) turn DEGRADED instead, with the health issue EKS reports when a driver's pods
  are not ready. Of the add-ons'
  configuration schemas only the keys Parhelion sets are checked (vpc-cni's
  enableNetworkPolicy is the string "true" or "false"; aws-ebs-csi-driver's
  defaultStorageClass is {"enabled": bool}). Versions are placeholders in EKS's format.
  Add-on ARNs can be tagged, and deleting a cluster removes its add-ons.
* Cost Explorer's cost-allocation tags: moto has no ListCostAllocationTags nor
  UpdateCostAllocationTagsStatus. Stand-ins answer as the Cost Explorer API reference
  documents them, for the user-defined tag keys billing "has seen" (AWS lists a key only some
  hours after resources carry it): those named in PARHELION_STAND_IN_COST_TAGS (comma-
  separated), Inactive until activated. Activating a key billing has not seen answers an
  error entry for it (as AWS does: the call succeeds, with Errors).

Run as a script with moto_server's arguments.
"""

from __future__ import annotations

import json
import os
import sys
import time
import uuid


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
    _eks_addons()
    _cost_allocation_tags()


def _cost_allocation_tags() -> None:
    from moto.ce.responses import CostExplorerResponse

    seen = [key for key in os.environ.get("PARHELION_STAND_IN_COST_TAGS", "").split(",") if key]
    statuses = dict.fromkeys(seen, "Inactive")

    def described(key: str) -> dict:
        updated = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())  # CE sends ISO 8601 strings
        return {"TagKey": key, "Type": "UserDefined", "Status": statuses[key], "LastUpdatedDate": updated}

    def list_cost_allocation_tags(self) -> str:
        keys = self._get_param("TagKeys") or sorted(statuses)
        kind = self._get_param("Type")
        status = self._get_param("Status")
        tags = [
            described(key)
            for key in keys
            if key in statuses and kind in (None, "UserDefined") and status in (None, statuses[key])
        ]
        return json.dumps({"CostAllocationTags": tags})

    def update_cost_allocation_tags_status(self) -> str:
        errors = []
        for change in self._get_param("CostAllocationTagsStatus"):
            if change["TagKey"] in statuses:
                statuses[change["TagKey"]] = change["Status"]
            else:
                errors.append(
                    {
                        "TagKey": change["TagKey"],
                        "Code": "TagKeysNotFoundException",
                        "Message": "Tag keys not found",
                    }
                )
        return json.dumps({"Errors": errors})

    CostExplorerResponse.list_cost_allocation_tags = list_cost_allocation_tags
    CostExplorerResponse.update_cost_allocation_tags_status = update_cost_allocation_tags_status


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
        """The node group or add-on of this ARN (both keep tags on EKS), or None."""
        for cluster in backend.clusters.values():
            for nodegroup in cluster.nodegroups.values():
                if nodegroup.arn == arn:
                    return nodegroup
        for addons in getattr(backend, "standin_addons", {}).values():
            for addon in addons.values():
                if addon.arn == arn:
                    return addon
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


# ---------------------------------------------------------------- EKS add-ons (stand-ins)
ADDON_VERSIONS = {  # placeholders in EKS's version format, not AWS's current versions
    "vpc-cni": "v1.20.0-eksbuild.1",
    "coredns": "v1.12.1-eksbuild.2",
    "kube-proxy": "v1.33.0-eksbuild.2",
    "aws-ebs-csi-driver": "v1.45.0-eksbuild.2",
    "aws-efs-csi-driver": "v2.1.9-eksbuild.1",
    "eks-pod-identity-agent": "v1.3.7-eksbuild.2",
}
BUSY = ("CREATING", "UPDATING", "DELETING")


def _seconds() -> float:
    return float(os.environ.get("PARHELION_STAND_IN_ADDON_SECONDS", "1"))


def _degraded() -> set[str]:
    return {n.strip() for n in os.environ.get("PARHELION_STAND_IN_DEGRADED_ADDONS", "").split(",") if n}


class StandInAddon:
    """One add-on of one cluster, as EKS keeps it; its status follows time, as EKS's does."""

    def __init__(self, backend, cluster: str, name: str, params: dict):
        self.cluster, self.name = cluster, name
        self.arn = (
            f"arn:{backend.partition}:eks:{backend.region_name}:{backend.account_id}:"
            f"addon/{cluster}/{name}/{uuid.uuid4()}"
        )
        self.version = params.get("addonVersion") or ADDON_VERSIONS[name]
        self.role = params.get("serviceAccountRoleArn")
        self.configuration = params.get("configurationValues")
        self.pod_identities = params.get("podIdentityAssociations") or []
        self.tags = dict(params.get("tags") or {})
        self.created_at = self.modified_at = _now()
        self.updates: dict[str, dict] = {}
        self.change("CREATING")

    def change(self, phase: str) -> None:
        self.phase, self.settles_at = phase, time.monotonic() + _seconds()
        self.modified_at = _now()

    @property
    def status(self) -> str:
        if self.phase in BUSY and time.monotonic() < self.settles_at:
            return self.phase
        if self.phase == "DELETING":
            return "DELETED"
        degraded = _degraded()
        return "DEGRADED" if {self.name, f"{self.cluster}/{self.name}"} & degraded else "ACTIVE"

    def described(self) -> dict:
        status = self.status
        issues = []
        if status == "DEGRADED":
            issues.append(
                {
                    "code": "InsufficientNumberOfReplicas",
                    "message": "The add-on is unhealthy because it doesn't have the desired number "
                    "of replicas.",
                    "resourceIds": [f"kube-system/{self.name}"],
                }
            )
        addon = {
            "addonName": self.name,
            "clusterName": self.cluster,
            "status": status,
            "addonVersion": self.version,
            "health": {"issues": issues},
            "addonArn": self.arn,
            "createdAt": self.created_at,
            "modifiedAt": self.modified_at,
            "tags": dict(self.tags),
            "publisher": "eks",
            "owner": "aws",
            "podIdentityAssociations": [p.get("roleArn", "") for p in self.pod_identities],
        }
        if self.role:
            addon["serviceAccountRoleArn"] = self.role
        if self.configuration:
            addon["configurationValues"] = self.configuration
        return addon


def _now():
    from moto.core.utils import utcnow

    return utcnow()


def _check_configuration(name: str, text: str | None) -> None:
    """What EKS's schema validation would refuse of what Parhelion sends (a few keys only)."""
    from moto.eks.exceptions import InvalidParameterException

    def refuse(why: str):
        raise InvalidParameterException(
            clusterName=None,
            nodegroupName=None,
            fargateProfileName=None,
            addonName=name,
            message=f"ConfigurationValue provided in request is not supported: {why}",
        )

    if not text:
        return
    try:
        values = json.loads(text)
    except ValueError:
        import yaml

        try:
            values = yaml.safe_load(text)
        except yaml.YAMLError:
            refuse("it is neither JSON nor YAML")
    if not isinstance(values, dict):
        refuse("Json schema validation failed with error: [$: must be an object]")
    if name == "vpc-cni" and values.get("enableNetworkPolicy", "false") not in ("true", "false"):
        refuse("Json schema validation failed with error: [$.enableNetworkPolicy: must be a string]")
    default_class = values.get("defaultStorageClass", {"enabled": False})
    if name == "aws-ebs-csi-driver" and not isinstance(default_class.get("enabled"), bool):
        refuse("Json schema validation failed with error: [$.defaultStorageClass.enabled: must be a boolean]")


def _eks_addons() -> None:
    from moto.core.responses import ActionResult
    from moto.eks import urls
    from moto.eks.exceptions import (
        InvalidParameterException,
        ResourceInUseException,
        ResourceNotFoundException,
    )
    from moto.eks.models import EKSBackend, paginated_list
    from moto.eks.responses import EKSResponse

    def not_found(message: str, cluster: str | None = None, addon: str | None = None):
        return ResourceNotFoundException(
            clusterName=cluster,
            nodegroupName=None,
            fargateProfileName=None,
            addonName=addon,
            message=message,
        )

    def addons_of(backend, cluster: str) -> dict[str, StandInAddon]:
        if cluster not in backend.clusters:
            raise not_found(f"No cluster found for name: {cluster}.", cluster)
        addons = backend.__dict__.setdefault("standin_addons", {}).setdefault(cluster, {})
        for gone in [n for n, a in addons.items() if a.status == "DELETED"]:
            del addons[gone]
        return addons

    def addon_of(backend, cluster: str, name: str) -> StandInAddon:
        try:
            return addons_of(backend, cluster)[name]
        except KeyError:
            raise not_found(f"No addon: {name} found in cluster: {cluster}", cluster, name) from None

    def create_addon(self):
        cluster, name = self._get_param("name"), self._get_param("addonName")
        addons = addons_of(self.eks_backend, cluster)
        if name in addons:
            raise ResourceInUseException(
                clusterName=cluster, nodegroupName=None, addonName=name, message="Addon already exists."
            )
        if name not in ADDON_VERSIONS:
            raise InvalidParameterException(
                clusterName=cluster,
                nodegroupName=None,
                fargateProfileName=None,
                addonName=name,
                message=f"Addon {name} specified is not supported",
            )
        params = {key: self._get_param(key) for key in ("addonVersion", "serviceAccountRoleArn", "tags")}
        params["configurationValues"] = self._get_param("configurationValues")
        params["podIdentityAssociations"] = self._get_param("podIdentityAssociations")
        _check_configuration(name, params["configurationValues"])
        addons[name] = StandInAddon(self.eks_backend, cluster, name, params)
        return ActionResult({"addon": addons[name].described()})

    def describe_addon(self):
        addon = addon_of(self.eks_backend, self._get_param("name"), self._get_param("addonName"))
        return ActionResult({"addon": addon.described()})

    def update_addon(self):
        addon = addon_of(self.eks_backend, self._get_param("name"), self._get_param("addonName"))
        if addon.status in BUSY:
            raise ResourceInUseException(
                clusterName=addon.cluster,
                nodegroupName=None,
                addonName=addon.name,
                message=f"Addon {addon.name} is in {addon.status} state and cannot be updated",
            )
        params = []
        for key, kind in (
            ("addonVersion", "AddonVersion"),
            ("serviceAccountRoleArn", "ServiceAccountRoleArn"),
            ("resolveConflicts", "ResolveConflicts"),
            ("configurationValues", "ConfigurationValues"),
        ):
            value = self._get_param(key)
            if value is not None:
                params.append({"type": kind, "value": value})
        _check_configuration(addon.name, self._get_param("configurationValues"))
        for item in params:
            if item["type"] == "AddonVersion":
                addon.version = item["value"]
            elif item["type"] == "ServiceAccountRoleArn":
                addon.role = item["value"] or None
            elif item["type"] == "ConfigurationValues":
                addon.configuration = item["value"] or None
        addon.change("UPDATING")
        update = {"id": str(uuid.uuid4()), "type": "AddonUpdate", "params": params, "createdAt": _now()}
        addon.updates[update["id"]] = update
        return ActionResult({"update": dict(update, status="InProgress", errors=[])})

    def describe_update(self):
        cluster, update_id = self._get_param("name"), self._get_param("updateId")
        name = self._get_param("addonName")
        addon = addon_of(self.eks_backend, cluster, name) if name else None
        if addon is None or update_id not in addon.updates:
            raise not_found(f"No update found for ID: {update_id}", cluster, name)
        done = addon.status not in BUSY
        status = "Successful" if done else "InProgress"
        return ActionResult({"update": dict(addon.updates[update_id], status=status, errors=[])})

    def delete_addon(self):
        addon = addon_of(self.eks_backend, self._get_param("name"), self._get_param("addonName"))
        if addon.phase != "DELETING":
            addon.change("DELETING")
        return ActionResult({"addon": addon.described()})

    def list_addons(self):
        names = list(addons_of(self.eks_backend, self._get_param("name")))
        size = self._get_int_param("maxResults", 100)
        page, token = paginated_list(names, size, self._get_param("nextToken"))
        return ActionResult({"addons": page, "nextToken": token} if token else {"addons": page})

    for operation in (create_addon, describe_addon, update_addon, describe_update, delete_addon, list_addons):
        setattr(EKSResponse, operation.__name__, operation)
    urls.url_paths.update(
        {
            "{0}/clusters/(?P<name>[^/]+)/addons$": urls.response.dispatch,
            "{0}/clusters/(?P<name>[^/]+)/addons/(?P<addonName>[^/]+)$": urls.response.dispatch,
            "{0}/clusters/(?P<name>[^/]+)/addons/(?P<addonName>[^/]+)/update$": urls.response.dispatch,
            "{0}/clusters/(?P<name>[^/]+)/updates/(?P<updateId>[^/]+)$": urls.response.dispatch,
        }
    )

    delete_cluster = EKSBackend.delete_cluster

    def delete_cluster_and_addons(self, name: str):
        cluster = delete_cluster(self, name)
        self.__dict__.get("standin_addons", {}).pop(name, None)
        return cluster

    EKSBackend.delete_cluster = delete_cluster_and_addons


if __name__ == "__main__":
    install()
    from moto.server import main

    main(sys.argv[1:])
