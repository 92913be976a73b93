"""provision.yml against moto's server: made, made again with EFS on (only the EFS CSI driver
and its role are new), once more (nothing changes), in check mode with a change asked (it is
predicted, not made), then teardown.yml, after which nothing it made is left. Uses
inventories/aws-example as shipped, except EFS (community.aws.efs cannot run against moto: its
DescribeTags answers 404); the EFS CSI driver and its role, which depend only on EFS being on,
are then asked for by their roles' variables. EKS add-ons are moto stand-ins
(tests/moto_extras.py)."""

from __future__ import annotations

import json

import pytest

from tests.ansible.runner import ANSIBLE_DIR, run_playbook
from tests.aws import MotoServer

pytestmark = pytest.mark.ansible
INVENTORY = ANSIBLE_DIR / "inventories" / "aws-example"


@pytest.fixture(scope="module")
def moto(tmp_path_factory):
    server = MotoServer(
        tmp_path_factory.mktemp("moto") / "moto.log",
        # add-ons ACTIVE as soon as made (their waits are tested in test_eks_addon.py)
        # billing has seen the cluster's tag (tests/moto_extras.py): provision activates it
        env={
            "MOTO_IAM_LOAD_MANAGED_POLICIES": "true",
            "PARHELION_STAND_IN_ADDON_SECONDS": "0",
            "PARHELION_STAND_IN_COST_TAGS": "parhelion.dev/cluster,owner",
        },
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()


def aws_env(moto) -> dict[str, str]:
    return {
        "AWS_ENDPOINT_URL": moto.url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }


def inventory_of(moto) -> dict:
    """What provision made, as the AWS APIs list it."""
    ec2, iam, eks = moto.client("ec2"), moto.client("iam"), moto.client("eks")
    vpcs = ec2.describe_vpcs(Filters=[{"Name": "tag:Name", "Values": ["parhelion"]}])["Vpcs"]
    subnets = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [v["VpcId"] for v in vpcs]}])[
        "Subnets"
    ]
    nats = [n for n in ec2.describe_nat_gateways()["NatGateways"] if n["State"] in ("available", "pending")]
    roles = sorted(r["RoleName"] for r in iam.list_roles()["Roles"] if r["RoleName"].startswith("parhelion-"))
    clusters = eks.list_clusters()["clusters"]
    nodegroups = eks.list_nodegroups(clusterName="parhelion")["nodegroups"] if "parhelion" in clusters else []
    buckets = [b["Name"] for b in moto.client("s3").list_buckets()["Buckets"]]
    queues = moto.client("sqs").list_queues().get("QueueUrls", [])
    rules = [r["Name"] for r in moto.client("events").list_rules()["Rules"]]
    budgets = [
        b["BudgetName"]
        for b in moto.client("budgets").describe_budgets(AccountId="123456789012").get("Budgets", [])
    ]
    providers = iam.list_open_id_connect_providers()["OpenIDConnectProviderList"]
    addons = eks.list_addons(clusterName="parhelion")["addons"] if "parhelion" in clusters else []
    return {
        "vpcs": len(vpcs),
        "subnets": len(subnets),
        "nats": len(nats),
        "roles": roles,
        "clusters": clusters,
        "nodegroups": nodegroups,
        "buckets": buckets,
        "queues": len(queues),
        "rules": len(rules),
        "budgets": budgets,
        "oidc_providers": len(providers),
        "addons": sorted(addons),
    }


def addon(moto, name: str) -> dict:
    found = moto.client("eks").describe_addon(clusterName="parhelion", addonName=name)["addon"]
    return dict(found, configurationValues=json.loads(found.get("configurationValues") or "{}"))


