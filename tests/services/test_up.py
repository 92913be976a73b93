"""`parhelion up` for real: a person logs in, starts a server, runs the getting-started
notebook in its kernel through the hub's proxy; the platform stops leaving nothing behind.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import nbformat
import psutil
import pytest

from platform_tools.clients.hubclient import HubError, HubUser
from tests.platform import (
    REPO_ROOT,
    outputs_text,
    platform_config_text,
    processes_of,
    run_in_a_users_kernel,
    run_parhelion,
    running_platform,
    server_with_cluster,
)

pytestmark = pytest.mark.integration

NOTEBOOK = REPO_ROOT / "notebooks" / "01-getting-started.ipynb"


def run(coro):
    return asyncio.run(coro)


# ------------------------------------------------------------ a running platform


def test_status_reports_every_service(local_platform):
    result = run_parhelion("status", "--state-dir", str(local_platform.state), timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"Parhelion is running from {local_platform.state}")
    rows = {line.split()[0]: line.split()[2:] for line in lines[3:-1]}
    assert rows["jupyterhub"][:3] == ["running", "HTTP", "200"]
    assert rows["dask-gateway"][:3] == ["running", "HTTP", "200"]
    assert rows["s3"][0] == "running"
    assert rows["idle-culler"][0] == "running"


def test_the_state_is_private_to_the_platforms_user(local_platform):
    """The ledger (and its WAL), the logs, runtime.json and platform.yaml that the running
    services made are 0600 in a 0700 directory: no other local account reads anyone's spend
    or cluster names (they were 0644 in a 0755 directory)."""
    import stat

    state = local_platform.state
    deadline = time.monotonic() + 30
    while not (state / "accounting.sqlite").exists() and time.monotonic() < deadline:
        time.sleep(0.5)
    files = [state / "platform.yaml", state / "runtime.json", *state.glob("accounting.sqlite*")]
    files += sorted((state / "logs").iterdir())
    assert any(path.name == "accounting.sqlite" for path in files)
    assert any(path.suffix == ".log" for path in files)
    modes = {path.name: oct(stat.S_IMODE(path.stat().st_mode)) for path in files}
    assert set(modes.values()) == {"0o600"}, modes
    assert oct(stat.S_IMODE(state.stat().st_mode)) == "0o700"


def test_every_listener_is_on_loopback(local_platform):
    listeners = []
    for proc in processes_of(local_platform.state):
        try:
            listeners += [
                c.laddr for c in proc.net_connections(kind="inet") if c.status == psutil.CONN_LISTEN
            ]
        except psutil.Error:
            continue
    assert len(listeners) >= 6  # s3, gateway http+tcp+api, proxy public+api, hub
    assert {addr.ip for addr in listeners} == {"127.0.0.1"}


def test_second_up_on_the_same_state_dir_is_refused(local_platform):
    before = {p.pid for p in processes_of(local_platform.state)}
    result = run_parhelion(
        "up",
        "--config",
        str(local_platform.config),
        "--state-dir",
        str(local_platform.state),
        "--free-ports",
        env=local_platform.env,
        timeout=60,
    )
    assert result.returncode == 1
    assert f"Parhelion is already running from {local_platform.state}" in result.stderr
    assert {p.pid for p in processes_of(local_platform.state)} == before


def test_wrong_password_is_refused(local_platform):
    async def attempt():
        async with HubUser(local_platform.url, "demo", "not-the-password") as user:
            await user.login()

    with pytest.raises(HubError, match="invalid username or password"):
        run(attempt())


def test_unlisted_user_is_refused(local_platform):
    async def attempt():
        async with HubUser(local_platform.url, "mallory", local_platform.password()) as user:
            await user.login()

    with pytest.raises(HubError, match="login as mallory failed"):
        run(attempt())


def test_admin_logs_in_with_the_admin_password(local_platform):
    async def admin():
        async with HubUser(local_platform.url, "admin", local_platform.password("admin")) as user:
            await user.login()
            return await user.user_model()

    assert run(admin())["admin"] is True


def test_gateway_needs_a_hub_token(local_platform):
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(f"{local_platform.url}/services/dask-gateway/api/v1/clusters/", timeout=10)
    assert caught.value.code == 401


def test_person_runs_the_getting_started_notebook(local_platform):
    """The issue's acceptance path, end to end, as a person does it."""
    notebook = nbformat.read(NOTEBOOK, as_version=4)

    async def session():
        async with HubUser(local_platform.url, "demo", local_platform.password()) as user:
            await user.login()
            await user.start_server()
            await user.open_lab()
            executed = await user.run_notebook(notebook, path="notebooks/01-getting-started.ipynb")
            await user.stop_server()
            return executed, user.timings.steps

    executed, timings = run(session())
    code = [cell for cell in executed.cells if cell.cell_type == "code"]
    texts = [outputs_text(cell) for cell in code]
    assert "aia_0094_synthetic" in texts[0]  # datasets from the archive's catalog
    assert "72 files" in texts[1]  # one day of the series
    assert "COMPRESSED_IMAGE" in texts[2] and "94 angstrom" in texts[2]  # FITS from S3
    assert any("image/png" in out.get("data", {}) for out in code[3].outputs)  # the sunpy plot
    assert "{'worker_cores': 1.0, 'worker_memory': 1.0}" in texts[4]
    assert "processes=2" in texts[4]  # a dask-gateway cluster with two workers
    assert "72 files analysed on 2 workers" in texts[5]
    assert "Timestamp('2024-05-08 20:00:00')" in texts[6]  # the flare, found
    assert "running clusters: 0" in texts[7]
    # the notebooks were copied into the new user's home
    home = local_platform.state / "homes" / "demo"
    assert (home / "notebooks" / "01-getting-started.ipynb").is_file()
    print("timings (s):", json.dumps({k: round(v, 2) for k, v in timings.items()}))


