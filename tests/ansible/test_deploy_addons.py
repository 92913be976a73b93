"""deploy.yml stops before anything is applied when the cluster lacks an EKS add-on the chart
needs, when vpc-cni does not enable network policy, or when EFS is on and the EFS CSI driver is
missing - one message naming each problem and saying to run provision.yml - and goes on when
all is there. Against moto's server with the EKS add-on stand-ins (tests/moto_extras.py); after
the checks the play reaches Karpenter's install, which has no cluster to talk to here."""

from __future__ import annotations

import copy
import json

import pytest
import yaml

from tests.ansible.runner import ANSIBLE_DIR, run_playbook
from tests.aws import MotoServer

pytestmark = pytest.mark.ansible
INVENTORY = ANSIBLE_DIR / "inventories" / "aws-example"
CHECK = "validate : The cluster has the EKS add-ons the chart needs"
KARPENTER = "karpenter : Karpenter (it runs on the managed core node group and starts every other node)"
ROLE = "arn:aws:iam::123456789012:role/{}"
POLICY_ON = {"enableNetworkPolicy": "true"}
GP3_DEFAULT = {"defaultStorageClass": {"enabled": True}}


@pytest.fixture(scope="module")
def moto(tmp_path_factory):
    server = MotoServer(
        tmp_path_factory.mktemp("moto") / "moto.log",
        # add-ons ACTIVE at once, except one of one cluster
        env={
            "PARHELION_STAND_IN_ADDON_SECONDS": "0",
            "PARHELION_STAND_IN_DEGRADED_ADDONS": "degraded/aws-ebs-csi-driver",
        },
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()


def cluster_with(moto, name: str, addons: dict[str, dict]) -> str:
    """A cluster with these add-ons ({name: CreateAddon arguments}), made directly."""
    ec2, eks = moto.client("ec2"), moto.client("eks")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.0.0/24")["Subnet"]["SubnetId"]
    eks.create_cluster(name=name, roleArn=ROLE.format("cluster"), resourcesVpcConfig={"subnetIds": [subnet]})
    for addon, arguments in addons.items():
        if "configurationValues" in arguments:
            arguments = dict(arguments, configurationValues=json.dumps(arguments["configurationValues"]))
        eks.create_addon(clusterName=name, addonName=addon, **arguments)
    return name


def deploy(moto, tmp_path, cluster: str, **extra_vars):
    return run_playbook(
        "deploy.yml",
        tmp_path / "home",
        inventory=INVENTORY,
        extra_vars={
            "eks_cluster_name": cluster,
            "parhelion_chart_render_dir": str(tmp_path / "rendered"),
            "karpenter_kubeconfig": str(tmp_path / "no-such-kubeconfig"),
            **extra_vars,
        },
        env={
            "AWS_ENDPOINT_URL": moto.url,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
        },
    )


def stopped_by_the_check(run) -> str:
    """The check's message, after asserting that it stopped the play before anything else ran."""
    assert run.returncode != 0
    failures = run.failures()
    assert len(failures) == 1 and failures[0].startswith(CHECK), failures
    assert run.results(KARPENTER) == [] and not (run.report and run.changed)
    return failures[0]


def test_a_bare_cluster_is_refused_naming_every_missing_addon(moto, tmp_path):
    cluster = cluster_with(moto, "bare", {})
    message = stopped_by_the_check(deploy(moto, tmp_path, cluster))  # the inventory has EFS on
    assert "EKS cluster bare (us-east-1) is not ready for the chart:" in message
    assert (
        "the vpc-cni add-on is not installed (without network policy on, EKS does not enforce the "
        "chart's NetworkPolicies); the aws-ebs-csi-driver add-on is not installed (the chart's gp3 "
        "StorageClass, for users' homes and the hub's database, needs the EBS CSI driver); the "
        "aws-efs-csi-driver add-on is not installed (EFS scratch is on, and its PersistentVolume "
        "needs the EFS CSI driver)."
    ) in message
    assert "Run provision.yml with this inventory" in message


def test_network_policy_off_is_refused(moto, tmp_path):
    cluster = cluster_with(
        moto,
        "no-policy",
        {
            "vpc-cni": {"configurationValues": {"enableNetworkPolicy": "false"}},
            "aws-ebs-csi-driver": {
                "serviceAccountRoleArn": ROLE.format("ebs"),
                "configurationValues": GP3_DEFAULT,
            },
        },
    )
    message = stopped_by_the_check(deploy(moto, tmp_path, cluster, aws_storage_efs=False))
    assert (
        'the vpc-cni add-on\'s configuration value enableNetworkPolicy is "false", not "true" '
        "(without network policy on"
    ) in message
    assert "aws-ebs-csi-driver" not in message and "efs" not in message.lower()


def test_efs_on_in_the_chart_needs_the_efs_driver(moto, tmp_path):
    cluster = cluster_with(
        moto,
        "no-efs-driver",
        {
            "vpc-cni": {"configurationValues": POLICY_ON},
            "aws-ebs-csi-driver": {
                "serviceAccountRoleArn": ROLE.format("ebs"),
                "configurationValues": GP3_DEFAULT,
            },
        },
    )
    scratch = {"storage": {"scratch": {"enabled": True, "fileSystemId": "fs-0123456789abcdef0"}}}
    run = deploy(moto, tmp_path, cluster, aws_storage_efs=False, parhelion_chart_values=scratch)
    message = stopped_by_the_check(run)
    assert message.endswith(
        "is not ready for the chart: the aws-efs-csi-driver add-on is not installed (EFS scratch is "
        "on, and its PersistentVolume needs the EFS CSI driver). Run provision.yml with this "
        "inventory (its eks_addons role installs and configures the add-ons), then deploy.yml again."
    ), message
    # EFS off everywhere: the same cluster passes the check.
    run = deploy(moto, tmp_path, cluster, aws_storage_efs=False)
    assert not run.results(CHECK)[0].get("failed") and run.results(KARPENTER), run.failures()


def test_a_driver_not_active_or_without_a_role_is_named(moto, tmp_path):
    cluster = cluster_with(
        moto, "degraded", {"vpc-cni": {"configurationValues": POLICY_ON}, "aws-ebs-csi-driver": {}}
    )
    message = stopped_by_the_check(deploy(moto, tmp_path, cluster, aws_storage_efs=False))
    assert (
        "the aws-ebs-csi-driver add-on is DEGRADED (InsufficientNumberOfReplicas: The add-on is "
        "unhealthy because it doesn't have the desired number of replicas. "
        "(kube-system/aws-ebs-csi-driver)) (the chart's gp3 StorageClass"
    ) in message
    assert "the aws-ebs-csi-driver add-on has no IAM role" in message and "vpc-cni" not in message


def test_gp3_not_the_default_class_is_named(moto, tmp_path):
    """Claims that name no class (the hub's database with upstream values, say) need gp3 as the
    cluster's default: the EBS add-on without defaultStorageClass is named."""
    cluster = cluster_with(
        moto,
        "gp2-default",
        {
            "vpc-cni": {"configurationValues": POLICY_ON},
            "aws-ebs-csi-driver": {"serviceAccountRoleArn": ROLE.format("ebs")},
        },
    )
    message = stopped_by_the_check(deploy(moto, tmp_path, cluster, aws_storage_efs=False))
    assert "aws-ebs-csi-driver" in message and "defaultStorageClass" in message, message
    assert "vpc-cni" not in message


def test_a_missing_cluster_is_named(moto, tmp_path):
    message = stopped_by_the_check(deploy(moto, tmp_path, "nowhere"))
    assert "is not ready for the chart: EKS cluster nowhere does not exist." in message


def test_a_ready_cluster_goes_on_to_karpenter(moto, tmp_path):
    cluster = cluster_with(
        moto,
        "ready",
        {
            "vpc-cni": {"configurationValues": POLICY_ON},
            "aws-ebs-csi-driver": {
                "serviceAccountRoleArn": ROLE.format("ebs"),
                "configurationValues": GP3_DEFAULT,
            },
            "aws-efs-csi-driver": {"serviceAccountRoleArn": ROLE.format("efs")},
        },
    )
    run = deploy(moto, tmp_path, cluster)  # the inventory as shipped: EFS on
    assert not run.results(CHECK)[0].get("failed"), run.failures()
    (karpenter,) = run.results(KARPENTER)  # reached; it fails only for want of a cluster here
    assert karpenter.get("failed"), karpenter


@pytest.mark.unit
def test_what_deploy_checks_is_what_provision_makes():
    """The validate role's requirements and the eks_addons role's add-ons are two lists (roles
    do not share vars): the same add-ons, configuration and IAM roles, EFS's only with EFS.

    One value provision sets is not a deploy requirement: the EBS driver's volume tags (they
    put volumes in the tag-filtered bill; the platform works without them, and the tags are
    the inventory's to change)."""
    roles = ANSIBLE_DIR / "roles"
    made = yaml.safe_load((roles / "eks_addons" / "vars" / "main.yml").read_text())["eks_addons_needed"]
    checked = yaml.safe_load((roles / "validate" / "vars" / "main.yml").read_text())
    required = {a["name"]: a for a in checked["validate_addons_required"]}
    with_efs = {a["name"]: a for a in checked["validate_addons_required_with_efs"]}
    assert set(made) == set(required) | set(with_efs)
    for name, addon in made.items():
        check = (with_efs if addon.get("efs") else required)[name]
        configuration = copy.deepcopy(addon.get("configuration", {}))
        if name == "aws-ebs-csi-driver":
            assert configuration.pop("controller") == {"extraVolumeTags": "{{ eks_addons_tags }}"}
        assert check.get("configuration", {}) == configuration, name
        assert bool(check.get("role")) == bool(addon.get("role")), name