def assert_irsa_role(moto, name: str, service_account: str, policy: str) -> str:
    """The role trusts only the cluster's issuer for this service account, with AWS's policy."""
    iam = moto.client("iam")
    role = iam.get_role(RoleName=name)["Role"]
    issuer = moto.client("eks").describe_cluster(name="parhelion")["cluster"]["identity"]["oidc"]["issuer"]
    host = issuer.removeprefix("https://")
    (statement,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert statement["Action"] == "sts:AssumeRoleWithWebIdentity"
    assert statement["Principal"]["Federated"].endswith(f":oidc-provider/{host}")
    assert statement["Condition"] == {
        "StringEquals": {
            f"{host}:sub": f"system:serviceaccount:{service_account}",
            f"{host}:aud": "sts.amazonaws.com",
        }
    }
    attached = iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"]
    assert [p["PolicyArn"] for p in attached] == [f"arn:aws:iam::aws:policy/service-role/{policy}"]
    return role["Arn"]


def changed_tasks(run) -> list[str]:
    return [
        task["task"]["name"]
        for p in run.report["plays"]
        for task in p["tasks"]
        for result in task["hosts"].values()
        if result.get("changed") or any(r.get("changed") for r in result.get("results", []))
    ]


def test_provision_efs_again_check_mode_then_teardown(moto, tmp_path):
    def play(name: str, check: bool = False, **extra_vars):
        run = run_playbook(
            name,
            tmp_path / "home",
            inventory=INVENTORY,
            extra_vars={"aws_storage_efs": False, **extra_vars},
            env=aws_env(moto),
            check=check,
        )
        assert run.returncode == 0, "\n".join(run.failures()) or run.stderr or run.report
        return run

    first = play("provision.yml")
    assert first.changed > 10
    made = inventory_of(moto)
    assert made == {
        "vpcs": 1,
        "subnets": 4,
        "nats": 1,
        "roles": [
            "parhelion-accounting",
            "parhelion-cluster",
            "parhelion-ebs-csi",
            "parhelion-karpenter",
            "parhelion-node",
            "parhelion-users",
        ],
        "clusters": ["parhelion"],
        "nodegroups": ["core"],
        "buckets": ["parhelion-scratch"],
        "queues": 1,
        "rules": 4,
        "budgets": ["parhelion-monthly"],
        "oidc_providers": 1,
        "addons": ["aws-ebs-csi-driver", "vpc-cni"],
    }
    vpc_cni = addon(moto, "vpc-cni")
    assert vpc_cni["status"] == "ACTIVE" and vpc_cni["configurationValues"] == {"enableNetworkPolicy": "true"}
    assert "serviceAccountRoleArn" not in vpc_cni  # the node role's AmazonEKS_CNI_Policy
    ebs = addon(moto, "aws-ebs-csi-driver")
    assert ebs["status"] == "ACTIVE" and ebs["configurationValues"] == {
        "defaultStorageClass": {"enabled": True},
        # home volumes carry the cost-allocation tag Cost Explorer's bill is filtered by
        "controller": {
            "extraVolumeTags": {"parhelion.dev/cluster": "parhelion", "owner": "platform-team@example.org"}
        },
    }
    assert ebs["serviceAccountRoleArn"] == assert_irsa_role(
        moto, "parhelion-ebs-csi", "kube-system:ebs-csi-controller-sa", "AmazonEBSCSIDriverPolicy"
    )
    assert ebs["tags"] == {"parhelion.dev/cluster": "parhelion", "owner": "platform-team@example.org"}
    nodegroup = moto.client("eks").describe_nodegroup(clusterName="parhelion", nodegroupName="core")[
        "nodegroup"
    ]
    assert nodegroup["labels"] == {"parhelion.dev/pool": "core", "hub.jupyter.org/node-purpose": "core"}
    assert nodegroup["capacityType"] == "ON_DEMAND"
    # the accounting service may read prices and the bill, and nothing else
    policy = moto.client("iam").get_role_policy(RoleName="parhelion-accounting", PolicyName="parhelion")
    statements = policy["PolicyDocument"]["Statement"]
    assert {action for st in statements for action in st["Action"]} == {
        "pricing:GetProducts",
        "ec2:DescribeInstanceTypes",
        "ec2:DescribeSpotPriceHistory",
        "ce:GetCostAndUsage",
    }
    assert all(st["Effect"] == "Allow" and st["Resource"] == "*" for st in statements)
    # the cluster's cost-allocation tag is active (budgets and `parhelion cost reconcile` filter by it)
    tags = moto.client("ce").list_cost_allocation_tags()["CostAllocationTags"]
    assert {t["TagKey"]: t["Status"] for t in tags} == {
        "parhelion.dev/cluster": "Active",
        "owner": "Inactive",
    }
    lifecycle = moto.client("s3").get_bucket_lifecycle_configuration(Bucket="parhelion-scratch")["Rules"]
    assert lifecycle[0]["Expiration"]["Days"] == 30

    # EFS on (the file system itself cannot be made on moto): only its driver and role are new.
    efs_on = {"eks_irsa_efs": True, "eks_addons_efs": True}
    second = play("provision.yml", **efs_on)
    assert set(changed_tasks(second)) == {
        "eks_irsa : The CSI drivers' controller roles, trusting only their service account",
        "eks_addons : Each add-on installed and configured, ACTIVE before the next",
    }
    efs = addon(moto, "aws-efs-csi-driver")
    assert efs["status"] == "ACTIVE" and efs["serviceAccountRoleArn"] == assert_irsa_role(
        moto, "parhelion-efs-csi", "kube-system:efs-csi-controller-sa", "AmazonEFSCSIDriverPolicy"
    )
    made = inventory_of(moto)
    assert made["addons"] == ["aws-ebs-csi-driver", "aws-efs-csi-driver", "vpc-cni"]
    assert "parhelion-efs-csi" in made["roles"]

    # Check mode, with one change asked for (network policy off, for the test's sake): only that
    # is predicted (so every other task, the EFS ones included, is idempotent), and none is made.
    policy_off = {"eks_addons_configuration": {"vpc-cni": {"enableNetworkPolicy": "false"}}}
    checked = play("provision.yml", check=True, **efs_on, **policy_off)
    assert changed_tasks(checked) == [
        "eks_addons : Each add-on installed and configured, ACTIVE before the next"
    ]
    assert inventory_of(moto) == made
    assert addon(moto, "vpc-cni")["configurationValues"] == {"enableNetworkPolicy": "true"}

    play("teardown.yml")
    assert inventory_of(moto) == {
        "vpcs": 0,
        "subnets": 0,
        "nats": 0,
        "roles": [],
        "clusters": [],
        "nodegroups": [],
        "buckets": [],
        "queues": 0,
        "rules": 0,
        "budgets": [],
        "oidc_providers": 0,
        "addons": [],
    }
