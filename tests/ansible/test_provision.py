"""provision.yml against moto's server, twice (the second run changes nothing), then
teardown.yml, after which nothing it made is left. Uses inventories/aws-example as shipped,
except EFS (community.aws.efs cannot run against moto: its DescribeTags answers 404)."""

from __future__ import annotations

import boto3
import pytest

from tests.ansible.runner import ANSIBLE_DIR, run_playbook
from tests.aws import MotoServer

pytestmark = pytest.mark.ansible
INVENTORY = ANSIBLE_DIR / "inventories" / "aws-example"


@pytest.fixture(scope="module")
def moto(tmp_path_factory):
    server = MotoServer(
        tmp_path_factory.mktemp("moto") / "moto.log", env={"MOTO_IAM_LOAD_MANAGED_POLICIES": "true"}
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


def client(moto, service: str):
    return boto3.client(
        service,
        endpoint_url=moto.url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def inventory_of(moto) -> dict:
    """What provision made, as the AWS APIs list it."""
    ec2, iam, eks = client(moto, "ec2"), client(moto, "iam"), client(moto, "eks")
    vpcs = ec2.describe_vpcs(Filters=[{"Name": "tag:Name", "Values": ["parhelion"]}])["Vpcs"]
    subnets = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [v["VpcId"] for v in vpcs]}])[
        "Subnets"
    ]
    nats = [n for n in ec2.describe_nat_gateways()["NatGateways"] if n["State"] in ("available", "pending")]
    roles = sorted(r["RoleName"] for r in iam.list_roles()["Roles"] if r["RoleName"].startswith("parhelion-"))
    clusters = eks.list_clusters()["clusters"]
    nodegroups = eks.list_nodegroups(clusterName="parhelion")["nodegroups"] if "parhelion" in clusters else []
    buckets = [b["Name"] for b in client(moto, "s3").list_buckets()["Buckets"]]
    queues = client(moto, "sqs").list_queues().get("QueueUrls", [])
    rules = [r["Name"] for r in client(moto, "events").list_rules()["Rules"]]
    budgets = [
        b["BudgetName"]
        for b in client(moto, "budgets").describe_budgets(AccountId="123456789012").get("Budgets", [])
    ]
    providers = iam.list_open_id_connect_providers()["OpenIDConnectProviderList"]
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
    }


def test_provision_twice_then_teardown(moto, tmp_path):
    def play(name: str):
        run = run_playbook(
            name,
            tmp_path / "home",
            inventory=INVENTORY,
            extra_vars={"aws_storage_efs": False},
            env=aws_env(moto),
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
    }
    nodegroup = client(moto, "eks").describe_nodegroup(clusterName="parhelion", nodegroupName="core")[
        "nodegroup"
    ]
    assert nodegroup["labels"] == {"parhelion.dev/pool": "core", "hub.jupyter.org/node-purpose": "core"}
    assert nodegroup["capacityType"] == "ON_DEMAND"
    lifecycle = client(moto, "s3").get_bucket_lifecycle_configuration(Bucket="parhelion-scratch")["Rules"]
    assert lifecycle[0]["Expiration"]["Days"] == 30

    second = play("provision.yml")
    changed = [
        task["task"]["name"]
        for p in second.report["plays"]
        for task in p["tasks"]
        for result in task["hosts"].values()
        if result.get("changed")
    ]
    assert second.changed == 0, changed
    assert inventory_of(moto) == made

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
    }
