"""State directory: one platform per directory, private secrets, free ports."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys

import pytest

from platform_tools.config import parse_platform
from platform_tools.local.statedir import AlreadyRunning, StateDir
from platform_tools.services.processes import free_tcp_ports, tcp_port_free
from platform_tools.services.supervisor import LaunchError, UpOptions, install_config, resolve_ports

pytestmark = pytest.mark.unit


def test_layout_and_private_secrets(tmp_path):
    state = StateDir(tmp_path / "s")
    state.prepare()
    value, made = state.secret("token")
    assert made and len(value) == 64
    assert state.secret("token") == (value, False)
    assert stat.S_IMODE(os.stat(state.secrets).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(state.secret_path("token")).st_mode) == 0o600


def test_second_holder_is_refused(tmp_path):
    state = StateDir(tmp_path)
    state.prepare()
    state.acquire()
    try:
        # another process, as a second `parhelion up` would be
        code = (
            "import sys; from platform_tools.local.statedir import StateDir, AlreadyRunning\n"
            f"s = StateDir({str(tmp_path)!r})\n"
            "try: s.acquire()\n"
            "except AlreadyRunning as e: print(e); sys.exit(3)\n"
        )
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        assert result.returncode == 3
        assert f"already running from {tmp_path} (pid {os.getpid()})" in result.stdout
        assert state.lock_holder() == os.getpid()
    finally:
        state.release()
    assert state.lock_holder() is None


def test_lock_within_one_process_is_exclusive(tmp_path):
    first, second = StateDir(tmp_path), StateDir(tmp_path)
    first.prepare()
    first.acquire()
    with pytest.raises(AlreadyRunning):
        second.acquire()
    first.release()
    second.acquire()
    second.release()


def test_free_ports_are_distinct_and_free():
    ports = free_tcp_ports(6)
    assert len(set(ports)) == 6
    assert all(tcp_port_free(port) for port in ports)


def test_port_in_use_is_one_clear_line(example_text):
    platform = parse_platform(example_text)
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        with pytest.raises(LaunchError) as caught:
            resolve_ports(platform, UpOptions(config=None, hub_port=port))  # type: ignore[arg-type]
    message = str(caught.value)
    assert message == (
        f"port {port} on 127.0.0.1 is already in use (--port); stop what holds it or choose another port"
    )


def test_configured_ports_are_kept_and_others_picked(example_text):
    platform = parse_platform(example_text.replace("hub: 8000", f"hub: {free_tcp_ports(1)[0]}"))
    ports = resolve_ports(platform, UpOptions(config=None))  # type: ignore[arg-type]
    assert ports.hub == platform.local.ports.hub
    values = [ports.hub, ports.hub_api, ports.proxy_api, ports.gateway, ports.gateway_scheduler, ports.s3]
    assert len(set(values)) == 6


def test_a_changed_live_platform_yaml_is_kept_when_up_replaces_it(tmp_path):
    """`parhelion up` installs --config as the live file; changes made to the live file while
    the platform ran (the Ansible plays write it) are kept beside it, not lost."""
    state = StateDir(tmp_path / "state")
    state.root.mkdir(parents=True)
    source = tmp_path / "platform.yaml"
    source.write_text("name: a\n")
    assert install_config(source, state) is None  # first start: nothing to keep
    state.platform_file.write_text("name: a\ngroups: {school: {}}\n")  # a roster play, live
    kept = install_config(source, state)
    assert kept == state.root / "platform.yaml.previous"
    assert kept.read_text() == "name: a\ngroups: {school: {}}\n"
    assert state.platform_file.read_text() == "name: a\n"
    assert install_config(source, state) is None  # unchanged since: nothing new to keep


@pytest.mark.parametrize(("traversable", "passage"), [(False, 0o700), (True, 0o711)])
def test_the_state_directory_is_private(tmp_path, traversable, passage):
    """No other local account lists or reads the ledger, logs, platform.yaml or runtime.json;
    with system-users they may only pass through the root and gateway/ to their clusters' dirs.
    A state directory made before (0755, files 0644) is tightened."""
    state = StateDir(tmp_path / "s")
    state.root.mkdir(mode=0o755)
    state.logs.mkdir(mode=0o755)
    old = [state.platform_file, state.runtime_file, state.root / "accounting.sqlite", state.logs / "hub.log"]
    for path in old:
        path.write_text("x")
        os.chmod(path, 0o644)
    state.prepare(traversable=traversable)
    mode = lambda path: stat.S_IMODE(os.stat(path).st_mode)  # noqa: E731
    assert mode(state.root) == passage and mode(state.gateway) == passage
    for folder in (state.hub, state.archive, state.seed, state.homes, state.logs, state.tmp, state.secrets):
        assert mode(folder) == 0o700, folder
    assert [mode(path) for path in old] == [0o600] * len(old)
    state.acquire()
    try:
        assert mode(state.lock_file) == 0o600
    finally:
        state.release()