def test_data_and_dask_work_with_no_arguments_in_a_kernel(local_platform):
    """The promise to users: no set-up in a notebook, for S3 and for dask-gateway."""
    code = (
        "import fsspec, s3fs\n"
        "from dask_gateway import Gateway\n"
        "keys = s3fs.S3FileSystem().ls('helio-sample')\n"
        "with fsspec.open('s3://helio-sample/catalog.json') as f:\n"
        "    size = len(f.read())\n"
        "print(sorted(keys)[:2], size > 100, Gateway().list_clusters())\n"
    )

    (output,) = run_in_a_users_kernel(local_platform, code, timeout=120)
    assert output["text"].strip() == "['helio-sample/catalog.json', 'helio-sample/index'] True []"


def test_kernels_listen_on_private_unix_sockets(local_platform):
    """No TCP ports for kernels to race for when a class starts them at once, and none for other
    local accounts to reach: each user's kernels sit on Unix sockets in a 0700 directory."""
    code = (
        "import json, os, ipykernel.connect\n"
        "info = json.load(open(ipykernel.connect.get_connection_file()))\n"
        "where = os.path.dirname(info['ip'])\n"
        "print(info['transport'], info['ip'], oct(os.stat(where).st_mode & 0o777))\n"
    )
    (output,) = run_in_a_users_kernel(local_platform, code, timeout=120)
    transport, ip, mode = output["text"].split()
    sockets = local_platform.runtime["kernel_socket_dir"]
    assert (transport, mode) == ("ipc", "0o700")
    assert ip.startswith(f"{sockets}/demo/kernel-") and ip.endswith("-ipc")


# ---------------------------------------------------------------- bad input


def test_invalid_config_starts_nothing(tmp_path):
    config = tmp_path / "platform.yaml"
    config.write_text(platform_config_text().replace("cpu_limit: 1\n", "cpu_limit: many\n", 1))
    state = tmp_path / "state"
    result = run_parhelion(
        "up", "--config", str(config), "--state-dir", str(state), "--free-ports", timeout=60
    )
    assert result.returncode == 1
    line = next(i for i, line in enumerate(config.read_text().splitlines(), 1) if "cpu_limit: many" in line)
    assert f"{config}:{line}:5: profiles.small.cpu_limit: " in result.stderr
    assert "nothing was started" in result.stderr
    assert not state.exists()


