"""parhelion.platform.cost_allocation_tag through ansible-playbook against moto's server (with
the Cost Explorer tag stand-ins of tests/moto_extras.py): a key billing has not seen yet is
warned about and left; a seen one is activated (predicted in check mode), then left alone.
Each state is read back with boto3, from us-east-1 whatever the play's region."""

from __future__ import annotations

import pytest

from tests.ansible.runner import run_playbook
from tests.aws import MotoServer

pytestmark = pytest.mark.ansible
PLAYBOOK = "../tests/ansible/cost_tag.yml"
KEY = "parhelion.dev/cluster"


@pytest.fixture(scope="module")
def moto(tmp_path_factory):
    server = MotoServer(
        tmp_path_factory.mktemp("moto") / "moto.log", env={"PARHELION_STAND_IN_COST_TAGS": KEY}
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()


def status(moto, key: str) -> str | None:
    tags = moto.client("ce").list_cost_allocation_tags(TagKeys=[key])["CostAllocationTags"]
    return tags[0]["Status"] if tags else None


def test_unseen_then_activated_then_left_alone(moto, tmp_path):
    def play(key: str, check: bool = False):
        run = run_playbook(
            PLAYBOOK, tmp_path / "home", extra_vars={"moto_url": moto.url, "tag_key": key}, check=check
        )
        assert run.returncode == 0, run.failures() or run.stderr or run.report
        (result,) = run.results("The tag")
        return run, result

    run, result = play("team")
    assert run.changed == 0 and result["status"] == "NotYetSeen"
    assert "billing has not seen the tag team yet" in " ".join(result["warnings"])

    assert status(moto, KEY) == "Inactive"
    run, result = play(KEY, check=True)
    assert run.changed == 1 and status(moto, KEY) == "Inactive"
    run, result = play(KEY)
    assert run.changed == 1 and result["status"] == "Active" and status(moto, KEY) == "Active"
    run, result = play(KEY)
    assert run.changed == 0 and result["status"] == "Active"
