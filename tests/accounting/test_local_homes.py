"""A home folder deleted and made again is a new lifetime in the ledger: its user is not
charged for the time it did not exist (it was, when the meter named a home by its user)."""

from __future__ import annotations

import shutil
import time

import pytest

from platform_tools.accounting.local_sources import home_observations
from platform_tools.config import parse_platform
from platform_tools.ledger.store import Ledger
from platform_tools.local.homes import user_homes

pytestmark = pytest.mark.unit

TEXT = """
name: homes
images: {base: "example.org/base:2026.11.0"}
profiles:
  small: {display_name: Small, cpu_guarantee: 1, cpu_limit: 1, mem_guarantee_gib: 1,
          mem_limit_gib: 2, image: base, price_per_hour_usd: 0.1}
accounting:
  defaults_quota: {storage_gib: 10}
"""
CONFIG = parse_platform(TEXT)
PER_GIB_HOUR = 0.08 / 730  # gp3's $/GiB-month as an hourly rate


def test_a_recreated_home_is_not_charged_for_the_gap(tmp_path):
    """Real folders and real time (a home's life starts at its birth, which cannot be
    simulated): a 2-second gap must not be charged."""
    homes = tmp_path / "homes"
    (homes / "ann").mkdir(parents=True)
    (homes / "ann" / "work.txt").write_text("x")
    ledger = Ledger(f"sqlite:///{tmp_path / 'ledger.sqlite'}")
    ledger.migrate()

    first = home_observations(user_homes(CONFIG, "simple", homes), CONFIG, PER_GIB_HOUR)
    time.sleep(0.5)
    ledger.record_sample(
        time.time(), home_observations(user_homes(CONFIG, "simple", homes), CONFIG, PER_GIB_HOUR)
    )
    shutil.rmtree(homes / "ann")  # a class closed, say: the home is deleted
    ledger.record_sample(time.time(), [])
    time.sleep(2)
    (homes / "ann").mkdir()  # a new class: ext4 often hands out the inode just freed
    again = home_observations(user_homes(CONFIG, "simple", homes), CONFIG, PER_GIB_HOUR)
    assert again[0].resource_key != first[0].resource_key
    time.sleep(0.5)
    ledger.record_sample(
        time.time(), home_observations(user_homes(CONFIG, "simple", homes), CONFIG, PER_GIB_HOUR)
    )

    lives = sorted(ledger.lifetimes("ann"), key=lambda row: row.started_at)
    assert len(lives) == 2
    assert lives[1].started_at - lives[0].last_seen_at >= 2  # the gap is between them
    lived = sum(row.last_seen_at - row.started_at for row in lives)
    assert lived < 2  # about 0.5 s each, the 2 s gap not included
    charged = ledger.spend("ann", 0, time.time() + 60)
    assert charged == pytest.approx(10 * PER_GIB_HOUR * lived / 3600, rel=1e-6)
    ledger.close()


def test_system_users_homes_are_measured_where_the_accounts_are(tmp_path):
    """system-users: a hub user's home is their account's (contract.accounts.user_home), not a
    folder of the state directory; it is charged under the hub name, a long or '@' name too,
    and a folder nobody in platform.yaml owns (another account's) is not charged to anyone."""
    from platform_tools.contract.accounts import user_home

    home_root = tmp_path / "home"
    config = parse_platform(
        TEXT + f"hub: {{users: [ann@uni.edu, bob]}}\nlocal: {{accounts: {{home_root: {home_root}}}}}\n"
    )
    state_homes = tmp_path / "state" / "homes"
    (state_homes / "bob").mkdir(parents=True)  # a simple-mode leftover: not bob's home now
    for name in ("ann@uni.edu", "bob"):
        user_home(config, "system-users", state_homes, name).mkdir(parents=True)
    (home_root / "someone-else").mkdir()
    homes = user_homes(config, "system-users", state_homes)
    assert homes == {
        "ann@uni.edu": home_root / "jupyter-ann_uni.edu-1ed43325",
        "bob": home_root / "jupyter-bob",
    }
    charged = home_observations(homes, config, PER_GIB_HOUR)
    assert sorted(o.username for o in charged) == ["ann@uni.edu", "bob"]
    assert user_homes(config, "simple", state_homes) == {"bob": state_homes / "bob"}
