"""One running local platform for the adversarial tests, set up so that caps are crossed in
seconds: the meter samples and the enforcer passes every second, budgets are cents or less,
and the ledger lives on a small file system of its own (a tmpfs mounted for the tests in the
state directory), which the full-disk test fills.

It is package-scoped: starting and stopping a platform costs about a minute on two cores,
and the attacks and faults need the same things (several users, tokens, clusters). The
faults module runs last (files run in name order) and kills the hub last of all.
"""

from __future__ import annotations

import subprocess

import pytest
import yaml

from tests.adversarial.probes import BURST_BUDGET_USD, GHOST_BUDGET_USD, GRACE_MINUTES
from tests.platform import platform_config_text, running_platform

#: The ledger's file system: small, so that filling it is quick, and roomy enough for a
#: few minutes of one-second samples.
LEDGER_FS_SIZE = "16m"


def adversarial_config(ledger_dir) -> str:
    """The example platform.yaml with attackers, a burst user, a user the hub will forget,
    a class, one-second metering and tiny budgets."""
    config = yaml.safe_load(platform_config_text(sample_files=4))
    config["hub"]["users"] = ["demo", "mallory"]
    config["hub"]["cull_idle_servers_after_minutes"] = 0
    groups = config["groups"]
    researchers = groups["researchers"]
    researchers["members"] = ["demo", "mallory"]
    researchers["budget"]["grace_minutes"] = GRACE_MINUTES
    groups["bursters"] = {
        "description": "One user who runs many clusters at once on a tiny budget.",
        "members": ["burster"],
        "profiles": ["small"],
        "quota": {
            "max_servers": 1,
            "max_dask_clusters": 20,
            "max_dask_cores": 20,
            "max_dask_memory_gib": 60,
        },
        "budget": {"usd": BURST_BUDGET_USD, "period": "month", "grace_minutes": 0},
    }
    groups["ghosts"] = {
        "description": "A user whose hub record is deleted while their cluster runs.",
        "members": ["ghost"],
        "profiles": ["small"],
        "quota": {"max_servers": 1, "max_dask_clusters": 1, "max_dask_cores": 2, "max_dask_memory_gib": 4},
        "budget": {"usd": GHOST_BUDGET_USD, "period": "month", "grace_minutes": 0},
    }
    groups["school"] = {
        "description": "A class, for its cost report.",
        "members": ["student1"],
        "profiles": ["small"],
        "quota": {"max_servers": 1, "max_dask_clusters": 1},
        "budget": {"usd": 5, "period": "course", "course": {"start": "2026-01-01", "end": "2030-12-31"}},
        "course": {"title": "Heliophysics school"},
    }
    accounting = config["accounting"]
    accounting["sample_interval_seconds"] = 1
    accounting["enforce_interval_seconds"] = 1
    accounting["database_url"] = f"sqlite:///{ledger_dir / 'accounting.sqlite'}"
    return yaml.safe_dump(config, sort_keys=False)


@pytest.fixture(scope="package")
def platform(tmp_path_factory):
    """The running platform; its ledger on a tmpfs that is unmounted at the end, whatever
    happened."""
    root = tmp_path_factory.mktemp("adversarial")
    ledger_dir = root / "state" / "ledger"
    ledger_dir.mkdir(parents=True)
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={LEDGER_FS_SIZE},mode=0700", "tmpfs", str(ledger_dir)],
        check=True,
        capture_output=True,
    )
    try:
        with running_platform(root, adversarial_config(ledger_dir)) as running:
            running.ledger_dir = ledger_dir
            yield running
    finally:
        subprocess.run(["umount", "--lazy", str(ledger_dir)], check=False, capture_output=True)
