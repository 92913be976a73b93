"""parhelion.platform.eks_addon and eks_addon_info through ansible-playbook against moto's server
with the EKS add-on stand-ins of tests/moto_extras.py (moto has no add-on calls): create and wait
for ACTIVE, no-op (also when EKS holds the same values as other text), check mode, update in
place, tags, delete; a DEGRADED add-on's timeout named with its health; the info module's
problems, one sentence each. Each state is read back with boto3."""

from __future__ import annotations

import json

import pytest

from tests.ansible.runner import run_playbook
from tests.aws import MotoServer

pytestmark = pytest.mark.ansible
PLAYBOOK = "../tests/ansible/addon.yml"
DEGRADED = "coredns"  # the stand-in keeps this one DEGRADED, as EKS reports a driver without ready pods


@pytest.fixture(scope="module")
def moto(tmp_path_factory):
    server = MotoServer(
        tmp_path_factory.mktemp("moto") / "moto.log",
        env={"PARHELION_STAND_IN_DEGRADED_ADDONS": DEGRADED, "PARHELION_STAND_IN_ADDON_SECONDS": "1"},
    )
    server.start()
    try:
        ec2, iam = server.client("ec2"), server.client("iam")
        vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.0.0/24")["Subnet"]["SubnetId"]
        role = iam.create_role(RoleName="cluster", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        server.client("eks").create_cluster(
            name="parhelion", roleArn=role, resourcesVpcConfig={"subnetIds": [subnet]}
        )
        yield server
    finally:
        server.stop()


def play(moto, tmp_path, check=False, **variables):
    return run_playbook(
        PLAYBOOK, tmp_path / "home", extra_vars={"moto_url": moto.url, **variables}, check=check, diff=True
    )


def result(run, task="The add-on") -> dict:
    return run.results(task)[0]


def described(moto, name: str) -> dict | None:
    eks = moto.client("eks")
    try:
        return eks.describe_addon(clusterName="parhelion", addonName=name)["addon"]
    except eks.exceptions.ResourceNotFoundException:
        return None


def test_create_noop_check_update_tags_delete(moto, tmp_path):
    policy = {"enableNetworkPolicy": "true"}
    first = play(moto, tmp_path, addon_name="vpc-cni", addon_configuration=policy, addon_tags={"team": "a"})
    assert first.returncode == 0, "\n".join(first.failures()) or first.stderr
    made = result(first)
    assert made["changed"] and made["addon"]["status"] == "ACTIVE"  # created CREATING, waited for
    addon = described(moto, "vpc-cni")
    assert json.loads(addon["configurationValues"]) == policy
    assert addon["tags"] == {"team": "a"}

    again = play(moto, tmp_path, addon_name="vpc-cni", addon_configuration=policy, addon_tags={"team": "a"})
    assert again.returncode == 0 and not result(again)["changed"]

    # The same values as other text (EKS keeps the text it was given): still nothing to do.
    update = moto.client("eks").update_addon(
        clusterName="parhelion", addonName="vpc-cni", configurationValues="enableNetworkPolicy: 'true'\n"
    )["update"]
    assert update["status"] == "InProgress"
    same = play(moto, tmp_path, addon_name="vpc-cni", addon_configuration=policy, addon_tags={"team": "a"})
    assert same.returncode == 0 and not result(same)["changed"], result(same)

    off = {"enableNetworkPolicy": "false", "env": {"WARM_IP_TARGET": "5"}}
    checked = play(moto, tmp_path, check=True, addon_name="vpc-cni", addon_configuration=off)
    assert checked.returncode == 0 and result(checked)["changed"]
    assert result(checked)["diff"]["after"]["configuration_values"] == off
    assert described(moto, "vpc-cni")["configurationValues"] == "enableNetworkPolicy: 'true'\n"

    updated = play(moto, tmp_path, addon_name="vpc-cni", addon_configuration=off, addon_tags={"team": "b"})
    assert updated.returncode == 0, "\n".join(updated.failures())
    assert result(updated)["changed"] and result(updated)["update"]["status"] == "Successful"
    params = {p["type"]: p["value"] for p in result(updated)["update"]["params"]}
    assert json.loads(params["ConfigurationValues"]) == off and params["ResolveConflicts"] == "OVERWRITE"
    addon = described(moto, "vpc-cni")
    assert json.loads(addon["configurationValues"]) == off and addon["status"] == "ACTIVE"
    assert addon["tags"] == {"team": "b"}

    gone_check = play(moto, tmp_path, check=True, addon_name="vpc-cni", addon_state="absent")
    assert result(gone_check)["changed"] and described(moto, "vpc-cni") is not None
    gone = play(moto, tmp_path, addon_name="vpc-cni", addon_state="absent")
    assert gone.returncode == 0 and result(gone)["changed"]
    assert described(moto, "vpc-cni") is None
    assert moto.client("eks").list_addons(clusterName="parhelion")["addons"] == []
    still_gone = play(moto, tmp_path, addon_name="vpc-cni", addon_state="absent")
    assert still_gone.returncode == 0 and not result(still_gone)["changed"]


def test_check_mode_then_role_and_version_set_and_kept(moto, tmp_path):
    role = "arn:aws:iam::123456789012:role/parhelion-ebs-csi"
    checked = play(moto, tmp_path, check=True, addon_name="aws-ebs-csi-driver", addon_role=role)
    assert result(checked)["changed"] and described(moto, "aws-ebs-csi-driver") is None
    assert result(checked)["diff"]["after"]["service_account_role_arn"] == role
    run = play(moto, tmp_path, addon_name="aws-ebs-csi-driver", addon_role=role)
    assert run.returncode == 0, "\n".join(run.failures())
    version = described(moto, "aws-ebs-csi-driver")["addonVersion"]  # EKS's default, then kept
    assert described(moto, "aws-ebs-csi-driver")["serviceAccountRoleArn"] == role
    assert not result(play(moto, tmp_path, addon_name="aws-ebs-csi-driver"))["changed"]

    pinned = play(
        moto, tmp_path, addon_name="aws-ebs-csi-driver", addon_role=role, addon_version="v9.9.9-eksbuild.1"
    )
    assert result(pinned)["changed"] and described(moto, "aws-ebs-csi-driver")["addonVersion"] != version
    assert described(moto, "aws-ebs-csi-driver")["addonVersion"] == "v9.9.9-eksbuild.1"
    play(moto, tmp_path, addon_name="aws-ebs-csi-driver", addon_state="absent")


def test_a_degraded_addon_times_out_naming_its_status_and_health(moto, tmp_path):
    run = play(moto, tmp_path, addon_name=DEGRADED, addon_wait_timeout=4)
    assert run.returncode != 0
    failure = "\n".join(run.failures())
    assert f"EKS add-on {DEGRADED} of cluster parhelion is still DEGRADED after 4 s" in failure, failure
    assert "InsufficientNumberOfReplicas" in failure and f"kube-system/{DEGRADED}" in failure
    play(moto, tmp_path, addon_name=DEGRADED, addon_state="absent")


def test_what_eks_refuses_is_named(moto, tmp_path):
    run = play(moto, tmp_path, addon_name="vpc-cni", addon_configuration={"enableNetworkPolicy": True})
    assert run.returncode != 0
    failure = "\n".join(run.failures())
    assert "EKS add-on vpc-cni of cluster parhelion" in failure and "enableNetworkPolicy" in failure, failure
    missing = play(moto, tmp_path, addon_name="vpc-cni", addon_cluster="elsewhere")
    assert "No cluster found for name: elsewhere." in "\n".join(missing.failures())


def test_info_names_every_problem(moto, tmp_path):
    play(moto, tmp_path, addon_name="vpc-cni")  # installed, without network policy
    play(moto, tmp_path, addon_name="aws-ebs-csi-driver")  # installed, without a role
    require = [
        {"name": "vpc-cni", "configuration": {"enableNetworkPolicy": "true"}, "reason": "policies"},
        {"name": "aws-ebs-csi-driver", "role": True, "reason": "gp3 volumes"},
        {"name": "aws-efs-csi-driver", "reason": "EFS scratch"},
    ]
    run = play(moto, tmp_path, addon_require=require)
    assert run.returncode == 0, "\n".join(run.failures())
    info = result(run, "The add-ons, against requirements")
    assert info["cluster_exists"] and set(info["addons"]) == {"vpc-cni", "aws-ebs-csi-driver"}
    assert info["problems"] == [
        'the vpc-cni add-on\'s configuration value enableNetworkPolicy is unset, not "true" (policies)',
        "the aws-ebs-csi-driver add-on has no IAM role (no serviceAccountRoleArn, no Pod Identity "
        "association), so it runs with the node role (gp3 volumes)",
        "the aws-efs-csi-driver add-on is not installed (EFS scratch)",
    ]

    nowhere = play(moto, tmp_path, addon_require=require, addon_cluster="elsewhere")
    info = result(nowhere, "The add-ons, against requirements")
    assert not info["cluster_exists"] and info["problems"] == ["EKS cluster elsewhere does not exist"]
    for name in ("vpc-cni", "aws-ebs-csi-driver"):
        play(moto, tmp_path, addon_name=name, addon_state="absent")
