"""Kernels on Unix sockets: the length rule checked against the kernel's real socket names and
Linux's real limit, private directories, long names hashed, TCP kept where nothing fits."""

from __future__ import annotations

import logging
import os
import pwd
import stat
import tempfile
import uuid
from pathlib import Path

import pytest
import zmq
from jupyter_client import KernelManager

from platform_tools.local.kernels import (
    IPC_ARGS,
    KERNEL_SOCKET_NAME,
    SOCKET_PATH_MAX,
    fits,
    kernel_settings,
    socket_base,
)

pytestmark = pytest.mark.unit


@pytest.fixture
def short_dir():
    """A directory with a short path (pytest's own are too long to reach the limit from)."""
    with socket_base() as path:
        yield path


def padded(parent: Path, length: int) -> Path:
    """A directory under ``parent`` whose path is exactly ``length`` characters."""
    path = parent / ("d" * (length - len(str(parent)) - 1))
    path.mkdir()
    assert len(str(path)) == length
    return path


def test_linux_takes_socket_paths_up_to_the_limit(short_dir):
    context = zmq.Context()
    try:
        for length, works in ((SOCKET_PATH_MAX, True), (SOCKET_PATH_MAX + 1, False)):
            name = str(short_dir / "s") + "x" * (length - len(str(short_dir)) - 2)
            assert len(name) == length
            sock = context.socket(zmq.ROUTER)
            try:
                if works:
                    sock.bind(f"ipc://{name}")
                else:
                    with pytest.raises(zmq.ZMQError):
                        sock.bind(f"ipc://{name}")
            finally:
                sock.close(linger=0)
    finally:
        context.term()


def test_a_real_kernel_starts_on_sockets_at_the_longest_path_that_fits(short_dir):
    runtime = padded(short_dir, SOCKET_PATH_MAX - KERNEL_SOCKET_NAME)
    assert fits(runtime) and not fits(Path(f"{runtime}x"))
    manager = KernelManager(transport="ipc", connection_file=str(runtime / f"kernel-{uuid.uuid4()}.json"))
    manager.start_kernel()
    try:
        client = manager.client()
        client.start_channels()
        client.wait_for_ready(timeout=60)
        reply = client.execute_interactive("print(6 * 7)", timeout=30)
        assert reply["content"]["status"] == "ok"
        client.stop_channels()
        # kernel-<uuid>-ipc-1 ... -5: the rule keeps one character spare for n >= 10
        assert max(len(str(p)) for p in runtime.glob("kernel-*-ipc-*")) == SOCKET_PATH_MAX - 1
    finally:
        manager.shutdown_kernel(now=True)


def test_settings_make_a_private_directory_per_user(short_dir):
    environment, args = kernel_settings(str(short_dir), "ann")
    path = Path(environment["JUPYTER_RUNTIME_DIR"])
    assert (path, args) == (short_dir / "ann", IPC_ARGS)
    assert stat.S_IMODE(path.stat().st_mode) == 0o700
    assert stat.S_IMODE(short_dir.stat().st_mode) == 0o711
    assert kernel_settings(str(short_dir), "ann") == (environment, args)  # again: the same


def test_a_long_username_gets_a_hashed_directory(short_dir):
    long_name = "a.very.long.student.name.from.a.spreadsheet@summer-school.example.org"[:64]
    other = long_name[:-1] + "x"
    environment, args = kernel_settings(str(short_dir), long_name)
    path = Path(environment["JUPYTER_RUNTIME_DIR"])
    assert args == IPC_ARGS and path.parent == short_dir and path.name.startswith("u-")
    assert fits(path)
    assert kernel_settings(str(short_dir), other)[0]["JUPYTER_RUNTIME_DIR"] != str(path)
    # a short name shaped like that hash is not given the long name's folder (and kernel keys)
    lookalike = kernel_settings(str(short_dir), path.name)[0]["JUPYTER_RUNTIME_DIR"]
    assert lookalike != str(path) and Path(lookalike).parent == short_dir


def test_tcp_is_kept_where_nothing_fits(short_dir, caplog):
    deep = padded(short_dir, SOCKET_PATH_MAX - KERNEL_SOCKET_NAME)
    with caplog.at_level(logging.WARNING):
        assert kernel_settings(str(deep), "ann") == ({}, [])
    assert "ann's kernels use TCP ports" in caplog.text
    assert not (deep / "ann").exists()
    assert kernel_settings("", "ann") == ({}, [])  # a runtime from before kernel sockets


def test_the_base_is_removed_with_what_it_holds():
    with socket_base() as path:
        (path / "ann").mkdir()
        (path / "ann" / "kernel-1-ipc-1").write_text("")
        assert path.parent == Path(tempfile.gettempdir()) and os.access(path, os.W_OK)
    assert not path.exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="handing a directory to another account needs root")
def test_a_system_users_directory_belongs_to_that_account(short_dir):
    """With real accounts (local.spawner: system-users) the hub runs as root and hands each user
    their own directory; the base stays root's, passable but not listable."""
    nobody = pwd.getpwnam("nobody")
    environment, _ = kernel_settings(str(short_dir), "nobody", nobody.pw_uid, nobody.pw_gid)
    owned = Path(environment["JUPYTER_RUNTIME_DIR"]).stat()
    assert (owned.st_uid, owned.st_gid, stat.S_IMODE(owned.st_mode)) == (nobody.pw_uid, nobody.pw_gid, 0o700)
    assert short_dir.stat().st_uid == 0