ONE_PERSON = "  spawner: simple\n  trusted: true\n"


@pytest.mark.parametrize(
    ("local", "said"),
    [
        # two people (admin, demo) as one OS account: refused, the field named
        ("  spawner: simple\n", "local.spawner: simple runs every server as one OS account, but 2 people"),
        # the default for two people is system-users, where one shared password is refused
        ("", "hub.auth: shared-password lets anyone who knows the password log in as any of the 2"),
    ],
)
def test_several_people_are_never_served_as_one_account_unless_trusted(tmp_path, local, said):
    config = tmp_path / "platform.yaml"
    config.write_text(platform_config_text().replace(ONE_PERSON, local))
    state = tmp_path / "state"
    result = run_parhelion(
        "up", "--config", str(config), "--state-dir", str(state), "--free-ports", timeout=60
    )
    assert result.returncode == 1
    assert said in result.stderr and "local.trusted: true" in result.stderr
    assert "Nothing was started" in result.stderr and not state.exists()


def test_system_users_without_root_is_refused_with_the_way_out(tmp_path, monkeypatch, capsys):
    """Making accounts and switching to them needs root: said before anything starts."""
    from platform_tools.services.supervisor import UpOptions, run_up

    config = tmp_path / "platform.yaml"
    text = platform_config_text().replace(ONE_PERSON, "  spawner: system-users\n  trusted: true\n")
    config.write_text(text)
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert run_up(UpOptions(config=config, state_dir=tmp_path / "state")) == 1
    said = capsys.readouterr().err
    assert "system-users runs each person as their own Unix account" in said
    assert "run `sudo parhelion up`" in said and not (tmp_path / "state").exists()


def test_sample_size_is_set_by_a_flag(tmp_path):
    with running_platform(tmp_path, platform_config_text(), ["--sample-files", "5"]) as platform:
        series = list((platform.state / "archive" / "helio-sample").rglob("aia_synthetic_*.fits"))
        assert len(series) == 5
        index = platform.state / "archive" / "helio-sample" / "index" / "aia_0094_synthetic_2024.csv"
        assert len(index.read_text().splitlines()) == 1 + 5


def test_bad_flag_value_is_named(tmp_path):
    result = run_parhelion("up", "--sample-files", "0", timeout=60)
    assert result.returncode == 2
    assert "argument --sample-files: must be between 1 and 100000, got 0" in result.stderr


def test_port_in_use_is_one_line(tmp_path):
    config = tmp_path / "platform.yaml"
    config.write_text(platform_config_text())
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        result = run_parhelion(
            "up",
            "--config",
            str(config),
            "--state-dir",
            str(tmp_path / "s"),
            "--free-ports",
            "--port",
            str(port),
            timeout=60,
        )
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"parhelion up: port {port} on 127.0.0.1 is already in use (--port); stop what holds it "
        "or choose another port"
    )
    assert not processes_of(tmp_path / "s")


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (
            "  virtual_node:",
            "  price_catalog: prices/missing.json\n  virtual_node:",
            "prices/missing.json: not a usable",
        ),
        (
            "instance_type: m6i.xlarge",
            "instance_type: m9z.huge",
            "no price for instance type 'm9z.huge' in us-east-1",
        ),
    ],
    ids=["missing-catalog", "unpriced-virtual-node"],
)
def test_prices_are_checked_before_anything_starts(tmp_path, old, new, message):
    text = platform_config_text()
    assert text.count(old) == 1
    config = tmp_path / "platform.yaml"
    config.write_text(text.replace(old, new))
    state = tmp_path / "s"
    result = run_parhelion(
        "up", "--config", str(config), "--state-dir", str(state), "--free-ports", timeout=60
    )
    assert result.returncode == 1, result.stderr
    assert "parhelion up: accounting.price_catalog / accounting.virtual_node: " in result.stderr
    assert message in result.stderr
    assert not processes_of(state)


