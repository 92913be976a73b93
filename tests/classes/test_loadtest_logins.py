"""How made-up students log in to a local platform: the shared password, or first-use
passwords that each student sets at their first login (derived, so a second run logs in
again), and never written to the JSON report."""

from __future__ import annotations

from platform_tools.classes.loadtest import LoadtestReport, LoadtestSpec


def test_first_use_students_each_get_their_own_stable_password():
    spec = LoadtestSpec(url="http://hub", password="", users=3, password_key="k" * 64)
    passwords = [spec.password_for(name) for name in spec.usernames]
    assert len(set(passwords)) == 3 and all(len(p) == 32 for p in passwords)
    again = LoadtestSpec(url="http://hub", password="", users=3, password_key="k" * 64)
    assert [again.password_for(name) for name in again.usernames] == passwords  # the next run
    other = LoadtestSpec(url="http://hub", password="", users=3, password_key="j" * 64)
    assert other.password_for(spec.usernames[0]) != passwords[0]


def test_the_shared_password_is_everyones_and_no_password_reaches_the_report():
    shared = LoadtestSpec(url="http://hub", password="s3cret", users=2)
    assert {shared.password_for(name) for name in shared.usernames} == {"s3cret"}
    keyed = LoadtestSpec(url="http://hub", password="", users=1, password_key="key-material")
    for spec in (shared, keyed):
        written = LoadtestReport(spec, [], 1.0).as_json()["spec"]
        assert "password" not in written and "password_key" not in written
        assert "s3cret" not in str(written) and "key-material" not in str(written)