def test_missing_node_is_actionable(tmp_path):
    config = tmp_path / "platform.yaml"
    config.write_text(platform_config_text())
    env = dict(os.environ, PATH=str(Path(sys.executable).parent))  # the venv only: no node
    result = run_parhelion(
        "up", "--config", str(config), "--state-dir", str(tmp_path / "s"), "--free-ports", env=env, timeout=60
    )
    assert result.returncode == 1
    assert "node is not installed" in result.stderr and "apt-get install nodejs npm" in result.stderr


# ----------------------------------------------------- stopping leaves nothing


def test_ctrl_c_stops_servers_and_dask_clusters_too(tmp_path):
    """With a user's server and a Dask cluster running, Ctrl-C (SIGINT) stops them all."""
    with running_platform(tmp_path, platform_config_text(sample_files=4)) as platform:

        async def leave_things_running():
            async with HubUser(platform.url, "demo", platform.password()) as user:
                await server_with_cluster(user, workers=1)
                # leave the kernel, server and cluster running

        run(leave_things_running())
        cmdlines = [" ".join(p.cmdline()) for p in processes_of(platform.state)]
        assert any("jupyterhub-singleuser" in c for c in cmdlines)
        assert any("dask worker" in c for c in cmdlines)
        assert any("dask scheduler" in c for c in cmdlines)

        started = time.monotonic()
        os.kill(platform.process.pid, signal.SIGINT)
        assert platform.process.wait(120) == 0
        print(f"stopped everything in {time.monotonic() - started:.1f} s")
        assert "parhelion up: stopped." in platform.output
        assert not (platform.state / "runtime.json").exists()


def test_a_dying_service_takes_the_platform_down(tmp_path):
    """S3 is not restartable (nor is the gateway): its death stops the platform. (A crash
    loop of a restartable one does too: tests/services/test_supervisor.py.)"""
    with running_platform(tmp_path, platform_config_text(sample_files=4)) as platform:
        s3_pid = platform.runtime["pids"]["s3"]
        os.kill(s3_pid, signal.SIGKILL)
        assert platform.process.wait(120) == 1
        assert (
            "parhelion up: s3 exited (code -9); it is not restartable; stopping the platform"
            in platform.output
        )


def test_a_killed_hub_is_restarted_and_finds_the_running_server(local_platform):
    """kill -9 of the hub: `parhelion up` starts it again instead of stopping the platform.
    The new hub re-adopts demo's running server (the same process, reached through the proxy
    it started in place of the killed hub's), and at the stop the hub stops that server and
    nothing is left over: neither the old proxy (reaped, not a zombie) nor the server (the
    module's platform is stopped and checked for leftovers after this, its last test)."""
    platform = local_platform

    async def start() -> None:
        async with HubUser(platform.url, "demo", platform.password()) as user:
            await user.login()
            await user.start_server()

    run(start())
    servers = [
        p.pid for p in processes_of(platform.state) if "jupyterhub-singleuser" in " ".join(p.cmdline())
    ]
    old_hub = platform.runtime["pids"]["jupyterhub"]
    old_proxy = int((platform.state / "hub" / "proxy.pid").read_text())
    os.kill(old_hub, signal.SIGKILL)
    killed = time.monotonic()

    def answers() -> bool:
        try:
            return platform.get("/hub/health") == 200  # through the new hub's proxy
        except OSError:  # refused (URLError), or reset while the restarted proxy takes over
            return False

    while platform.runtime["pids"]["jupyterhub"] == old_hub or not answers():
        assert platform.process.poll() is None, platform.output[-3000:]
        assert time.monotonic() - killed < 120, "the hub was not back within 120 s"
        time.sleep(0.25)
    print(f"hub back in {time.monotonic() - killed:.1f} s")

    async def still_there() -> None:
        async with HubUser(platform.url, "demo", platform.password()) as user:
            await user.login()
            assert (await user.user_model())["servers"][""]["ready"]
            await user.open_lab()

    run(still_there())
    assert [
        p.pid for p in processes_of(platform.state) if "jupyterhub-singleuser" in " ".join(p.cmdline())
    ] == servers
    assert not psutil.pid_exists(old_proxy)  # stopped by the new hub, and reaped
    assert "parhelion up: jupyterhub exited (code -9); restarting it" in platform.output
